// Dispatch commands, onto the engine's outbox (see `commands/mod.rs` for how a declaration
// reads).
commands! {
    /// The configured backends, as operators pick them.
    #[windows(main)]
    async fn backends(engine) -> Vec<BackendDto> { engine.backends().await }

    /// Exactly what confirming will send, to whom; sends nothing.
    #[windows(main)]
    async fn preview_action(engine; request: ActionRequestDto) -> ActionPreviewDto { engine.preview_action(request).await }

    /// The first confirmation of a dangerous action; the engine counts it and answers how many
    /// the action needs in all.
    #[windows(main)]
    async fn arm_action(engine; token: String) -> u8 { engine.arm_action(token).await }

    /// Commits a previewed action durably (a dangerous one only after `arm_action`).
    #[windows(main)]
    async fn confirm_action(engine; token: String) -> ActionDto { engine.confirm_action(token).await }

    /// The whole outbox now; later changes arrive in the diffs.
    #[windows(main)]
    async fn outbox(engine) -> OutboxDto { engine.outbox().await }

    /// Sends a failed action again.
    #[windows(main)]
    async fn retry_action(engine; id: i64) -> () { engine.retry_action(id).await }

    /// Cancels a queued or failed action; it will never be sent.
    #[windows(main)]
    async fn cancel_action(engine; id: i64) -> () { engine.cancel_action(id).await }
}
