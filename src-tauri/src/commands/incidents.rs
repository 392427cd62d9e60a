// Incident and operator commands (see `commands/mod.rs` for how a declaration reads).
commands! {
    /// Signs an operator in (name, role and an optional PIN); their name stamps every action.
    #[windows(main, trainer)]
    async fn sign_in(engine; name: String, role: OperatorRole, pin: Option<String>) -> OperatorDto { engine.sign_in(name, role, pin).await }

    /// The operator roster; the engine answers only a signed-in supervisor.
    #[windows(main)]
    async fn roster(engine) -> Vec<RosterEntryDto> { engine.roster().await }

    /// Gives an operator a role and PIN in the roster; the engine answers only a supervisor.
    #[windows(main)]
    async fn assign_role(engine; name: String, role: OperatorRole, pin: Option<String>) -> () { engine.assign_role(name, role, pin).await }

    /// Signs the operator out.
    #[windows(main, trainer)]
    async fn sign_out(engine) -> () { engine.sign_out().await }

    /// The signed-in operator, or null.
    #[windows(main, trainer)]
    async fn operator(engine) -> Option<OperatorDto> { engine.operator().await }

    /// Members by layer with explanations, timeline, root cause, area and SOP of one incident.
    #[windows(main)]
    async fn incident(engine; id: String) -> IncidentDetailDto { engine.incident_detail(id).await }

    /// Moves an incident forward in its lifecycle.
    #[windows(main)]
    async fn incident_transition(engine; id: String, to: LifecycleStatus) -> () { engine.incident_transition(id, to).await }

    /// Says which incident the window has open (null: none), for the site's presence.
    #[windows(main)]
    async fn look_at(engine; incident: Option<String>) -> () { engine.look_at(incident).await }

    /// Takes an incident (`owner` null), or gives it to `owner` (a supervisor's).
    #[windows(main)]
    async fn incident_take(engine; id: String, owner: Option<String>) -> () { engine.incident_take(id, owner).await }

    /// Moves every member of `from` into `into`.
    #[windows(main)]
    async fn incident_merge(engine; into: String, from: String) -> () { engine.incident_merge(into, from).await }

    /// Splits one member out into an incident of its own; returns the new incident's id.
    #[windows(main)]
    async fn incident_split(engine; from: String, entity: String) -> String { engine.incident_split(from, entity).await }

    /// Moves one member from one incident to another.
    #[windows(main)]
    async fn incident_reassign(engine; from: String, entity: String, to: String) -> () { engine.incident_reassign(from, entity, to).await }

    /// Takes back the latest merge, split or reassignment.
    #[windows(main)]
    async fn incident_undo(engine) -> () { engine.incident_undo().await }

    /// Ticks or unticks a step of an incident's SOP checklist.
    #[windows(main)]
    async fn incident_tick_sop(engine; id: String, step: u32, ticked: bool) -> () { engine.incident_tick_sop(id, step, ticked).await }

    /// A supervisor resolves or closes an incident past its required SOP steps, for a reason.
    #[windows(main)]
    async fn incident_override(engine; id: String, to: LifecycleStatus, reason: String) -> () { engine.incident_override(id, to, reason).await }

    /// Adds a note to an incident's narrative log, as the signed-in operator.
    #[windows(main)]
    async fn incident_note(engine; id: String, text: String) -> () { engine.incident_note(id, text).await }

    /// What was observed in a box between two scenario times, with counts per kind.
    #[windows(main)]
    async fn query_area(engine; query: AreaQueryDto) -> AreaAnswerDto { engine.query_area(query).await }

    /// Enters a phone call or radio report as an incident, as the signed-in operator.
    #[windows(main)]
    async fn new_incident(engine; request: NewIncidentDto) -> CallDto { engine.new_incident(request).await }
}
