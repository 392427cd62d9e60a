//! Connections to the world outside, shared by the live feeds and the outbox: where credentials
//! may travel, how to wait before trying again, and TLS for what is not HTTP.
//!
//! # Layout
//! - [`origin`]: URL origins (scheme, host, port) and the rules that keep a credential with the
//!   server it was configured for.
//! - [`backoff`]: the one backoff routine, for feeds that reconnect and actions that retry.
//! - [`tls`]: TLS for MQTT and TCP (Cursor-on-Target), one rustls stack with the provider
//!   reqwest uses for HTTPS.

pub mod backoff;
pub mod origin;
pub mod tls;
