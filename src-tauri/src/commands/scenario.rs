// The scenario's command (see `commands/mod.rs` for how a declaration reads).
commands! {
    /// The loaded scenario: its name, time span, initial view and feeds.
    #[windows(main, trainer, wall)]
    fn scenario(engine) -> ScenarioDto { Ok::<_, ApiError>(engine.scenario()) }
}
