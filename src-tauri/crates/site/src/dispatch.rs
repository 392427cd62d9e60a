//! A site's actions to backends, delivered exactly once by whichever dispatch worker takes them.
//!
//! **Subjects** (all in the site's one stream, so every workstation folds them in its order):
//! - `cityops.<site>.action.<key>`: an action a workstation committed ([`SiteAction`]), with
//!   the exact bytes to send and its idempotency key; published again with `retry_of` when an
//!   operator retries a failed one.
//! - `cityops.<site>.outcome.<key>.worker`: what a dispatch worker did with it
//!   ([`WorkerOutcome`]): took it (`sending`), delivered it with the backend's reference, will
//!   retry, or failed with the reason.
//! - `cityops.<site>.outcome.<key>.cancel`: an operator's cancellation ([`CancelRequest`]).
//!
//! **One worker.** Every worker pulls from one durable consumer (`dispatch`) on the action
//! subjects, one message at a time, so the server hands each action to one of them; one that
//! dies without acknowledging has its action handed to another after the consumer's
//! `ack_wait`. Before sending, a worker *claims* the action: it publishes `sending` on its
//! worker subject only if nothing was published on either outcome subject since it read them
//! (`Nats-Expected-Last-Subject-Sequence` over `outcome.<key>.*`). So a claim and a
//! cancellation cannot both win: the cancellation that comes first stops the send, and one
//! that comes after the claim is refused by every workstation's fold as too late.
//!
//! Separate subjects for workers and operators let the server's permissions say who may
//! publish which: a workstation cannot publish that an action was delivered.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, message::PublishMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::{token, Outgoing, Site, SiteError, SiteId};

/// The durable consumer every dispatch worker of a site shares.
pub const DISPATCH_CONSUMER: &str = "dispatch";
/// How long a worker may hold an action without saying it is still at it, unless `site init`
/// sets another: then the server hands the action to another worker.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// The stream metadata key that marks an exercise site.
pub const EXERCISE_METADATA: &str = "cityops.exercise";

/// An action as a workstation committed it: everything a worker needs to send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteAction {
    /// The idempotency key: the backend sees it on every attempt.
    pub key: String,
    pub backend: String,
    /// The backend's kind (`open311`, `webhook`, ...), as the workstation's backends file says.
    pub kind: String,
    pub summary: String,
    pub destination: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub device: Option<String>,
    pub incident: Option<String>,
    pub operator: String,
    pub role: String,
    pub workstation: String,
    /// An exercise action: recorded as delivered, never sent.
    pub exercise: bool,
    /// The author's wall time (the audit trail's, never an order).
    pub wall_ms: i64,
    pub scenario_ms: Option<i64>,
    /// An operator's retry of the action that failed at this stream sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<u64>,
}

/// What a dispatch worker did with an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerOutcome {
    pub key: String,
    /// The worker's name.
    pub worker: String,
    /// The worker's wall time, for the audit trail.
    pub wall_ms: i64,
    #[serde(flatten)]
    pub state: WorkerState,
}

/// The states a worker reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkerState {
    /// The worker took the action and is sending it (attempt `attempt`, counting from 1).
    Sending { attempt: u32 },
    /// The backend confirmed it.
    Delivered { reference: String },
    /// Written to a backend that cannot confirm it.
    Sent { reference: String },
    /// Not delivered this time; another attempt follows. `failures` counts the attempts the
    /// backend answered with a failure (the retry budget's count).
    Retrying { reason: String, failures: u32 },
    /// Refused for good, or out of retries.
    Failed { reason: String },
}

impl WorkerState {
    /// Whether nothing more will be sent for the action (short of an operator's retry).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            WorkerState::Delivered { .. } | WorkerState::Sent { .. } | WorkerState::Failed { .. }
        )
    }
}

/// An operator's cancellation of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    /// Unique, made by the author: its `Nats-Msg-Id`, and how its author finds its outcome.
    pub id: String,
    pub key: String,
    pub operator: String,
    pub workstation: String,
    pub wall_ms: i64,
}

/// Which outcome subject a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeBy {
    Worker,
    Cancel,
}

impl SiteId {
    /// The subject of an action.
    pub fn action_subject(&self, key: &str) -> String {
        format!("cityops.{}.action.{}", self.as_str(), token(key))
    }

    /// Every action subject: what the dispatch consumer hands out.
    pub fn actions_filter(&self) -> String {
        format!("cityops.{}.action.*", self.as_str())
    }

    /// The subject of a worker's outcomes, or of operators' cancellations, of one action.
    pub fn outcome_subject(&self, key: &str, by: OutcomeBy) -> String {
        let by = match by {
            OutcomeBy::Worker => "worker",
            OutcomeBy::Cancel => "cancel",
        };
        format!("cityops.{}.outcome.{}.{by}", self.as_str(), token(key))
    }

    /// Which outcome subject `subject` is, if it is one.
    pub fn outcome_by(&self, subject: &str) -> Option<OutcomeBy> {
        let rest = subject.strip_prefix(&format!("cityops.{}.outcome.", self.as_str()))?;
        match rest.rsplit_once('.')? {
            (_, "worker") => Some(OutcomeBy::Worker),
            (_, "cancel") => Some(OutcomeBy::Cancel),
            _ => None,
        }
    }
}

impl Outgoing {
    /// An action (or an operator's retry of it); the same action is the same publish, and so
    /// is the same retry of the same failure, made at two workstations at once.
    pub fn action(site: &SiteId, action: &SiteAction) -> Outgoing {
        let id = match action.retry_of {
            None => format!("a-{}", action.key),
            Some(seq) => format!("a-{}-r{seq}", action.key),
        };
        Outgoing {
            subject: site.action_subject(&action.key),
            id,
            payload: serde_json::to_vec(action).expect("an action serializes"),
        }
    }

    /// An operator's cancellation.
    pub fn cancel(site: &SiteId, cancel: &CancelRequest) -> Outgoing {
        Outgoing {
            subject: site.outcome_subject(&cancel.key, OutcomeBy::Cancel),
            id: cancel.id.clone(),
            payload: serde_json::to_vec(cancel).expect("a cancellation serializes"),
        }
    }
}

/// Where an action stands in the stream, as a worker reads it before acting.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// The worker outcome last published, with its sequence.
    pub worker: Option<(u64, WorkerOutcome)>,
    /// The last cancellation, with its sequence.
    pub cancel: Option<(u64, CancelRequest)>,
}

impl Standing {
    /// The sequence of the last message on either outcome subject (0: none): what a claim
    /// expects.
    pub fn last_seq(&self) -> u64 {
        let w = self.worker.as_ref().map_or(0, |(s, _)| *s);
        let c = self.cancel.as_ref().map_or(0, |(s, _)| *s);
        w.max(c)
    }

    /// Whether the cancellation stands: it came after the last worker outcome, and that one
    /// left the action waiting (none yet, a retry, or a failure). A cancellation that came
    /// while a worker was sending, or after delivery, is too late.
    pub fn cancelled(&self) -> bool {
        let Some((cseq, _)) = &self.cancel else {
            return false;
        };
        match &self.worker {
            None => true,
            Some((wseq, w)) => {
                cseq > wseq && matches!(w.state, WorkerState::Retrying { .. } | WorkerState::Failed { .. })
            }
        }
    }
}

/// A claim lost: something was published on the action's outcome subjects since they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

/// One action handed to this worker by the dispatch consumer.
pub struct Job {
    message: jetstream::Message,
}

impl Job {
    /// The message's subject and stream sequence, for logs.
    pub fn place(&self) -> String {
        let seq = self.message.info().map(|i| i.stream_sequence).unwrap_or(0);
        format!("{}#{seq}", self.message.subject)
    }

    /// The action it carries.
    pub fn action(&self) -> Result<SiteAction, String> {
        serde_json::from_slice(&self.message.payload).map_err(|e| format!("not an action: {e}"))
    }

    /// How many times the server has handed this message out (1 the first time).
    pub fn delivered(&self) -> i64 {
        self.message.info().map(|i| i.delivered).unwrap_or(1)
    }

    /// Done with it: the server hands it to nobody again. Waits for the server's confirmation,
    /// so that a worker that says it is done is.
    pub async fn done(&self) -> Result<(), SiteError> {
        self.message.double_ack().await.map_err(|e| SiteError::Publish {
            subject: self.message.subject.to_string(),
            reason: format!("acknowledging: {e}"),
        })
    }

    /// Not now: the server hands it out again after `delay`.
    pub async fn later(&self, delay: Duration) -> Result<(), SiteError> {
        self.ack(jetstream::AckKind::Nak(Some(delay))).await
    }

    /// Still at it: the server waits another `ack_wait` before handing it to another worker.
    pub async fn working(&self) -> Result<(), SiteError> {
        self.ack(jetstream::AckKind::Progress).await
    }

    /// Never again: an action that cannot be read.
    pub async fn refuse(&self) -> Result<(), SiteError> {
        self.ack(jetstream::AckKind::Term).await
    }

    async fn ack(&self, kind: jetstream::AckKind) -> Result<(), SiteError> {
        self.message.ack_with(kind).await.map_err(|e| SiteError::Publish {
            subject: self.message.subject.to_string(),
            reason: format!("acknowledging: {e}"),
        })
    }
}

/// The actions handed to this worker, one at a time.
pub struct Jobs(consumer::pull::Stream);

impl Jobs {
    /// The next action; `None` when the consumer ended.
    pub async fn next(&mut self) -> Option<Result<Job, SiteError>> {
        let m = self.0.next().await?;
        Some(
            m.map(|message| Job { message })
                .map_err(|e| SiteError::Invalid(format!("reading the dispatch queue: {e}"))),
        )
    }
}

impl Site {
    /// The shared dispatch consumer, created with `ack_wait` if the site has none yet.
    async fn dispatch_consumer(&self, ack_wait: Duration) -> Result<consumer::PullConsumer, SiteError> {
        let stream = self.stream().await?;
        stream
            .get_or_create_consumer(
                DISPATCH_CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(DISPATCH_CONSUMER.into()),
                    description: Some("operators' actions, each to one dispatch worker".into()),
                    filter_subject: self.id.actions_filter(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.stream_error(format!("cannot open the dispatch queue: {e}")))
    }

    /// Creates the shared dispatch consumer (`site init`), so its `ack_wait` is the site's.
    pub async fn init_dispatch(&self, ack_wait: Duration) -> Result<Duration, SiteError> {
        let mut c = self.dispatch_consumer(ack_wait).await?;
        let info = c.info().await.map_err(|e| self.stream_error(e))?;
        Ok(info.config.ack_wait)
    }

    /// The actions this worker is handed, one at a time (a worker holding a batch would sit on
    /// actions another could send).
    pub async fn dispatch_jobs(&self) -> Result<Jobs, SiteError> {
        let c = self.dispatch_consumer(DEFAULT_ACK_WAIT).await?;
        let messages = c
            .stream()
            .max_messages_per_batch(1)
            .messages()
            .await
            .map_err(|e| self.stream_error(format!("cannot read the dispatch queue: {e}")))?;
        Ok(Jobs(messages))
    }

    /// Refuses a server too old for claims: `Nats-Expected-Last-Subject-Sequence-Subject`
    /// came with nats-server 2.11, and an older server ignores it, which would let a claim
    /// and a cancellation both win.
    pub fn check_claims(&self) -> Result<(), SiteError> {
        let version = self.client.server_info().version;
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < (2, 11) {
            return Err(self.stream_error(format!(
                "nats-server {version} cannot check a dispatch worker's claim; dispatch on a site needs 2.11 or later"
            )));
        }
        Ok(())
    }

    /// Whether the site is an exercise (`site init --exercise`): nothing of it is ever sent.
    pub async fn exercise(&self) -> Result<bool, SiteError> {
        let mut s = self.stream().await?;
        let info = s.info().await.map_err(|e| self.stream_error(e))?;
        Ok(info.config.metadata.get(EXERCISE_METADATA).is_some_and(|v| v == "true"))
    }

    async fn last_on<T: serde::de::DeserializeOwned>(&self, subject: &str) -> Result<Option<(u64, T)>, SiteError> {
        let stream = self.stream().await?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => serde_json::from_slice(&m.payload)
                .map(|v| Some((m.sequence, v)))
                .map_err(|e| self.stream_error(format!("{subject}#{}: {e}", m.sequence))),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(self.stream_error(format!("cannot read {subject}: {e}"))),
        }
    }

    /// Where the action with `key` stands.
    pub async fn standing(&self, key: &str) -> Result<Standing, SiteError> {
        Ok(Standing {
            worker: self.last_on(&self.id.outcome_subject(key, OutcomeBy::Worker)).await?,
            cancel: self.last_on(&self.id.outcome_subject(key, OutcomeBy::Cancel)).await?,
        })
    }

    /// Publishes a worker's outcome, which follows the outcome at sequence `after` (its
    /// `Nats-Msg-Id` says so, so that the same report sent again adds nothing). With `expect`,
    /// only if the last message on the action's outcome subjects is still that sequence (0:
    /// none), else [`Conflict`]: a claim.
    pub async fn report(
        &self,
        outcome: &WorkerOutcome,
        expect: Option<u64>,
        after: u64,
    ) -> Result<Result<u64, Conflict>, SiteError> {
        let subject = self.id.outcome_subject(&outcome.key, OutcomeBy::Worker);
        let payload = serde_json::to_vec(outcome).expect("an outcome serializes");
        let state = match &outcome.state {
            WorkerState::Sending { attempt } => format!("sending-{attempt}"),
            WorkerState::Retrying { failures, .. } => format!("retrying-{failures}"),
            _ => "end".into(),
        };
        let mut message = PublishMessage::build()
            .message_id(format!("o-{}-{after}-{state}", outcome.key))
            .payload(Bytes::from(payload));
        if let Some(seq) = expect {
            // The check covers both outcome subjects (the worker's and the operators'), which the
            // server compares over the wildcard this header names (nats-server 2.11 and later).
            let both = format!("cityops.{}.outcome.{}.*", self.id.as_str(), token(&outcome.key));
            message = message
                .expected_last_subject_sequence(seq)
                .header("Nats-Expected-Last-Subject-Sequence-Subject", both);
        }
        let publish_error = |reason: String| SiteError::Publish {
            subject: subject.clone(),
            reason,
        };
        let ack = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|e| publish_error(e.to_string()))?;
        match ack.await {
            Ok(a) => Ok(Ok(a.sequence)),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => Ok(Err(Conflict)),
            Err(e) => Err(publish_error(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(state: WorkerState) -> WorkerOutcome {
        WorkerOutcome {
            key: "k".into(),
            worker: "w1".into(),
            wall_ms: 0,
            state,
        }
    }

    fn cancel() -> CancelRequest {
        CancelRequest {
            id: "c1".into(),
            key: "k".into(),
            operator: "Aino".into(),
            workstation: "ws-a".into(),
            wall_ms: 0,
        }
    }

    #[test]
    fn subjects_name_the_action_and_who_reports() {
        let site: SiteId = "hel".parse().unwrap();
        assert_eq!(site.action_subject("ab12"), "cityops.hel.action.ab12");
        let w = site.outcome_subject("ab12", OutcomeBy::Worker);
        assert_eq!(w, "cityops.hel.outcome.ab12.worker");
        assert_eq!(site.outcome_by(&w), Some(OutcomeBy::Worker));
        assert_eq!(
            site.outcome_by("cityops.hel.outcome.ab12.cancel"),
            Some(OutcomeBy::Cancel)
        );
        assert_eq!(site.outcome_by("cityops.hel.outcome.ab12.other"), None);
        assert_eq!(site.outcome_by("cityops.tku.outcome.ab12.worker"), None);
    }

    #[test]
    fn a_cancellation_stands_only_before_a_worker_takes_the_action() {
        let sending = outcome(WorkerState::Sending { attempt: 1 });
        let failed = outcome(WorkerState::Failed { reason: "no".into() });
        let none = Standing::default();
        assert!(!none.cancelled());
        assert_eq!(none.last_seq(), 0);
        let first = Standing {
            worker: None,
            cancel: Some((5, cancel())),
        };
        assert!(first.cancelled());
        let too_late = Standing {
            worker: Some((4, sending.clone())),
            cancel: Some((5, cancel())),
        };
        assert!(!too_late.cancelled(), "a worker was sending it");
        assert_eq!(too_late.last_seq(), 5);
        let after_failure = Standing {
            worker: Some((4, failed)),
            cancel: Some((5, cancel())),
        };
        assert!(after_failure.cancelled());
        let before_claim = Standing {
            worker: Some((6, sending)),
            cancel: Some((5, cancel())),
        };
        assert!(!before_claim.cancelled(), "a later claim means the cancel was refused");
    }

    #[test]
    fn outcomes_read_back_and_a_retry_is_its_own_publish() {
        let o = outcome(WorkerState::Delivered {
            reference: "r-1".into(),
        });
        let text = serde_json::to_string(&o).unwrap();
        assert!(text.contains(r#""state":"delivered""#), "{text}");
        assert_eq!(serde_json::from_str::<WorkerOutcome>(&text).unwrap(), o);
        let site: SiteId = "hel".parse().unwrap();
        let mut a = SiteAction {
            key: "k".into(),
            backend: "works".into(),
            kind: "open311".into(),
            summary: "s".into(),
            destination: "d".into(),
            headers: vec![],
            body: "b".into(),
            device: None,
            incident: None,
            operator: "Aino".into(),
            role: "operator".into(),
            workstation: "ws-a".into(),
            exercise: false,
            wall_ms: 1,
            scenario_ms: None,
            retry_of: None,
        };
        let first = Outgoing::action(&site, &a);
        a.retry_of = Some(9);
        let retry = Outgoing::action(&site, &a);
        assert_eq!(first.subject, retry.subject);
        assert_ne!(first.id, retry.id);
    }
}
