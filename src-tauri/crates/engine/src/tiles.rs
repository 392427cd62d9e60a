//! Offline basemap archives: MBTiles files (SQLite) of gzip-compressed Mapbox Vector Tiles,
//! served to the webview as plain MVT.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::EngineError;

/// The map archives in one folder (`<name>.mbtiles`), opened on first use.
pub struct MapArchives {
    dir: PathBuf,
    open: Mutex<HashMap<String, Connection>>,
}

impl MapArchives {
    /// Archives in `dir`.
    pub fn new(dir: PathBuf) -> MapArchives {
        MapArchives {
            dir,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The tile at `z/x/y` (XYZ scheme) of archive `name`, uncompressed; `None` where the
    /// archive has no tile, which the map treats as empty.
    pub fn tile(&self, name: &str, z: u32, x: u32, y: u32) -> Result<Option<Vec<u8>>, EngineError> {
        let map_err = |reason: String| EngineError::Map {
            name: name.to_owned(),
            reason,
        };
        // The name becomes a file name: only plain names, so no request can leave the folder.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(EngineError::InvalidInput(format!("map name {name:?}")));
        }
        if z > 24 || x >= (1u32 << z) || y >= (1u32 << z) {
            return Err(EngineError::InvalidInput(format!("tile {z}/{x}/{y} does not exist")));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if !open.contains_key(name) {
            let path = self.dir.join(format!("{name}.mbtiles"));
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| map_err(format!("{}: {e}", path.display())))?;
            open.insert(name.to_owned(), conn);
        }
        let conn = &open[name];
        // MBTiles stores rows in TMS order: row 0 is the southernmost.
        let tms_y = (1u32 << z) - 1 - y;
        let data: Option<Vec<u8>> = conn
            .query_row(
                "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
                [z, x, tms_y],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| map_err(e.to_string()))?;
        drop(open);
        data.map(|d| gunzip_if_needed(&d).map_err(|e| map_err(format!("tile {z}/{x}/{y}: {e}"))))
            .transpose()
    }
}

fn gunzip_if_needed(data: &[u8]) -> std::io::Result<Vec<u8>> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(data.len() * 3);
        flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_uncompressed_tiles_with_flipped_rows() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("city.mbtiles")).unwrap();
        conn.execute_batch(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);",
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"mvt-bytes").unwrap();
        // z2, x1, XYZ y=0 is TMS row 3.
        conn.execute("INSERT INTO tiles VALUES (2, 1, 3, ?1)", [gz.finish().unwrap()])
            .unwrap();
        drop(conn);
        let maps = MapArchives::new(dir.path().to_owned());
        assert_eq!(maps.tile("city", 2, 1, 0).unwrap().as_deref(), Some(&b"mvt-bytes"[..]));
        assert_eq!(maps.tile("city", 2, 1, 3).unwrap(), None);
        assert!(matches!(
            maps.tile("../etc", 0, 0, 0),
            Err(EngineError::InvalidInput(_))
        ));
        assert!(matches!(maps.tile("city", 2, 4, 0), Err(EngineError::InvalidInput(_))));
        assert!(matches!(maps.tile("missing", 0, 0, 0), Err(EngineError::Map { .. })));
    }
}
