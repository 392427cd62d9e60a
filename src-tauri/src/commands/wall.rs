// The wall display's command (see `commands/mod.rs` for how a declaration reads).
commands! {
    /// Opens the read-only wall display (or brings it forward).
    #[windows(main)]
    async fn open_wall_display(engine, app) -> () { crate::windows::open_wall_display(&app, &engine) }
}
