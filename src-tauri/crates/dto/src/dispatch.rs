//! Wire types of dispatch: the configured backends, an operator's action request, its preview
//! (exactly what will be sent), and the outbox's record of each action.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use cityops_core::dispatch::{ActionParams, AlertSeverity, BackendKind};

/// One configured backend, as the operator picks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BackendDto {
    /// The id in the config file.
    pub id: String,
    /// The name operators know it by ("City works Open311").
    pub name: String,
    pub kind: BackendKind,
    /// What the action does, in words ("Open a service request for a field crew").
    pub action: String,
    /// Needs a second confirmation.
    pub dangerous: bool,
    /// Only a supervisor (or trainer) may send it.
    pub supervisor_only: bool,
    /// Open311 service codes, MQTT commands or CoT task types the backend offers.
    pub choices: Vec<String>,
    /// True in training and replay: the action goes to the exercise recorder, never the network.
    pub exercise: bool,
    /// The last delivery attempt failed to reach the backend (`null` before any attempt).
    pub reachable: Option<bool>,
}

/// An operator's request, from an incident or from a point on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequestDto {
    /// The backend id.
    pub backend: String,
    /// The incident it is for; its area and root cause locate the action.
    pub incident: Option<String>,
    /// A point on the map `[lon, lat]`, used when there is no incident.
    pub at: Option<[f64; 2]>,
    pub params: ActionParams,
}

/// One header of a previewed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HeaderDto {
    pub name: String,
    pub value: String,
}

/// Exactly what confirming will send, to whom. Confirming commits these bytes to the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActionPreviewDto {
    /// Pass to `confirm_action`; a preview can be confirmed once.
    pub token: String,
    pub backend: BackendDto,
    /// The idempotency key the backend will see.
    pub key: String,
    /// One line for lists ("Service request utility-crew at Kaisaniemi").
    pub summary: String,
    /// `POST http://...`, `mqtt://host:port topic`, `tcp://host:port`.
    pub destination: String,
    pub headers: Vec<HeaderDto>,
    /// The body as text (every backend sends text: form, JSON or XML).
    pub body: String,
    /// How many confirmations the operator must give (1, or 2 for dangerous actions).
    pub confirmations: u8,
    pub exercise: bool,
}

/// Where an action stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ActionStatus {
    /// Committed, waiting for its turn or for the backend to come back.
    Queued,
    /// An attempt is in flight.
    Sending,
    /// The backend confirmed it; `reference` holds its id for it.
    Delivered,
    /// Written to a backend that cannot confirm it (a CoT tasking without a confirming TAK
    /// client): it is not sent again, but nobody said they have it.
    Sent,
    /// Refused by the backend or out of retries; the operator may retry or cancel.
    Failed,
    /// Cancelled by an operator before delivery.
    Cancelled,
}

impl ActionStatus {
    /// Every status.
    pub const ALL: [ActionStatus; 6] = [
        ActionStatus::Queued,
        ActionStatus::Sending,
        ActionStatus::Delivered,
        ActionStatus::Sent,
        ActionStatus::Failed,
        ActionStatus::Cancelled,
    ];

    /// The lowercase name used in the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Queued => "queued",
            ActionStatus::Sending => "sending",
            ActionStatus::Delivered => "delivered",
            ActionStatus::Sent => "sent",
            ActionStatus::Failed => "failed",
            ActionStatus::Cancelled => "cancelled",
        }
    }

    /// The status with this name.
    pub fn parse(s: &str) -> Option<ActionStatus> {
        ActionStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One action in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActionDto {
    #[ts(type = "number")]
    pub id: i64,
    pub key: String,
    pub incident: Option<String>,
    pub backend: String,
    pub kind: BackendKind,
    pub summary: String,
    pub destination: String,
    pub status: ActionStatus,
    pub attempts: u32,
    /// The backend's id for it (Open311 service request id, webhook reply, device reply).
    pub reference: Option<String>,
    /// The backend's own status of it, where it has one (Open311 `open`/`closed`).
    pub remote_status: Option<String>,
    pub last_error: Option<String>,
    /// When the next attempt is due (wall clock), while queued after a failure.
    #[ts(type = "number | null")]
    pub next_attempt_ms: Option<i64>,
    #[ts(type = "number")]
    pub created_ms: i64,
    /// When it was committed on the scenario clock (the exercise's timeline); `null` for an
    /// action from the command line.
    #[ts(type = "number | null")]
    pub scenario_ms: Option<i64>,
    pub operator: String,
    pub exercise: bool,
}

/// The outbox at a glance, sent with every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct OutboxDto {
    /// Every action of this session, newest first (bounded to the most recent 200).
    pub actions: Vec<ActionDto>,
    pub queued: u32,
    pub failed: u32,
    /// Every backend that has pending actions is unreachable: say so plainly.
    pub offline: bool,
    pub backends: Vec<BackendDto>,
}
