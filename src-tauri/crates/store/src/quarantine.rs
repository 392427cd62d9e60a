//! Reading the quarantine for the browser: filtered by feed, newest first, bodies cut to a
//! preview inside SQLite so a large refused body is never loaded whole.

use rusqlite::params;

use super::{RunId, Store, StoreError};
use cityops_dto::{QuarantineDto, QuarantineEntryDto, QuarantineFeedDto};

impl Store {
    /// The newest `limit` quarantine entries of `run` (of `feed` only, if given), each body cut
    /// to `preview_bytes`, with the matching total and the count per feed.
    pub fn quarantine_page(
        &self,
        run: RunId,
        feed: Option<&str>,
        limit: usize,
        preview_bytes: usize,
    ) -> Result<QuarantineDto, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT feed, seq, place, reason, received_ms, substr(body, 1, ?3), length(body) FROM quarantine \
             WHERE run = ?1 AND (?2 IS NULL OR feed = ?2) ORDER BY id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![run, feed, preview_bytes as i64, limit as i64], |r| {
            // SQLite's substr of an empty blob is NULL.
            let body: Option<Vec<u8>> = r.get(5)?;
            Ok(QuarantineEntryDto {
                feed: r.get(0)?,
                seq: r.get::<_, i64>(1)? as u64,
                place: r.get(2)?,
                reason: r.get(3)?,
                received_ms: r.get(4)?,
                preview: String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned(),
                body_bytes: r.get::<_, Option<i64>>(6)?.unwrap_or(0) as u64,
            })
        })?;
        let entries = rows.collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT feed, count(*) FROM quarantine WHERE run = ?1 GROUP BY feed ORDER BY feed")?;
        let feeds = stmt
            .query_map([run], |r| {
                Ok(QuarantineFeedDto {
                    feed: r.get(0)?,
                    count: r.get::<_, i64>(1)? as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let total = feeds
            .iter()
            .filter(|f| feed.is_none_or(|want| f.feed == want))
            .map(|f| f.count)
            .sum();
        Ok(QuarantineDto { entries, total, feeds })
    }
}
