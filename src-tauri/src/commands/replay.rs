// The picture's stream and the clock controls (see `commands/mod.rs` for how a declaration
// reads). The clock controls are plain `fn`s: they run on the main thread in the order the UI
// called them, and only queue a command for the engine's task.
commands! {
    /// Streams the picture to the UI: the whole of it at once, then one coalesced diff per tick.
    #[windows(main, trainer, wall)]
    fn subscribe(engine; on_diff: Channel<MapDiffDto>) -> () { engine.subscribe(Box::new(move |diff| on_diff.send(diff).is_ok())) }

    /// Starts the clock.
    #[windows(main, trainer)]
    fn replay_play(engine) -> () { engine.play() }

    /// Stops the clock.
    #[windows(main, trainer)]
    fn replay_pause(engine) -> () { engine.pause() }

    /// Replay speed as a multiple of real time; `speed` null runs as fast as the pipeline goes.
    #[windows(main, trainer)]
    fn replay_speed(engine; speed: Option<f64>) -> () { engine.set_speed(speed) }

    /// Moves the replay clock to `ms` (Unix epoch milliseconds).
    #[windows(main, trainer)]
    fn replay_seek(engine; ms: i64) -> () { engine.seek(ms) }

    /// The full current observation of one entity, for the details panel.
    #[windows(main)]
    async fn observation(engine; id: String) -> ObservationDto { engine.observation(id).await }
}
