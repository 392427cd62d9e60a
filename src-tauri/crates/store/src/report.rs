//! What the after-action report reads from the store: counts of a run bucketed in time.

use cityops_core::model::Millis;

use super::{RunId, Store, StoreError};

impl Store {
    /// Observations of a run per `(layer, bucket start)`, buckets of `bucket_ms` of arrival time
    /// aligned to `origin_ms`.
    pub fn layer_counts_per_bucket(
        &self,
        run: RunId,
        origin_ms: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<(String, Millis, u64)>, StoreError> {
        self.bucketed("SELECT layer, (received_ms - ?2) / ?3, count(*) FROM observations WHERE run = ?1 GROUP BY 1, 2 ORDER BY 1, 2", run, origin_ms, bucket_ms)
    }

    /// Observations of a run per `(feed, bucket start)`, as above.
    pub fn feed_counts_per_bucket(
        &self,
        run: RunId,
        origin_ms: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<(String, Millis, u64)>, StoreError> {
        self.bucketed("SELECT feed, (received_ms - ?2) / ?3, count(*) FROM observations WHERE run = ?1 GROUP BY 1, 2 ORDER BY 1, 2", run, origin_ms, bucket_ms)
    }

    /// Refused pieces of a run per `(feed, bucket start)`, as above.
    pub fn quarantine_counts_per_bucket(
        &self,
        run: RunId,
        origin_ms: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<(String, Millis, u64)>, StoreError> {
        self.bucketed(
            "SELECT feed, (received_ms - ?2) / ?3, count(*) FROM quarantine WHERE run = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
            run,
            origin_ms,
            bucket_ms,
        )
    }

    fn bucketed(
        &self,
        sql: &str,
        run: RunId,
        origin_ms: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<(String, Millis, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(rusqlite::params![run, origin_ms, bucket_ms.max(1)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                origin_ms + r.get::<_, i64>(1)? * bucket_ms.max(1),
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When a run started (scenario or wall time of its first arrival) and its last arrival.
    pub fn arrival_span(&self, run: RunId) -> Result<Option<(Millis, Millis)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT min(received_ms), max(received_ms) FROM observations WHERE run = ?1",
                [run],
                |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .map(|(a, b)| a.zip(b))?)
    }
}
