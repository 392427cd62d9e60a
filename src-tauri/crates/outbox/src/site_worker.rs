//! A dispatch worker of a site (`cityops dispatch-worker`): takes the site's actions one at a
//! time from the dispatch queue every worker shares, sends each over its link from this
//! worker's backends file, and reports what became of it on the site, where every
//! workstation's outbox reads it (`cityops-site`'s `dispatch` module has the protocol).
//!
//! **Exactly once.** The server hands an action to one worker. Before sending, the worker
//! claims it (`sending`), which fails if anything happened to the action meanwhile (an
//! operator's cancellation, another worker's claim): then it reads where the action stands
//! again. After the backend answered, the worker reports the outcome and only then
//! acknowledges the message. A worker killed at any point leaves either a reported outcome
//! (the next worker finds it and sends nothing) or an unacknowledged message, which the server
//! hands to another worker after `ack_wait`; that one sends it again with the same idempotency
//! key, which the backend deduplicates (our Open311 server, MQTT devices that answer per key,
//! TAK clients updating one marker; `RELIABILITY.md`).
//!
//! **Exercise.** A site made with `site init --exercise`, or an action marked as an exercise,
//! is never sent: the worker reports it delivered as "exercise: recorded, not sent" without
//! opening any connection.

use std::sync::Arc;
use std::time::Duration;

use cityops_core::dispatch::BackendKind;
use cityops_dto::{ActionDto, ActionStatus, HeaderDto};
use cityops_site::dispatch::{Job, SiteAction, WorkerOutcome, WorkerState};
use cityops_site::{Site, SiteError};
use cityops_store::ActionRow;

use crate::config::BackendSpec;
use crate::deliver::{Link, Outcome};
use crate::sender::backoff;

/// What an exercise action's outcome says.
pub const EXERCISE_REFERENCE: &str = "exercise: recorded, not sent";

/// A dispatch worker: its name on the site and its links.
pub struct Worker {
    pub name: String,
    links: Vec<Arc<Link>>,
    exercise: bool,
}

impl Worker {
    /// A worker for `site` over the backends of `specs`. On an exercise site the links are
    /// exercise links that can send nothing.
    pub async fn new(site: &Site, name: String, specs: Vec<BackendSpec>) -> Result<Worker, SiteError> {
        site.check_claims()?;
        let exercise = site.exercise().await?;
        let links = specs
            .into_iter()
            .map(|s| {
                let link = Link::new(s, exercise);
                if let Some(e) = link.secret_error().filter(|_| !exercise) {
                    tracing::error!(backend = %link.spec.id, error = %e, "backend cannot send");
                }
                Arc::new(link)
            })
            .collect();
        Ok(Worker { name, links, exercise })
    }

    /// Whether this worker's site is an exercise.
    pub fn exercise(&self) -> bool {
        self.exercise
    }

    /// Takes actions from the site's dispatch queue until its connection fails.
    pub async fn serve(&self, site: &Site) -> Result<(), SiteError> {
        let mut jobs = site.dispatch_jobs().await?;
        tracing::info!(worker = %self.name, site = %site.id(), exercise = self.exercise, "dispatch worker taking actions");
        while let Some(job) = jobs.next().await {
            let job = job?;
            if let Err(e) = self.handle(site, &job).await {
                // Not acknowledged: the server hands the action out again after `ack_wait`.
                tracing::warn!(worker = %self.name, place = %job.place(), error = %e, "an action is left for another attempt");
            }
        }
        Err(SiteError::Invalid("the dispatch queue ended".into()))
    }

    /// Sends one action, unless it is done, cancelled or another's.
    async fn handle(&self, site: &Site, job: &Job) -> Result<(), SiteError> {
        let action = match job.action() {
            Ok(a) => a,
            Err(reason) => {
                tracing::error!(worker = %self.name, place = %job.place(), %reason, "an action that cannot be read is dropped");
                return job.refuse().await;
            }
        };
        let attempt = u32::try_from(job.delivered()).unwrap_or(u32::MAX).max(1);
        let (claim, failures) = loop {
            let standing = site.standing(&action.key).await?;
            if standing.cancelled() {
                tracing::info!(worker = %self.name, key = %action.key, "cancelled by an operator; not sent");
                return job.done().await;
            }
            let failures = match &standing.worker {
                // An operator retries this failure: a fresh budget.
                Some((seq, w)) if matches!(w.state, WorkerState::Failed { .. }) && action.retry_of == Some(*seq) => 0,
                Some((_, w)) if w.state.is_final() => {
                    tracing::info!(worker = %self.name, key = %action.key, "already done; not sent again");
                    return job.done().await;
                }
                Some((_, w)) => match &w.state {
                    WorkerState::Retrying { failures, .. } => *failures,
                    _ => 0,
                },
                None => 0,
            };
            let last = standing.last_seq();
            let sending = self.outcome(&action, WorkerState::Sending { attempt });
            match site.report(&sending, Some(last), last).await? {
                Ok(seq) => break (seq, failures),
                // Something happened to the action since it was read: read it again.
                Err(_) => continue,
            }
        };
        let link = self.links.iter().find(|l| l.spec.id == action.backend);
        let outcome = if self.exercise || action.exercise {
            Outcome::Delivered(EXERCISE_REFERENCE.into())
        } else {
            match link {
                Some(link) => self.deliver(job, link, &action, attempt).await,
                None => Outcome::Rejected(format!(
                    "dispatch worker {} has no backend {:?} in its backends file",
                    self.name, action.backend
                )),
            }
        };
        let (state, later) = self.settle(link.map(|l| &**l), outcome, failures, attempt);
        tracing::info!(worker = %self.name, key = %action.key, state = ?state, "action reported");
        let report = self.outcome(&action, state);
        self.report_surely(site, &report, claim).await?;
        match later {
            Some(delay) => job.later(delay).await,
            None => job.done().await,
        }
    }

    /// One attempt over `link`, telling the server meanwhile that this worker is still at it.
    async fn deliver(&self, job: &Job, link: &Link, action: &SiteAction, attempt: u32) -> Outcome {
        let row = action_row(action, link.spec.kind, attempt);
        let send = link.deliver(&row);
        tokio::pin!(send);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                outcome = &mut send => return outcome,
                _ = tick.tick() => {
                    if let Err(e) = job.working().await {
                        tracing::debug!(error = %e, "cannot say the worker is still sending");
                    }
                }
            }
        }
    }

    /// What an attempt's outcome is on the site, and when to try again if at all.
    fn settle(
        &self,
        link: Option<&Link>,
        outcome: Outcome,
        failures: u32,
        attempt: u32,
    ) -> (WorkerState, Option<Duration>) {
        match outcome {
            Outcome::Delivered(reference) => (WorkerState::Delivered { reference }, None),
            Outcome::Sent(reference) => (WorkerState::Sent { reference }, None),
            Outcome::Rejected(reason) => (WorkerState::Failed { reason }, None),
            Outcome::Retry {
                reason,
                after,
                unreachable,
            } => {
                let Some(link) = link else {
                    return (WorkerState::Failed { reason }, None);
                };
                let failures = failures + u32::from(!unreachable);
                if !unreachable && failures >= link.spec.retry_budget {
                    let reason = format!("{reason} (gave up after {failures} failed attempts)");
                    return (WorkerState::Failed { reason }, None);
                }
                // The backend knows best when it can take more: its Retry-After wins.
                let delay = after.unwrap_or_else(|| backoff(link, if unreachable { attempt } else { failures }));
                (WorkerState::Retrying { reason, failures }, Some(delay))
            }
        }
    }

    fn outcome(&self, action: &SiteAction, state: WorkerState) -> WorkerOutcome {
        WorkerOutcome {
            key: action.key.clone(),
            worker: self.name.clone(),
            wall_ms: chrono::Utc::now().timestamp_millis(),
            state,
        }
    }

    /// Reports an outcome after the claim at `claim`, trying again while the site does not
    /// take it (the same report is the same publish); past that, the action is left
    /// unacknowledged, and the next worker sends it again with the same key.
    async fn report_surely(&self, site: &Site, report: &WorkerOutcome, claim: u64) -> Result<(), SiteError> {
        let deadline = tokio::time::Instant::now() + cityops_site::RETRY_FOR;
        loop {
            match site.report(report, None, claim).await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, key = %report.key, "the site did not take an outcome; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The action as a link sends it.
fn action_row(a: &SiteAction, kind: BackendKind, attempt: u32) -> ActionRow {
    ActionRow {
        dto: ActionDto {
            id: 0,
            key: a.key.clone(),
            incident: a.incident.clone(),
            backend: a.backend.clone(),
            kind,
            summary: a.summary.clone(),
            destination: a.destination.clone(),
            status: ActionStatus::Sending,
            attempts: attempt,
            reference: None,
            remote_status: None,
            last_error: None,
            next_attempt_ms: None,
            created_ms: a.wall_ms,
            scenario_ms: a.scenario_ms,
            operator: a.operator.clone(),
            exercise: a.exercise,
        },
        headers: a
            .headers
            .iter()
            .map(|(name, value)| HeaderDto {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: a.body.clone(),
        device: a.device.clone(),
        failures: 0,
    }
}
