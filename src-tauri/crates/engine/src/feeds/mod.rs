//! Feed adapters: each turns one received message, in one standard format, into normalized
//! observations. Live transports and tape replay call the same [`decode`], so a replayed tape
//! goes through exactly the code a live feed does.

pub mod geojson;

use cityops_core::model::{Layer, Millis, Observation};
use cityops_core::tape::FeedFormat;

/// The largest message body accepted; anything bigger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where a message came from, which every observation it yields carries.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The feed id.
    pub feed: &'a str,
    /// The layer the feed's observations belong to.
    pub layer: Layer,
    /// The message's sequence number in the run.
    pub seq: u64,
    /// When it arrived.
    pub received_ms: Millis,
}

/// One part of a message that was refused while its neighbours were kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Where in the message, for example `features[3].properties.kind`.
    pub place: String,
    /// Why.
    pub reason: String,
}

/// What a message yielded.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The observations accepted.
    pub observations: Vec<Observation>,
    /// The parts refused.
    pub rejected: Vec<Rejected>,
}

/// A message that could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct DecodeError {
    /// Where in the message (`$` for the whole of it).
    pub place: String,
    /// Why.
    pub reason: String,
}

/// Decodes one message body in the given format.
pub fn decode(format: FeedFormat, ctx: MessageContext<'_>, body: &[u8]) -> Result<Decoded, DecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError {
            place: "$".into(),
            reason: format!("message of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit", body.len()),
        });
    }
    match format {
        FeedFormat::GeoJson => geojson::decode(ctx, body),
    }
}
