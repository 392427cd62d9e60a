//! The sender: one task per backend, each with its own SQLite connection, delivering that
//! backend's actions one at a time in commit order.
//!
//! Every attempt is opened in the store before anything goes out and closed after, so a crash
//! at any point leaves either a queued action (sent again with the same idempotency key) or a
//! delivered one. Retries back off exponentially with jitter, honour `Retry-After`, and only
//! failures the backend answered count against the retry budget.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cityops_net::backoff::Backoff;
use tokio::sync::Notify;

use super::deliver::{Link, Outcome};
use cityops_store::{ActionRow, AttemptEnd, Store, StoreError};

/// What the senders share with the handle: a change flag for the UI and each backend's
/// reachability.
#[derive(Default)]
pub struct Shared {
    pub changed: AtomicBool,
    pub reachable: Mutex<HashMap<String, bool>>,
    /// Who holds the sender lease while this outbox waits for it.
    lease_holder: Mutex<Option<String>>,
}

impl Shared {
    pub(super) fn set_lease_holder(&self, holder: Option<String>) {
        if let Ok(mut h) = self.lease_holder.lock() {
            if *h != holder {
                *h = holder;
                self.changed.store(true, Ordering::SeqCst);
            }
        }
    }

    pub(super) fn lease_holder(&self) -> Option<String> {
        self.lease_holder.lock().ok().and_then(|h| h.clone())
    }

    fn reach(&self, backend: &str, ok: bool) {
        if let Ok(mut m) = self.reachable.lock() {
            m.insert(backend.to_owned(), ok);
        }
    }
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The delay before attempt `n + 1` after `n` failed attempts: the project's one backoff
/// rule, from the backend's first retry delay up to its longest.
pub fn backoff(link: &Link, failures: u32) -> Duration {
    Backoff::new(link.spec.retry_base, link.spec.max_backoff).delay(failures)
}

/// Runs one backend's sender until the process ends.
pub async fn run(db: PathBuf, link: Arc<Link>, exercise: bool, wake: Arc<Notify>, shared: Arc<Shared>) {
    // Owned and only ever borrowed mutably, so the task stays `Send` across awaits.
    let mut store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(backend = %link.spec.id, error = %e, "outbox sender cannot open the store");
            return;
        }
    };
    let id = link.spec.id.clone();
    // Consecutive unreachable attempts, for the backoff while offline.
    let mut offline_streak = 0u32;
    let mut next_poll = tokio::time::Instant::now() + link.spec.poll_interval;
    loop {
        let head = match store.head_action(&id, exercise) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(backend = %id, error = %e, "outbox read failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let wait = match &head {
            None => link.spec.poll_interval,
            // Another attempt has it in flight (this sender's lease makes that a leftover that
            // the next start queues again): later actions wait behind it, in commit order.
            Some(a) if a.dto.status == cityops_dto::ActionStatus::Sending => Duration::from_secs(1),
            Some(a) => {
                let due = a.dto.next_attempt_ms.unwrap_or(0) - wall_ms();
                if due > 0 {
                    Duration::from_millis(due as u64)
                } else {
                    match attempt(&mut store, &link, a, exercise, &shared, &mut offline_streak).await {
                        Ok(()) => {}
                        Err(e) => {
                            tracing::error!(backend = %id, error = %e, "outbox write failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    continue;
                }
            }
        };
        if !exercise && tokio::time::Instant::now() >= next_poll {
            poll_remote(&mut store, &link, &shared).await;
            next_poll = tokio::time::Instant::now() + link.spec.poll_interval;
        }
        let until_poll = next_poll.saturating_duration_since(tokio::time::Instant::now());
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait.min(until_poll).max(Duration::from_millis(5))) => {}
        }
    }
}

async fn attempt(
    store: &mut Store,
    link: &Link,
    a: &ActionRow,
    exercise: bool,
    shared: &Shared,
    offline_streak: &mut u32,
) -> Result<(), StoreError> {
    let Some(attempt) = store.start_attempt(a, wall_ms())? else {
        // Cancelled (or otherwise changed) since it was read: it is not sent, and the next
        // read of the queue sees its new status.
        tracing::info!(backend = %link.spec.id, key = %a.dto.key, "action changed before its attempt; not sent");
        shared.changed.store(true, Ordering::SeqCst);
        return Ok(());
    };
    shared.changed.store(true, Ordering::SeqCst);
    // The queue this sender reads holds only its own mode's actions; the check stays so that
    // an exercise action can never leave the machine whatever the queue holds.
    let outcome = if exercise || a.dto.exercise {
        // Training: the action is recorded in the outbox for scoring and never leaves.
        Outcome::Delivered("exercise: recorded, not sent".into())
    } else {
        link.deliver(a).await
    };
    let now = wall_ms();
    let end = match outcome {
        Outcome::Delivered(reference) => {
            *offline_streak = 0;
            shared.reach(&link.spec.id, true);
            tracing::info!(backend = %link.spec.id, key = %a.dto.key, %reference, "delivered");
            AttemptEnd::Delivered { reference }
        }
        Outcome::Sent(reference) => {
            *offline_streak = 0;
            shared.reach(&link.spec.id, true);
            tracing::info!(backend = %link.spec.id, key = %a.dto.key, %reference, "sent; the backend cannot confirm it");
            AttemptEnd::Sent { reference }
        }
        Outcome::Rejected(reason) => {
            shared.reach(&link.spec.id, true);
            tracing::warn!(backend = %link.spec.id, key = %a.dto.key, %reason, "backend refused the action");
            AttemptEnd::Failed { reason }
        }
        Outcome::Retry {
            reason,
            after,
            unreachable,
        } => {
            shared.reach(&link.spec.id, !unreachable);
            let failures = a.failures + u32::from(!unreachable);
            if !unreachable && failures >= link.spec.retry_budget {
                AttemptEnd::Failed {
                    reason: format!("{reason} (gave up after {failures} failed attempts)"),
                }
            } else {
                let delay = if unreachable {
                    *offline_streak += 1;
                    backoff(link, *offline_streak)
                } else {
                    *offline_streak = 0;
                    backoff(link, failures)
                };
                // The backend knows best when it can take more: its Retry-After wins.
                let delay = after.unwrap_or(delay);
                tracing::info!(backend = %link.spec.id, key = %a.dto.key, %reason, delay_ms = delay.as_millis() as u64, "will retry");
                AttemptEnd::Retry {
                    reason,
                    next_ms: now + delay.as_millis() as i64,
                    counts: !unreachable,
                }
            }
        }
    };
    store.finish_attempt(a, attempt, &end, now)?;
    shared.changed.store(true, Ordering::SeqCst);
    Ok(())
}

/// Asks an Open311 backend for the status of its delivered, not yet closed requests.
async fn poll_remote(store: &mut Store, link: &Link, shared: &Shared) {
    if link.spec.kind != cityops_core::dispatch::BackendKind::Open311 {
        return;
    }
    let Ok(open) = store.open_remote_actions(&link.spec.id) else {
        return;
    };
    for (id, reference) in open {
        if let Some(status) = link.poll_status(&reference).await {
            if store.set_remote_status(id, &status, wall_ms()).unwrap_or(false) {
                shared.changed.store(true, Ordering::SeqCst);
            }
        }
    }
}
