//! The dispatch outbox: operators' actions to backend systems, committed durably with an
//! idempotency key before anything is sent, then delivered exactly once by one sender task per
//! backend (`sender`), over one link per backend (`deliver`), as configured in the backends file
//! (`config`).
//!
//! A preview renders the exact bytes (core `dispatch::render`, plus the signature here); the
//! operator confirms that preview, and the same bytes are committed and sent, on every retry.
//! In an exercise (replay, training) the same happens except that the sender records the
//! action as delivered without opening any connection.

pub mod config;
pub mod deliver;
pub mod error;
pub mod headless;
pub mod lease;
pub mod sender;
pub mod site_worker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use cityops_core::dispatch::{self, ActionContext, Place};
use cityops_core::model::Millis;
use rand::Rng;
use tokio::sync::Notify;

pub use config::{BackendSpec, BackendsError};
use deliver::{Link, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
pub use error::OutboxError;
use lease::Lease;
use sender::Shared;

use cityops_dto::{
    ActionDto, ActionPreviewDto, ActionRequestDto, BackendDto, HeaderDto, OperatorDto, OperatorRole, OutboxDto,
};
use cityops_store::{NewAction, RunId, Store};

/// How many actions the outbox view carries.
const VIEW_LIMIT: u32 = 200;
/// Previews kept for confirmation; older ones must be previewed again.
const MAX_PREVIEWS: usize = 32;

struct Pending {
    preview: ActionPreviewDto,
    operator: String,
    incident: Option<String>,
    device: Option<String>,
    scenario_ms: Millis,
    seq: u64,
    /// The operator confirmed once already (a dangerous action needs a second confirmation,
    /// counted here in the engine, not claimed by the client).
    armed: bool,
}

/// The outbox of one engine: backends, pending previews, and the senders it started.
pub struct Outbox {
    links: Vec<Arc<Link>>,
    exercise: bool,
    previews: HashMap<String, Pending>,
    next_seq: u64,
    wake: HashMap<String, Arc<Notify>>,
    shared: Arc<Shared>,
    /// The senders, or the task waiting for the lease that then starts them.
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// The outbox's own connection, `synchronous=FULL`: commits, operators' retries and
    /// cancellations, and the view.
    store: Store,
    /// At a workstation of a site: where its actions go (the site's dispatch workers send them).
    site: Option<SiteTarget>,
}

/// The site a workstation's actions go to, and the workstation's name there.
#[derive(Debug, Clone)]
pub struct SiteTarget {
    pub site: cityops_site::SiteId,
    pub workstation: String,
}

impl Drop for Outbox {
    /// Stops the senders. An attempt cut short is like a crash: the next start queues the
    /// action again and sends it with the same key.
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for task in tasks.iter() {
                task.abort();
            }
        }
    }
}

impl Outbox {
    /// Starts delivering on the current tokio runtime: once this process holds the database's
    /// sender lease (`lease`), it queues again what a previous holder left in flight and starts
    /// one sender per backend. While another process holds the lease, this outbox commits and
    /// shows actions but waits for the lease to send, and says who holds it.
    ///
    /// Live and exercise never share an outbox: an `exercise` outbox delivers only exercise
    /// actions (recorded, never sent) and refuses a database where live actions wait to be
    /// sent, and a live one delivers only live actions.
    pub fn start(db: &Path, specs: Vec<BackendSpec>, exercise: bool) -> Result<Outbox, OutboxError> {
        let store = Store::open_durable(db)?;
        // A workstation's cache holds every workstation's actions as the site reported them;
        // sending them from here would send them beside the site's dispatch workers.
        if let Some(site) = store.followed_site()? {
            return Err(OutboxError::InvalidInput(format!(
                "{} is a workstation's cache of site {site}: its actions are sent by the site's dispatch \
                 workers (cityops dispatch-worker), never from a cache",
                db.display()
            )));
        }
        if exercise {
            let waiting = store.waiting_live_actions()?;
            if waiting > 0 {
                return Err(OutboxError::InvalidInput(format!(
                    "{} holds {waiting} live action(s) waiting to be sent; a replay would share their outbox. \
                     Replay into another database (--db), or start live mode on this one to send them",
                    db.display()
                )));
            }
        }
        let shared = Arc::new(Shared::default());
        let mut links = Vec::new();
        let mut wake = HashMap::new();
        for spec in specs {
            let link = Arc::new(Link::new(spec, exercise));
            if let Some(e) = link.secret_error() {
                tracing::error!(backend = %link.spec.id, error = %e, "backend cannot send");
            }
            wake.insert(link.spec.id.clone(), Arc::new(Notify::new()));
            links.push(link);
        }
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let senders = Senders {
            db: db.to_owned(),
            links: links.clone(),
            wake: wake.clone(),
            exercise,
            shared: shared.clone(),
            tasks: tasks.clone(),
        };
        match Lease::try_acquire(db)? {
            Ok(lease) => senders.start(lease)?,
            Err(holder) => {
                tracing::warn!(%holder, db = %db.display(), "another process holds the outbox's sender lease; actions wait until it is free");
                shared.set_lease_holder(Some(holder));
                let waiter = tokio::spawn(senders.wait_for_lease());
                tasks.lock().map_err(|_| OutboxError::Stopped)?.push(waiter);
            }
        }
        shared.changed.store(true, Ordering::SeqCst);
        Ok(Outbox {
            links,
            exercise,
            previews: HashMap::new(),
            next_seq: 0,
            wake,
            shared,
            tasks,
            store,
            site: None,
        })
    }

    /// The outbox of a workstation of a site: it previews and commits actions like any other,
    /// each with the message that publishes it to the site in the same transaction, and sends
    /// nothing itself: the site's dispatch workers do, and what became of each action comes
    /// back through the site's stream. On an exercise site its actions are marked as such.
    pub fn for_site(
        db: &Path,
        specs: Vec<BackendSpec>,
        exercise: bool,
        target: SiteTarget,
    ) -> Result<Outbox, OutboxError> {
        let mut outbox = Outbox::idle(db, specs)?;
        outbox.exercise = exercise;
        outbox.links = outbox
            .links
            .iter()
            .map(|l| Arc::new(Link::new(l.spec.clone(), exercise)))
            .collect();
        outbox.site = Some(target);
        outbox.shared.changed.store(true, Ordering::SeqCst);
        Ok(outbox)
    }

    /// Who holds the sender lease while this outbox waits for it.
    pub fn lease_holder(&self) -> Option<String> {
        self.shared.lease_holder()
    }

    /// An outbox that commits but starts no senders (`cityops dispatch --no-send`): what it
    /// commits waits for the next `cityops send` or app start.
    pub fn idle(db: &Path, specs: Vec<BackendSpec>) -> Result<Outbox, OutboxError> {
        let links = specs.into_iter().map(|s| Arc::new(Link::new(s, true))).collect();
        let store = Store::open_durable(db)?;
        Ok(Outbox {
            links,
            exercise: false,
            previews: HashMap::new(),
            next_seq: 0,
            wake: HashMap::new(),
            shared: Arc::default(),
            tasks: Arc::default(),
            store,
            site: None,
        })
    }

    /// True in training and replay.
    pub fn exercise(&self) -> bool {
        self.exercise
    }

    fn link(&self, id: &str) -> Result<&Arc<Link>, OutboxError> {
        self.links
            .iter()
            .find(|l| l.spec.id == id)
            .ok_or_else(|| OutboxError::NotFound(format!("backend {id:?}")))
    }

    /// The configured backends, as operators pick them.
    pub fn backends(&self) -> Vec<BackendDto> {
        let reach = self.shared.reachable.lock().map(|m| m.clone()).unwrap_or_default();
        self.links
            .iter()
            .map(|l| BackendDto {
                id: l.spec.id.clone(),
                name: l.spec.name.clone(),
                kind: l.spec.kind,
                action: l.spec.kind.action().into(),
                dangerous: l.spec.kind.dangerous(),
                supervisor_only: l.spec.supervisor_only,
                choices: l.spec.choices.clone(),
                exercise: self.exercise,
                reachable: reach.get(&l.spec.id).copied(),
            })
            .collect()
    }

    /// Renders exactly what confirming will send. `place` is where the action applies (the
    /// incident's root cause and area, or the point picked on the map); `now_ms` stamps the
    /// documents (scenario time in an exercise, wall time live).
    pub fn preview(
        &mut self,
        req: ActionRequestDto,
        place: &Place,
        operator: &OperatorDto,
        now_ms: Millis,
    ) -> Result<ActionPreviewDto, OutboxError> {
        let link = self.link(&req.backend)?.clone();
        let spec = &link.spec;
        if spec.supervisor_only && operator.role == OperatorRole::Operator {
            return Err(OutboxError::Forbidden(format!("{} needs a supervisor", spec.name)));
        }
        dispatch::validate(&spec.id, spec.kind, &spec.choices, &req.params)?;
        let key = random_hex(16);
        let ctx = ActionContext {
            key: &key,
            incident: req.incident.as_deref(),
            place,
            operator: &operator.name,
            now_ms,
            exercise: self.exercise,
            sender: &spec.sender,
            confirm_to: spec.confirm_callsign.as_deref(),
        };
        let mut extra = Vec::new();
        if let Some(j) = &spec.jurisdiction {
            extra.push(("jurisdiction_id".to_owned(), j.clone()));
        }
        let rendered = dispatch::render(&req.params, &ctx, &extra);
        let mut headers = Vec::new();
        if matches!(
            spec.kind,
            dispatch::BackendKind::Open311 | dispatch::BackendKind::Webhook | dispatch::BackendKind::Cap
        ) {
            headers.push(HeaderDto {
                name: "Content-Type".into(),
                value: rendered.content_type.into(),
            });
            headers.push(HeaderDto {
                name: IDEMPOTENCY_HEADER.into(),
                value: key.clone(),
            });
        }
        match link.signature(&rendered.body) {
            Ok(Some(sig)) => headers.push(HeaderDto {
                name: SIGNATURE_HEADER.into(),
                value: sig,
            }),
            Ok(None) => {}
            // An exercise never sends, so a trainee's workstation needs no real signing secret;
            // the preview says the header would be there.
            Err(e) if self.exercise => headers.push(HeaderDto {
                name: SIGNATURE_HEADER.into(),
                value: format!("(exercise: not signed; {e})"),
            }),
            Err(e) => return Err(OutboxError::InvalidInput(e.to_string())),
        }
        // The Open311 API key is appended when sending and never stored; the preview says so.
        let body = if spec.kind == dispatch::BackendKind::Open311 && spec.secret.is_some() {
            format!("{}&api_key=********", rendered.body)
        } else {
            rendered.body.clone()
        };
        let token = random_hex(12);
        let preview = ActionPreviewDto {
            token: token.clone(),
            backend: self
                .backends()
                .into_iter()
                .find(|b| b.id == spec.id)
                .expect("the link exists"),
            key,
            summary: rendered.summary,
            destination: spec.destination(rendered.device.as_deref()),
            headers,
            body,
            confirmations: dispatch::confirmations_needed(spec.kind),
            exercise: self.exercise,
        };
        if self.previews.len() >= MAX_PREVIEWS {
            if let Some(oldest) = self.previews.iter().min_by_key(|(_, p)| p.seq).map(|(t, _)| t.clone()) {
                self.previews.remove(&oldest);
            }
        }
        self.next_seq += 1;
        let mut stored = preview.clone();
        stored.body = rendered.body;
        self.previews.insert(
            token,
            Pending {
                preview: stored,
                operator: operator.name.clone(),
                incident: req.incident,
                device: rendered.device,
                scenario_ms: now_ms,
                seq: self.next_seq,
                armed: false,
            },
        );
        Ok(preview)
    }

    /// The first of two confirmations of a dangerous action (a device command, a public alert):
    /// the engine remembers it, and only then does [`Outbox::confirm`] commit. Returns how many
    /// confirmations the action needs in all.
    pub fn arm(&mut self, token: &str, operator: &OperatorDto) -> Result<u8, OutboxError> {
        let pending = self.pending(token, operator)?;
        pending.armed = true;
        Ok(pending.preview.confirmations)
    }

    fn pending(&mut self, token: &str, operator: &OperatorDto) -> Result<&mut Pending, OutboxError> {
        let pending = self
            .previews
            .get_mut(token)
            .ok_or_else(|| OutboxError::NotFound("preview (preview the action again)".into()))?;
        if pending.operator != operator.name {
            return Err(OutboxError::Forbidden(
                "the action was previewed by another operator".into(),
            ));
        }
        // The role is checked again at each step: whoever previewed may have signed out.
        let backend = &pending.preview.backend;
        if backend.supervisor_only && operator.role == OperatorRole::Operator {
            return Err(OutboxError::Forbidden(format!("{} needs a supervisor", backend.name)));
        }
        Ok(pending)
    }

    /// Commits a previewed action durably and wakes its sender. A dangerous action must have
    /// been confirmed once before ([`Outbox::arm`]); this is its second confirmation.
    pub fn confirm(
        &mut self,
        token: &str,
        operator: &OperatorDto,
        run: Option<RunId>,
    ) -> Result<ActionDto, OutboxError> {
        let pending = self.pending(token, operator)?;
        if pending.preview.confirmations >= 2 && !pending.armed {
            return Err(OutboxError::InvalidInput(format!(
                "{} needs {} confirmations: confirm it once first",
                pending.preview.summary, pending.preview.confirmations
            )));
        }
        let pending = self.previews.remove(token).expect("checked above");
        let store = &self.store;
        let p = &pending.preview;
        let wall = chrono::Utc::now().timestamp_millis();
        let new = NewAction {
            key: &p.key,
            run,
            incident: pending.incident.as_deref(),
            backend: &p.backend.id,
            kind: p.backend.kind,
            summary: &p.summary,
            destination: &p.destination,
            headers: &p.headers,
            body: &p.body,
            device: pending.device.as_deref(),
            exercise: p.exercise,
            operator: &operator.name,
            role: operator.role.as_str(),
            wall_ms: wall,
            scenario_ms: Some(pending.scenario_ms),
        };
        let id = match &self.site {
            Some(target) => {
                let out = cityops_site::Outgoing::action(&target.site, &site_action(&new, &target.workstation, None));
                store.commit_site_action(&new, &out.id, &out.subject, &out.payload)?
            }
            None => store.commit_action(&new)?,
        };
        tracing::info!(key = %p.key, backend = %p.backend.id, summary = %p.summary, "action committed");
        self.poke(&p.backend.id);
        // What was just committed, without reading it back.
        Ok(ActionDto {
            id,
            key: p.key.clone(),
            incident: pending.incident.clone(),
            backend: p.backend.id.clone(),
            kind: p.backend.kind,
            summary: p.summary.clone(),
            destination: p.destination.clone(),
            status: cityops_dto::ActionStatus::Queued,
            attempts: 0,
            reference: None,
            remote_status: None,
            last_error: None,
            next_attempt_ms: None,
            created_ms: wall,
            scenario_ms: Some(pending.scenario_ms),
            operator: operator.name.clone(),
            exercise: p.exercise,
        })
    }

    /// Puts a failed action back in the queue. At a workstation of a site the retry goes to
    /// the site, and the action is queued again when it comes back through the stream.
    pub fn retry(&self, id: i64, operator: &OperatorDto) -> Result<(), OutboxError> {
        if let Some(target) = &self.site {
            let row = self
                .store
                .action(id)?
                .ok_or_else(|| OutboxError::NotFound(format!("action {id}")))?;
            let wall = chrono::Utc::now().timestamp_millis();
            let headers = row.headers.clone();
            let new = NewAction {
                key: &row.dto.key,
                run: None,
                incident: row.dto.incident.as_deref(),
                backend: &row.dto.backend,
                kind: row.dto.kind,
                summary: &row.dto.summary,
                destination: &row.dto.destination,
                headers: &headers,
                body: &row.body,
                device: row.device.as_deref(),
                exercise: row.dto.exercise,
                operator: &operator.name,
                role: operator.role.as_str(),
                wall_ms: wall,
                scenario_ms: row.dto.scenario_ms,
            };
            self.store.commit_site_change(
                id,
                &["failed"],
                "retried",
                |_, failed| {
                    let out = cityops_site::Outgoing::action(
                        &target.site,
                        &site_action(&new, &target.workstation, Some(failed.unwrap_or(0))),
                    );
                    (out.id, out.subject, out.payload)
                },
                wall,
            )?;
            return Ok(());
        }
        self.store.retry_action(
            id,
            &operator.name,
            operator.role.as_str(),
            chrono::Utc::now().timestamp_millis(),
        )?;
        if let Some(a) = self.store.action(id)? {
            self.poke(&a.dto.backend);
        }
        Ok(())
    }

    /// Cancels a queued or failed action. At a workstation of a site the cancellation goes to
    /// the site, and its id comes back: it stands only if no dispatch worker took the action
    /// first, which the site's stream decides (the outcome is kept under that id).
    pub fn cancel(&self, id: i64, operator: &OperatorDto) -> Result<Option<String>, OutboxError> {
        if let Some(target) = &self.site {
            let wall = chrono::Utc::now().timestamp_millis();
            let cancel_id = format!("cancel-{}-{wall}-{}", target.workstation, random_hex(8));
            self.store.commit_site_change(
                id,
                &["queued", "failed"],
                "cancelled",
                |key, _| {
                    let cancel = cityops_site::dispatch::CancelRequest {
                        id: cancel_id.clone(),
                        key: key.to_owned(),
                        operator: operator.name.clone(),
                        workstation: target.workstation.clone(),
                        wall_ms: wall,
                    };
                    let out = cityops_site::Outgoing::cancel(&target.site, &cancel);
                    (out.id, out.subject, out.payload)
                },
                wall,
            )?;
            return Ok(Some(cancel_id));
        }
        self.store.cancel_action(
            id,
            &operator.name,
            operator.role.as_str(),
            chrono::Utc::now().timestamp_millis(),
        )?;
        self.shared.changed.store(true, Ordering::SeqCst);
        Ok(None)
    }

    /// Marks the view changed (a workstation of a site applied an action's outcome).
    pub fn touch(&self) {
        self.shared.changed.store(true, Ordering::SeqCst);
    }

    fn poke(&self, backend: &str) {
        self.shared.changed.store(true, Ordering::SeqCst);
        if let Some(n) = self.wake.get(backend) {
            n.notify_one();
        }
    }

    /// True once since the outbox last changed (a commit, an attempt, a remote status).
    pub fn take_changed(&self) -> bool {
        self.shared.changed.swap(false, Ordering::SeqCst)
    }

    /// The outbox as the UI shows it.
    pub fn view(&self) -> Result<OutboxDto, OutboxError> {
        let store = &self.store;
        let actions = store.actions(VIEW_LIMIT)?;
        let (queued, failed) = store.action_counts()?;
        let backends = self.backends();
        // Offline: something is waiting (queued, or in the middle of another try) and every
        // backend it waits for was unreachable at its last attempt. A backend not tried yet is
        // not known to be down.
        let waiting: Vec<&str> = actions
            .iter()
            .filter(|a| {
                matches!(
                    a.status,
                    cityops_dto::ActionStatus::Queued | cityops_dto::ActionStatus::Sending
                )
            })
            .map(|a| a.backend.as_str())
            .collect();
        let offline = !self.exercise
            && queued > 0
            && !waiting.is_empty()
            && waiting
                .iter()
                .all(|b| backends.iter().any(|d| d.id == *b && d.reachable == Some(false)));
        Ok(OutboxDto {
            actions,
            queued,
            failed,
            offline,
            backends,
        })
    }
}

/// What it takes to start the senders, once the lease is held.
struct Senders {
    db: std::path::PathBuf,
    links: Vec<Arc<Link>>,
    wake: HashMap<String, Arc<Notify>>,
    exercise: bool,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Senders {
    /// With the lease held: queues again what the previous holder left in flight (nobody else
    /// can be sending it now), then starts one sender per backend, which keep the lease.
    fn start(self, lease: Lease) -> Result<(), OutboxError> {
        let store = Store::open_durable(&self.db)?;
        let resumed = store.resume_interrupted_actions(chrono::Utc::now().timestamp_millis())?;
        if resumed > 0 {
            tracing::warn!(
                resumed,
                "actions in flight when the previous sender stopped are queued again"
            );
        }
        let Senders {
            db,
            links,
            wake,
            exercise,
            shared,
            tasks,
        } = self;
        shared.set_lease_holder(None);
        let lease = Arc::new(lease);
        let mut tasks = tasks.lock().map_err(|_| OutboxError::Stopped)?;
        for link in links {
            let notify = wake.get(&link.spec.id).cloned().unwrap_or_default();
            let (db, shared, lease) = (db.clone(), shared.clone(), lease.clone());
            tasks.push(tokio::spawn(async move {
                sender::run(db, link, exercise, notify, shared).await;
                drop(lease);
            }));
        }
        shared.changed.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Tries for the lease every half second until it is free, then starts the senders.
    async fn wait_for_lease(self) {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            match Lease::try_acquire(&self.db) {
                Ok(Ok(lease)) => {
                    tracing::info!(db = %self.db.display(), "the outbox's sender lease is free; sending");
                    if let Err(e) = self.start(lease) {
                        tracing::error!(error = %e, "cannot start the outbox's senders");
                    }
                    return;
                }
                Ok(Err(holder)) => self.shared.set_lease_holder(Some(holder)),
                Err(e) => tracing::warn!(error = %e, "cannot check the outbox's sender lease"),
            }
        }
    }
}

/// An action committed here, as the site's dispatch workers take it.
fn site_action(a: &NewAction<'_>, workstation: &str, retry_of: Option<u64>) -> cityops_site::dispatch::SiteAction {
    cityops_site::dispatch::SiteAction {
        key: a.key.to_owned(),
        backend: a.backend.to_owned(),
        kind: a.kind.as_str().to_owned(),
        summary: a.summary.to_owned(),
        destination: a.destination.to_owned(),
        headers: a.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
        body: a.body.to_owned(),
        device: a.device.map(str::to_owned),
        incident: a.incident.map(str::to_owned),
        operator: a.operator.to_owned(),
        role: a.role.to_owned(),
        workstation: workstation.to_owned(),
        exercise: a.exercise,
        wall_ms: a.wall_ms,
        scenario_ms: a.scenario_ms,
        retry_of,
    }
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workstations_cache_of_a_site_never_sends_its_actions_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ws.db");
        Store::open(&db)
            .unwrap()
            .begin_site_run("hel", "2026-12-07T00:00:00Z")
            .unwrap();
        let Err(e) = Outbox::start(&db, Vec::new(), false) else {
            panic!("a site's cache got senders");
        };
        assert!(e.to_string().contains("cache of site hel"), "{e}");
        // The workstation's own outbox (previews and commits, no senders) opens.
        let target = SiteTarget {
            site: "hel".parse().unwrap(),
            workstation: "ws-a".into(),
        };
        assert!(Outbox::for_site(&db, Vec::new(), false, target).is_ok());
        // A database that follows no site sends as before.
        let plain = dir.path().join("plain.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { assert!(Outbox::start(&plain, Vec::new(), false).is_ok()) });
    }
}
