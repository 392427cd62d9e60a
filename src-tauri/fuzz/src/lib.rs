//! What every fuzz target shares: decoding one input with a format's adapter and checking the
//! invariants of whatever comes out. A panic, a sanitizer report or a broken invariant is a
//! finding; an `Err` is the decoder doing its job.

use std::collections::HashSet;
use std::path::Path;

use cityops_core::model::{GeoPoint, Layer};
use cityops_core::scenario::FeedSpec;
use cityops_core::tape::FeedFormat;
use cityops_engine::feeds::{adapter_for, checked_decode, MessageContext};

/// When every fuzzed message arrives (2026-11-26T21:00:00Z), so time checks have a reference.
pub const RECEIVED_MS: i64 = 1_795_726_800_000;

/// Decodes `body` as `format` with `mapping`, then checks: every observation has a valid
/// position, its feed, sequence and arrival time, a distinct index, an entity and a kind; every
/// refusal names a place and a reason.
pub fn decode(format: FeedFormat, mapping: serde_json::Value, topic: Option<&str>, body: &[u8]) {
    let spec = FeedSpec { id: "fuzz".into(), layer: Layer::Utility, format, name: String::new(), mapping };
    let mut adapter = adapter_for(&spec, Path::new(".")).expect("the fuzz mapping is valid");
    let ctx = MessageContext { feed: "fuzz", layer: Layer::Utility, seq: 7, received_ms: RECEIVED_MS, topic };
    match checked_decode(adapter.as_mut(), ctx, body) {
        Ok(d) => {
            let mut idx = HashSet::new();
            for o in &d.observations {
                assert!(GeoPoint::new(o.position.lon, o.position.lat).is_some(), "invalid position {o:?}");
                assert_eq!((o.feed.as_str(), o.seq, o.received_ms), ("fuzz", 7, RECEIVED_MS));
                assert!(idx.insert(o.idx), "index {} twice", o.idx);
                assert!(!o.entity.is_empty() && !o.kind.is_empty(), "{o:?}");
                // The digest must be computable and stable for anything the store accepts.
                assert_eq!(serde_json::to_string(&o.fields).ok(), serde_json::to_string(&o.fields).ok());
            }
            for r in &d.rejected {
                assert!(!r.place.is_empty() && !r.reason.is_empty(), "{r:?}");
            }
        }
        Err(e) => assert!(!e.reason.is_empty(), "an empty refusal"),
    }
}

/// Text inputs (the manifest, the rules, a tape line): the bytes as UTF-8, or nothing to do.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
