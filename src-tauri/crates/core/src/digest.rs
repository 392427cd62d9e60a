//! A canonical hash of an observation set.
//!
//! Two runs of the same tape must produce the same observations; comparing one hash is how the
//! CLI, the tests and CI show it. The hash covers every field of every observation in arrival
//! order, and nothing that depends on the run (database row ids, run ids, wall time).

use sha2::{Digest, Sha256};

use crate::model::Observation;

/// Accumulates observations in arrival order into a SHA-256.
#[derive(Clone, Default)]
pub struct ObservationDigest {
    hasher: Sha256,
    count: u64,
}

impl ObservationDigest {
    /// An empty digest.
    pub fn new() -> ObservationDigest {
        ObservationDigest::default()
    }

    /// Adds one observation.
    pub fn add(&mut self, obs: &Observation) {
        // serde_json writes struct fields in declaration order and `fields` is a sorted map,
        // so this encoding is canonical.
        let line = serde_json::to_vec(obs).expect("observations always serialize");
        self.hasher.update((line.len() as u64).to_le_bytes());
        self.hasher.update(&line);
        self.count += 1;
    }

    /// How many observations were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hex SHA-256 of everything added.
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}
