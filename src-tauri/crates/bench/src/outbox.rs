//! Outbox benchmarks (`cityops-bench outbox`): the durable commit of an action against the raw
//! `fdatasync` of the same disk, measured alternately in one run, and delivery throughput to a
//! real webhook receiver.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use cityops_core::dispatch::Place;
use cityops_core::model::GeoPoint;
use serde::Serialize;

use cityops_dto::{ActionParams, ActionRequestDto, OperatorDto, OperatorRole};
use cityops_outbox::{config, Outbox, OutboxError};
use cityops_store::Store;

/// What `cityops-bench outbox` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxBench {
    pub commits: usize,
    pub commit_p50_us: f64,
    pub commit_p99_us: f64,
    pub fdatasync_p50_us: f64,
    pub fdatasync_p99_us: f64,
    /// Commit over fdatasync; the goal is at most 2.
    pub ratio_p50: f64,
    pub ratio_p99: f64,
    /// Actions delivered to the webhook receiver, when one was given.
    pub delivered: usize,
    pub delivered_per_sec: Option<f64>,
    /// The same number of signed POSTs by a bare HTTP client, one after another, to the same
    /// receiver in the same run: what the receiver itself can take.
    pub bare_posts_per_sec: Option<f64>,
    /// Outbox delivery over bare posting.
    pub delivery_ratio: Option<f64>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Alternates `n` action commits (`Outbox::confirm`: insert, audit append, `synchronous=FULL`
/// commit) with `n` raw 512-byte appends + `fdatasync` in the same folder, so both see the same
/// disk at the same time. With `webhook` (`url`, secret's env var), then commits `n` more
/// actions to it and times their delivery.
pub async fn run(dir: &Path, n: usize, webhook: Option<(&str, &str)>) -> Result<OutboxBench, OutboxError> {
    let db = dir.join("bench-outbox.db");
    let text = "[[backends]]\nid = \"bench\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:9\"\n";
    let specs = config::parse(Path::new("bench.toml"), text)?;
    let mut outbox = Outbox::idle(&db, specs)?;
    let raw_path = dir.join("bench-fdatasync.bin");
    let mut raw = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw_path)
        .map_err(io(&raw_path))?;
    let op = OperatorDto {
        name: "bench".into(),
        role: OperatorRole::Supervisor,
    };
    let place = Place {
        point: GeoPoint { lon: 24.94, lat: 60.17 },
        label: "bench".into(),
        area: None,
    };
    let params = ActionParams::ServiceRequest {
        service_code: "utility-crew".into(),
        description: "Feeder trip, crew needed".into(),
    };
    let (mut commit, mut sync) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let block = [7u8; 512];
    for _ in 0..n {
        let req = ActionRequestDto {
            backend: "bench".into(),
            incident: Some("inc".into()),
            at: None,
            params: params.clone(),
        };
        let p = outbox.preview(req, &place, &op, 0)?;
        let t = Instant::now();
        outbox.confirm(&p.token, &op, None)?;
        commit.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        raw.write_all(&block).map_err(io(&raw_path))?;
        raw.sync_data().map_err(io(&raw_path))?;
        sync.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (c50, c99, s50, s99) = (
        pct(&mut commit, 0.5),
        pct(&mut commit, 0.99),
        pct(&mut sync, 0.5),
        pct(&mut sync, 0.99),
    );
    let mut out = OutboxBench {
        commits: n,
        commit_p50_us: c50,
        commit_p99_us: c99,
        fdatasync_p50_us: s50,
        fdatasync_p99_us: s99,
        ratio_p50: c50 / s50,
        ratio_p99: c99 / s99,
        delivered: 0,
        delivered_per_sec: None,
        bare_posts_per_sec: None,
        delivery_ratio: None,
    };
    if let Some((url, secret_env)) = webhook {
        let db = dir.join("bench-outbox-webhook.db");
        let text = format!(
            "[[backends]]\nid = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = {{ env = \"{secret_env}\" }}\n"
        );
        let specs = config::parse(Path::new("bench.toml"), &text)?;
        let store = Store::open(&db)?;
        // Commit everything first (senders idle), then start the senders and time the drain.
        let mut committer = Outbox::idle(&db, specs.clone())?;
        for i in 0..n {
            let req = ActionRequestDto {
                backend: "hook".into(),
                incident: None,
                at: None,
                params: ActionParams::Notify {
                    message: format!("bench {i}"),
                },
            };
            let p = committer.preview(req, &place, &op, 0)?;
            committer.confirm(&p.token, &op, None)?;
        }
        let t = Instant::now();
        let _senders = Outbox::start(&db, specs, false)?;
        loop {
            let (queued, failed) = store.action_counts()?;
            if queued == 0 {
                out.delivered = n - failed as usize;
                break;
            }
            if t.elapsed() > Duration::from_secs(600) {
                return Err(OutboxError::InvalidInput(format!(
                    "{queued} actions still queued after 10 minutes"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outbox_rate = out.delivered as f64 / t.elapsed().as_secs_f64();
        out.delivered_per_sec = Some(outbox_rate);
        // The bare client: the same signed JSON, the same headers, no store, no retries.
        let secret =
            std::env::var(secret_env).map_err(|_| OutboxError::InvalidInput(format!("{secret_env} is not set")))?;
        let client = reqwest::Client::new();
        let t = Instant::now();
        for i in 0..n {
            let body = serde_json::json!({ "key": format!("bare-{i}"), "message": format!("bench {i}") }).to_string();
            let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes())
                .map_err(|e| OutboxError::InvalidInput(e.to_string()))?;
            hmac::Mac::update(&mut mac, body.as_bytes());
            let sig = format!("sha256={}", hex::encode(hmac::Mac::finalize(mac).into_bytes()));
            let resp = client
                .post(url)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", format!("bare-{i}"))
                .header("X-Cityops-Signature", sig)
                .body(body)
                .send()
                .await
                .map_err(|e| OutboxError::InvalidInput(format!("bare post: {e}")))?;
            if !resp.status().is_success() {
                return Err(OutboxError::InvalidInput(format!(
                    "bare post answered {}",
                    resp.status()
                )));
            }
        }
        let bare = n as f64 / t.elapsed().as_secs_f64();
        out.bare_posts_per_sec = Some(bare);
        out.delivery_ratio = Some(outbox_rate / bare);
    }
    Ok(out)
}
