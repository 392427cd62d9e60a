//! MQTT subscription (3.1.1): every publish on the configured topic filters is one message,
//! kept with its topic. The session is persistent (clean session off, QoS 1), so a broker that
//! drops the connection redelivers what was sent meanwhile; the client reconnects with backoff.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

use super::{hand_over, now_ms, Health, Incoming};
use crate::config::{LiveFeed, Transport};
use cityops_decoders::MAX_BODY_BYTES;
use cityops_net::backoff::Retry;

pub(super) async fn run(
    i: usize,
    feed: LiveFeed,
    base: &std::path::Path,
    tx: mpsc::Sender<Incoming>,
    health: Health,
    mut stop: watch::Receiver<bool>,
) {
    let Transport::Mqtt {
        host,
        port,
        topics,
        client_id,
        username,
        password,
        tls,
    } = feed.transport
    else {
        return;
    };
    let id = feed.spec.id.clone();
    let tls = match tls.map(|t| t.client(base)).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            // A missing certificate is a configuration problem the operator must see; the feed
            // stays down rather than connecting without TLS.
            let e = format!("TLS: {e}");
            health.failed(&id, &e);
            let _ = tx
                .send(Incoming::Failure {
                    feed: i,
                    reason: e,
                    body: Vec::new(),
                    at: now_ms(),
                })
                .await;
            return;
        }
    };
    let mut opts = MqttOptions::new(client_id.unwrap_or_else(|| format!("cityops-{id}")), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(false);
    opts.set_max_packet_size(MAX_BODY_BYTES, 64 * 1024);
    opts.set_transport(cityops_net::tls::mqtt_transport(tls.as_ref()));
    if let Some(user) = username {
        let credentials = user
            .resolve()
            .and_then(|u| Ok((u, password.map(|p| p.resolve()).transpose()?.unwrap_or_default())));
        match credentials {
            Ok((u, p)) => {
                opts.set_credentials(u, p);
            }
            Err(e) => {
                let e = e.to_string();
                health.failed(&id, &e);
                let _ = tx
                    .send(Incoming::Failure {
                        feed: i,
                        reason: e,
                        body: Vec::new(),
                        at: now_ms(),
                    })
                    .await;
                return;
            }
        }
    }
    let (client, mut events) = AsyncClient::new(opts, 1_000);
    let mut backoff = Retry::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            _ = stop.changed() => {
                if *stop.borrow() {
                    let _ = client.try_disconnect();
                    return;
                }
                continue;
            }
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                health.connected(&id);
                backoff.reset();
                // Subscribing again on every connection is harmless and covers a broker that
                // lost the persistent session.
                for t in &topics {
                    if let Err(e) = client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(feed = %id, topic = %t, error = %e, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let msg = Incoming::Message {
                    feed: i,
                    topic: Some(p.topic),
                    format: None,
                    body: p.payload.to_vec(),
                    received_ms: now_ms(),
                };
                if !hand_over(&tx, &health, &id, msg).await {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let reason = format!("MQTT: {e}");
                tracing::warn!(feed = %id, %reason, "connection lost");
                health.failed(&id, &reason);
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => if *stop.borrow() { return },
                }
            }
        }
    }
}
