// Feed commands (see `commands/mod.rs` for how a declaration reads).
commands! {
    /// The newest quarantined entries of the current run, of one feed if `feed` is given.
    #[windows(main)]
    async fn quarantine(engine; feed: Option<String>) -> QuarantineDto { engine.quarantine(feed).await }
}
