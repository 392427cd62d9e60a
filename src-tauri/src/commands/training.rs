// Exercise commands (see `commands/mod.rs` for how a declaration reads). Opening and closing
// the trainer view is a window, and so the shell's business (`crate::windows`).
commands! {
    /// The after-action report of the run so far, as one HTML document, with the map image (a
    /// base64 PNG of the main incident's area) if the UI sends one.
    #[windows(main, trainer)]
    async fn report(engine; map_png: Option<String>) -> String { engine.report(map_png).await }

    /// The shift's KPI charts up to the clock.
    #[windows(main)]
    async fn kpi(engine) -> Vec<ChartDto> { engine.kpi().await }

    /// A trainer's inject at the clock's time.
    #[windows(trainer)]
    async fn inject(engine; request: InjectRequestDto) -> InjectDto { engine.inject(request).await }

    /// The exercise so far: injects, live score, end.
    #[windows(trainer)]
    async fn exercise(engine) -> ExerciseDto { engine.exercise().await }

    /// Ends the exercise and returns its report.
    #[windows(main, trainer)]
    async fn end_exercise(engine; by: Option<String>, map_png: Option<String>) -> String { engine.end_exercise(by, map_png).await }

    /// Opens the trainer view in its own window (or brings it forward), and gives it the clock.
    #[windows(main)]
    async fn open_trainer_view(engine, app) -> () { crate::windows::open_trainer_view(&app, &engine) }

    /// Closes the trainer view and hands the clock back to the trainee's window.
    #[windows(trainer)]
    async fn close_trainer_view(engine, app) -> () { crate::windows::close_trainer_view(&app, &engine) }
}
