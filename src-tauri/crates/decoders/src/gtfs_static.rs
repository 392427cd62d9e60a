//! GTFS static (a zip of CSV files) as reference data for the GTFS-Realtime adapter: where each
//! stop is, which route each trip runs, the stops of each trip in order, and a representative
//! point of each route (the centroid of its shapes, or of its stops when it has no shape).
//!
//! Only `stops.txt` (required), `routes.txt`, `trips.txt`, `stop_times.txt` and `shapes.txt` are
//! read; calendars, fares and the rest are not needed to place a realtime observation. The zip
//! is read by the small reader below (stored and deflate members, no zip64, no encryption)
//! rather than a zip crate, because the maintained zip crates need a newer Rust than this
//! workspace promises, and because a hand-written reader makes the limits explicit.
//!
//! Limits: the zip file at most [`MAX_ZIP_BYTES`], each member at most [`MAX_MEMBER_BYTES`]
//! once inflated (a "zip bomb" stops there), rows of at most the CSV reader's defaults. Errors
//! name the zip, the member, the line and the field: `cairns.zip: stops.txt line 12, field
//! stop_lat: "abc" is not a number`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use cityops_core::model::GeoPoint;

use super::Refusal;

/// The largest GTFS zip read.
pub const MAX_ZIP_BYTES: u64 = 512 * 1024 * 1024;
/// The largest inflated member (for example `stop_times.txt`).
pub const MAX_MEMBER_BYTES: u64 = 1024 * 1024 * 1024;

/// A GTFS static feed that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{zip}: {place}: {reason}")]
pub struct StaticError {
    /// The zip file as configured.
    pub zip: String,
    /// The member, line and field, for example `stops.txt line 12, field stop_lat`.
    pub place: String,
    /// What is wrong.
    pub reason: String,
}

/// One stop (or station) of `stops.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRef {
    /// `stop_id`.
    pub id: String,
    /// `stop_name`, empty when absent.
    pub name: String,
    /// `stop_lat`/`stop_lon`, absent for generic nodes and boarding areas without coordinates.
    pub position: Option<GeoPoint>,
    /// `parent_station`, used when the stop itself has no coordinates.
    pub parent: Option<String>,
}

/// One route of `routes.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRef {
    /// `route_short_name`, or empty.
    pub short_name: String,
    /// `route_long_name`, or empty.
    pub long_name: String,
    /// `route_type` (0 tram, 3 bus, ...), when it is a number.
    pub route_type: Option<i64>,
}

/// One trip of `trips.txt` with its stops from `stop_times.txt`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TripRef {
    /// `route_id`.
    pub route_id: String,
    /// `shape_id`, if any.
    pub shape_id: Option<String>,
    /// `(stop_sequence, index into stops)`, sorted by sequence.
    pub stops: Vec<(u32, u32)>,
}

/// The reference data read from one GTFS static zip.
#[derive(Debug, Default)]
pub struct GtfsStatic {
    /// Every stop, in file order.
    pub stops: Vec<StopRef>,
    stop_index: HashMap<String, u32>,
    /// Routes by `route_id`.
    pub routes: HashMap<String, RouteRef>,
    /// Trips by `trip_id`.
    pub trips: HashMap<String, TripRef>,
    /// The mean of each shape's points, by `shape_id`.
    pub shape_centroids: HashMap<String, GeoPoint>,
    route_centroids: HashMap<String, GeoPoint>,
    /// Rows of `stop_times.txt` read.
    pub stop_time_count: usize,
}

impl GtfsStatic {
    /// Reads the reference data from a GTFS zip.
    pub fn load(path: &Path) -> Result<GtfsStatic, StaticError> {
        let zip_name = path.display().to_string();
        let fail = |place: &str, reason: String| StaticError { zip: zip_name.clone(), place: place.to_owned(), reason };
        let meta = std::fs::metadata(path).map_err(|e| fail("$", format!("cannot read: {e}")))?;
        if meta.len() > MAX_ZIP_BYTES {
            return Err(fail("$", format!("{} bytes exceeds the {MAX_ZIP_BYTES}-byte limit", meta.len())));
        }
        let bytes = std::fs::read(path).map_err(|e| fail("$", format!("cannot read: {e}")))?;
        Self::from_zip_bytes(&zip_name, &bytes)
    }

    /// Reads the reference data from the bytes of a GTFS zip; `zip_name` is used in errors.
    pub fn from_zip_bytes(zip_name: &str, bytes: &[u8]) -> Result<GtfsStatic, StaticError> {
        let zip = ZipIndex::read(bytes).map_err(|Refusal(reason)| StaticError { zip: zip_name.to_owned(), place: "$".into(), reason })?;
        let member = |name: &str| -> Result<Option<Vec<u8>>, StaticError> {
            zip.member(bytes, name).map_err(|Refusal(reason)| StaticError { zip: zip_name.to_owned(), place: name.to_owned(), reason })
        };
        let mut g = GtfsStatic::default();
        let stops = member("stops.txt")?.ok_or_else(|| StaticError {
            zip: zip_name.to_owned(),
            place: "stops.txt".into(),
            reason: "missing (a GTFS feed must have stops.txt)".into(),
        })?;
        g.read_stops(zip_name, &stops)?;
        if let Some(routes) = member("routes.txt")? {
            g.read_routes(zip_name, &routes)?;
        }
        if let Some(trips) = member("trips.txt")? {
            g.read_trips(zip_name, &trips)?;
        }
        if let Some(st) = member("stop_times.txt")? {
            g.read_stop_times(zip_name, &st)?;
        }
        if let Some(shapes) = member("shapes.txt")? {
            g.read_shapes(zip_name, &shapes)?;
        }
        g.route_centroids = g.compute_route_centroids();
        Ok(g)
    }

    /// A stop by id.
    pub fn stop(&self, id: &str) -> Option<&StopRef> {
        self.stop_index.get(id).map(|&i| &self.stops[i as usize])
    }

    /// Where a stop is: its own coordinates, else its parent station's.
    pub fn stop_position(&self, id: &str) -> Option<GeoPoint> {
        let stop = self.stop(id)?;
        stop.position.or_else(|| stop.parent.as_deref().and_then(|p| self.stop(p)).and_then(|p| p.position))
    }

    /// The stop id at `sequence` of `trip_id`, from `stop_times.txt`.
    pub fn stop_at_sequence(&self, trip_id: &str, sequence: u32) -> Option<&str> {
        let trip = self.trips.get(trip_id)?;
        let i = trip.stops.binary_search_by_key(&sequence, |(s, _)| *s).ok()?;
        Some(self.stops[trip.stops[i].1 as usize].id.as_str())
    }

    /// A representative point of a route: the centroid of its trips' shapes, or of its trips'
    /// stops when none has a shape.
    pub fn route_position(&self, route_id: &str) -> Option<GeoPoint> {
        self.route_centroids.get(route_id).copied()
    }

    fn compute_route_centroids(&self) -> HashMap<String, GeoPoint> {
        let mut by_shape: HashMap<&str, Mean> = HashMap::new();
        let mut by_stops: HashMap<&str, Mean> = HashMap::new();
        let mut seen_shapes: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
        for trip in self.trips.values() {
            // Stop times of trips missing from trips.txt belong to no known route.
            if trip.route_id.is_empty() {
                continue;
            }
            if let Some(c) = trip.shape_id.as_deref().and_then(|s| self.shape_centroids.get(s)) {
                // Each shape counts once per route, however many trips run it.
                if seen_shapes.insert((trip.route_id.as_str(), trip.shape_id.as_deref().unwrap_or_default())) {
                    by_shape.entry(&trip.route_id).or_default().add(*c);
                }
            }
            for &(_, s) in &trip.stops {
                if let Some(p) = self.stops[s as usize].position {
                    by_stops.entry(&trip.route_id).or_default().add(p);
                }
            }
        }
        let mut out = HashMap::new();
        for (route, mean) in by_stops {
            if let Some(p) = mean.point() {
                out.insert(route.to_owned(), p);
            }
        }
        for (route, mean) in by_shape {
            if let Some(p) = mean.point() {
                out.insert(route.to_owned(), p);
            }
        }
        out
    }

    fn read_stops(&mut self, zip: &str, data: &[u8]) -> Result<(), StaticError> {
        let mut t = Table::new(zip, "stops.txt", data)?;
        let (id, name, lat, lon, parent) = (t.col("stop_id", true)?, t.col("stop_name", false)?, t.col("stop_lat", false)?, t.col("stop_lon", false)?, t.col("parent_station", false)?);
        while let Some(row) = t.next_row()? {
            let stop_id = row.req(id)?.to_owned();
            let lat_v = row.opt_f64(lat)?;
            let lon_v = row.opt_f64(lon)?;
            let position = match (lat_v, lon_v) {
                (Some(la), Some(lo)) => Some(GeoPoint::new(lo, la).ok_or_else(|| row.error(lat, format!("position {lo},{la} is out of range")))?),
                _ => None,
            };
            let stop = StopRef { id: stop_id.clone(), name: row.opt(name).unwrap_or_default().to_owned(), position, parent: row.opt(parent).map(str::to_owned) };
            if self.stop_index.contains_key(&stop_id) {
                return Err(row.error(id, format!("stop_id {stop_id:?} appears twice")));
            }
            self.stop_index.insert(stop_id, self.stops.len() as u32);
            self.stops.push(stop);
        }
        Ok(())
    }

    fn read_routes(&mut self, zip: &str, data: &[u8]) -> Result<(), StaticError> {
        let mut t = Table::new(zip, "routes.txt", data)?;
        let (id, short, long, kind) = (t.col("route_id", true)?, t.col("route_short_name", false)?, t.col("route_long_name", false)?, t.col("route_type", false)?);
        while let Some(row) = t.next_row()? {
            let route = RouteRef {
                short_name: row.opt(short).unwrap_or_default().to_owned(),
                long_name: row.opt(long).unwrap_or_default().to_owned(),
                route_type: row.opt(kind).and_then(|k| k.parse().ok()),
            };
            self.routes.insert(row.req(id)?.to_owned(), route);
        }
        Ok(())
    }

    fn read_trips(&mut self, zip: &str, data: &[u8]) -> Result<(), StaticError> {
        let mut t = Table::new(zip, "trips.txt", data)?;
        let (id, route, shape) = (t.col("trip_id", true)?, t.col("route_id", true)?, t.col("shape_id", false)?);
        while let Some(row) = t.next_row()? {
            let trip = TripRef { route_id: row.req(route)?.to_owned(), shape_id: row.opt(shape).map(str::to_owned), stops: Vec::new() };
            self.trips.insert(row.req(id)?.to_owned(), trip);
        }
        Ok(())
    }

    fn read_stop_times(&mut self, zip: &str, data: &[u8]) -> Result<(), StaticError> {
        let mut t = Table::new(zip, "stop_times.txt", data)?;
        let (trip, stop, seq) = (t.col("trip_id", true)?, t.col("stop_id", false)?, t.col("stop_sequence", true)?);
        while let Some(row) = t.next_row()? {
            self.stop_time_count += 1;
            // Flexible services (GTFS-Flex) leave stop_id empty for zones: nothing to place.
            let Some(stop_id) = row.opt(stop) else { continue };
            let sequence: u32 = row.req(seq)?.parse().map_err(|_| row.error(seq, format!("{:?} is not a non-negative integer", row.opt(seq).unwrap_or_default())))?;
            let stop_idx = *self.stop_index.get(stop_id).ok_or_else(|| row.error(stop, format!("stop_id {stop_id:?} is not in stops.txt")))?;
            // A stop time of an unknown trip is kept under that trip id: it still places stops.
            self.trips.entry(row.req(trip)?.to_owned()).or_default().stops.push((sequence, stop_idx));
        }
        for trip in self.trips.values_mut() {
            trip.stops.sort_unstable();
        }
        Ok(())
    }

    fn read_shapes(&mut self, zip: &str, data: &[u8]) -> Result<(), StaticError> {
        let mut t = Table::new(zip, "shapes.txt", data)?;
        let (id, lat, lon) = (t.col("shape_id", true)?, t.col("shape_pt_lat", true)?, t.col("shape_pt_lon", true)?);
        let mut means: HashMap<String, Mean> = HashMap::new();
        while let Some(row) = t.next_row()? {
            let la = row.opt_f64(lat)?.ok_or_else(|| row.error(lat, "missing".into()))?;
            let lo = row.opt_f64(lon)?.ok_or_else(|| row.error(lon, "missing".into()))?;
            let p = GeoPoint::new(lo, la).ok_or_else(|| row.error(lat, format!("position {lo},{la} is out of range")))?;
            let shape = row.req(id)?;
            match means.get_mut(shape) {
                Some(m) => m.add(p),
                None => {
                    let mut m = Mean::default();
                    m.add(p);
                    means.insert(shape.to_owned(), m);
                }
            }
        }
        self.shape_centroids = means.into_iter().filter_map(|(k, m)| m.point().map(|p| (k, p))).collect();
        Ok(())
    }
}

/// A running mean of points. Longitudes are averaged plainly: GTFS feeds do not straddle the
/// antimeridian in practice, and a feed that did would get a wrong centroid, not a crash.
#[derive(Debug, Default, Clone, Copy)]
pub struct Mean {
    lon: f64,
    lat: f64,
    n: u64,
}

impl Mean {
    /// Adds a point.
    pub fn add(&mut self, p: GeoPoint) {
        self.lon += p.lon;
        self.lat += p.lat;
        self.n += 1;
    }

    /// The mean, if any point was added.
    pub fn point(&self) -> Option<GeoPoint> {
        (self.n > 0).then(|| GeoPoint::new(self.lon / self.n as f64, self.lat / self.n as f64)).flatten()
    }
}

/// One CSV member being read, with enough context to name the place of any error.
struct Table<'a> {
    zip: &'a str,
    file: &'static str,
    headers: Vec<String>,
    reader: csv::Reader<&'a [u8]>,
    record: csv::StringRecord,
}

struct Row<'t, 'a> {
    table: &'t Table<'a>,
    line: u64,
}

impl<'a> Table<'a> {
    fn new(zip: &'a str, file: &'static str, data: &'a [u8]) -> Result<Table<'a>, StaticError> {
        // GTFS files are often written with a UTF-8 byte order mark; it is not part of the
        // first column's name.
        let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
        let headers = reader
            .headers()
            .map_err(|e| StaticError { zip: zip.to_owned(), place: format!("{file} line 1"), reason: format!("bad header: {e}") })?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        Ok(Table { zip, file, headers, reader, record: csv::StringRecord::new() })
    }

    /// The index of a column; a missing required column is an error naming it.
    fn col(&self, name: &str, required: bool) -> Result<Option<usize>, StaticError> {
        match self.headers.iter().position(|h| h == name) {
            Some(i) => Ok(Some(i)),
            None if required => Err(StaticError {
                zip: self.zip.to_owned(),
                place: format!("{} line 1, field {name}", self.file),
                reason: "required column is missing".into(),
            }),
            None => Ok(None),
        }
    }

    fn next_row(&mut self) -> Result<Option<Row<'_, 'a>>, StaticError> {
        match self.reader.read_record(&mut self.record) {
            Ok(true) => {
                let line = self.record.position().map(|p| p.line()).unwrap_or(0);
                Ok(Some(Row { table: self, line }))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                Err(StaticError { zip: self.zip.to_owned(), place: format!("{} line {line}", self.file), reason: e.to_string() })
            }
        }
    }
}

impl Row<'_, '_> {
    fn error(&self, col: Option<usize>, reason: String) -> StaticError {
        let field = col.and_then(|c| self.table.headers.get(c)).map(|h| format!(", field {h}")).unwrap_or_default();
        StaticError { zip: self.table.zip.to_owned(), place: format!("{} line {}{field}", self.table.file, self.line), reason }
    }

    fn opt(&self, col: Option<usize>) -> Option<&str> {
        col.and_then(|c| self.table.record.get(c)).map(str::trim).filter(|s| !s.is_empty())
    }

    fn req(&self, col: Option<usize>) -> Result<&str, StaticError> {
        self.opt(col).ok_or_else(|| self.error(col, "missing or empty".into()))
    }

    fn opt_f64(&self, col: Option<usize>) -> Result<Option<f64>, StaticError> {
        self.opt(col)
            .map(|s| s.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| self.error(col, format!("{s:?} is not a number"))))
            .transpose()
    }
}

/// The central directory of a zip: where each member's data starts and how it is stored.
struct ZipIndex {
    members: Vec<ZipMember>,
}

struct ZipMember {
    name: String,
    method: u16,
    flags: u16,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl ZipIndex {
    fn read(b: &[u8]) -> Result<ZipIndex, Refusal> {
        // The end-of-central-directory record is 22 bytes plus a comment of up to 64 KiB, so it
        // starts within the last 65,557 bytes; search backwards for its signature.
        const EOCD: u32 = 0x0605_4b50;
        let lowest = b.len().saturating_sub(22 + 65_535);
        let eocd = (lowest..=b.len().saturating_sub(22))
            .rev()
            .find(|&i| u32_at(b, i) == Some(EOCD))
            .ok_or("not a zip file (no end-of-central-directory record)")?;
        let count = u16_at(b, eocd + 10).ok_or("truncated zip")? as usize;
        let cd_size = u32_at(b, eocd + 12).ok_or("truncated zip")? as usize;
        let cd_offset = u32_at(b, eocd + 16).ok_or("truncated zip")? as usize;
        if cd_offset == 0xFFFF_FFFF || count == 0xFFFF {
            return Err("zip64 archives are not supported".into());
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > b.len()) {
            return Err(format!("central directory at byte {cd_offset} runs past the end of the file").into());
        }
        let mut members = Vec::with_capacity(count.min(4096));
        let mut at = cd_offset;
        for i in 0..count {
            if u32_at(b, at) != Some(0x0201_4b50) {
                return Err(format!("central directory entry {i} at byte {at} has no signature").into());
            }
            let field = |off: usize| u16_at(b, at + off).ok_or_else(|| format!("central directory entry {i} is truncated"));
            let field32 = |off: usize| u32_at(b, at + off).ok_or_else(|| format!("central directory entry {i} is truncated"));
            let flags = field(8)?;
            let method = field(10)?;
            let compressed = u64::from(field32(20)?);
            let uncompressed = u64::from(field32(24)?);
            let name_len = field(28)? as usize;
            let extra_len = field(30)? as usize;
            let comment_len = field(32)? as usize;
            let local_offset = u64::from(field32(42)?);
            let name = b.get(at + 46..at + 46 + name_len).ok_or_else(|| format!("central directory entry {i} name is truncated"))?;
            members.push(ZipMember { name: String::from_utf8_lossy(name).into_owned(), method, flags, compressed, uncompressed, local_offset });
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(ZipIndex { members })
    }

    /// The inflated bytes of the member called `name` (at the top level or inside one folder,
    /// as some publishers zip the folder), or `None` when the zip has no such member.
    fn member(&self, b: &[u8], name: &str) -> Result<Option<Vec<u8>>, Refusal> {
        let found = self
            .members
            .iter()
            .find(|m| m.name == name)
            .or_else(|| self.members.iter().find(|m| m.name.rsplit_once('/').is_some_and(|(dir, file)| file == name && !dir.contains('/'))));
        let Some(m) = found else { return Ok(None) };
        if m.flags & 1 != 0 {
            return Err("member is encrypted".into());
        }
        if m.compressed == 0xFFFF_FFFF || m.uncompressed == 0xFFFF_FFFF {
            return Err("zip64 members are not supported".into());
        }
        if m.uncompressed > MAX_MEMBER_BYTES {
            return Err(format!("inflates to {} bytes, over the {MAX_MEMBER_BYTES}-byte limit", m.uncompressed).into());
        }
        let lo = usize::try_from(m.local_offset).map_err(|_| "offset out of range")?;
        if u32_at(b, lo) != Some(0x0403_4b50) {
            return Err(format!("no local header at byte {lo}").into());
        }
        let name_len = u16_at(b, lo + 26).ok_or("local header truncated")? as usize;
        let extra_len = u16_at(b, lo + 28).ok_or("local header truncated")? as usize;
        let start = lo + 30 + name_len + extra_len;
        let end = start.checked_add(m.compressed as usize).ok_or("size out of range")?;
        let data = b.get(start..end).ok_or_else(|| format!("data at bytes {start}..{end} runs past the end of the file"))?;
        // Never trust the declared size alone: read at most one byte more than it promises,
        // so a member that inflates beyond its declaration is caught rather than followed.
        let limit = m.uncompressed + 1;
        let mut out = Vec::with_capacity(m.uncompressed.min(64 * 1024 * 1024) as usize);
        match m.method {
            0 => out.extend_from_slice(data),
            8 => {
                flate2::read::DeflateDecoder::new(data)
                    .take(limit)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("cannot inflate: {e}"))?;
            }
            other => return Err(format!("compression method {other} is not supported (only stored and deflate)").into()),
        }
        if out.len() as u64 != m.uncompressed {
            return Err(format!("inflated to {} bytes but the zip declares {}", out.len(), m.uncompressed).into());
        }
        Ok(Some(out))
    }
}

/// Helpers for tests of this module and of the GTFS-Realtime adapter.
#[cfg(test)]
pub(crate) mod testing {
    /// Builds a zip of stored members, enough to test the reader without a zip writer.
    pub fn stored_zip(files: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, body) in files {
            let offset = out.len() as u32;
            let crc = 0u32; // The reader does not check CRCs; inflate and size checks catch damage.
            let mut local = vec![0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            local.extend_from_slice(&crc.to_le_bytes());
            local.extend_from_slice(&(body.len() as u32).to_le_bytes());
            local.extend_from_slice(&(body.len() as u32).to_le_bytes());
            local.extend_from_slice(&(name.len() as u16).to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&local);
            out.extend_from_slice(body.as_bytes());
            let mut c = vec![0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            c.extend_from_slice(&crc.to_le_bytes());
            c.extend_from_slice(&(body.len() as u32).to_le_bytes());
            c.extend_from_slice(&(body.len() as u32).to_le_bytes());
            c.extend_from_slice(&(name.len() as u16).to_le_bytes());
            c.extend_from_slice(&[0; 12]);
            c.extend_from_slice(&offset.to_le_bytes());
            c.extend_from_slice(name.as_bytes());
            central.extend_from_slice(&c);
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::stored_zip;
    use super::*;

    #[test]
    fn a_small_feed_places_stops_trips_and_routes() {
        let zip = stored_zip(&[
            ("feed/stops.txt", "\u{feff}stop_id,stop_name,stop_lat,stop_lon,parent_station\nS,Station,60.17,24.94,\nP1,Platform 1,,,S\nA,Stop A,60.0,24.0,\nB,Stop B,60.2,24.2,\n"),
            ("feed/routes.txt", "route_id,route_short_name,route_long_name,route_type\n4,4,Munkkiniemi - Katajanokka,0\n"),
            ("feed/trips.txt", "route_id,service_id,trip_id,shape_id\n4,wk,t1,\n"),
            ("feed/stop_times.txt", "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nt1,08:00:00,08:00:00,B,2\nt1,07:58:00,07:58:00,A,1\n"),
        ]);
        let g = GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap();
        assert_eq!(g.stops.len(), 4);
        assert_eq!(g.stop_position("P1"), GeoPoint::new(24.94, 60.17));
        assert_eq!(g.stop_at_sequence("t1", 2), Some("B"));
        assert_eq!(g.stop_at_sequence("t1", 3), None);
        let r = g.route_position("4").unwrap();
        assert!((r.lon - 24.1).abs() < 1e-9 && (r.lat - 60.1).abs() < 1e-9);
        assert_eq!(g.routes["4"].long_name, "Munkkiniemi - Katajanokka");
    }

    #[test]
    fn errors_name_the_zip_member_line_and_field() {
        let e = GtfsStatic::from_zip_bytes("t.zip", &stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,60.0,24.0\nB,north,24.1\n")])).unwrap_err();
        assert_eq!(e.to_string(), "t.zip: stops.txt line 3, field stop_lat: \"north\" is not a number");
        let e = GtfsStatic::from_zip_bytes("t.zip", &stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,95.0,24.0\n")])).unwrap_err();
        assert!(e.reason.contains("out of range"), "{e}");
        let e = GtfsStatic::from_zip_bytes("t.zip", &stored_zip(&[("stops.txt", "stop_name\nx\n")])).unwrap_err();
        assert_eq!(e.place, "stops.txt line 1, field stop_id");
        let e = GtfsStatic::from_zip_bytes("t.zip", &stored_zip(&[("routes.txt", "route_id\n1\n")])).unwrap_err();
        assert_eq!((e.place.as_str(), e.reason.as_str()), ("stops.txt", "missing (a GTFS feed must have stops.txt)"));
        let e = GtfsStatic::from_zip_bytes(
            "t.zip",
            &stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,60,24\n"), ("stop_times.txt", "trip_id,stop_id,stop_sequence\nt,Z,1\n")]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "t.zip: stop_times.txt line 2, field stop_id: stop_id \"Z\" is not in stops.txt");
        assert!(GtfsStatic::from_zip_bytes("t.zip", b"PK\x03\x04 not really").unwrap_err().reason.starts_with("not a zip"));
        let mut cut = stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,60,24\n")]);
        cut.drain(10..30);
        assert!(GtfsStatic::from_zip_bytes("t.zip", &cut).is_err());
        let e = GtfsStatic::load(Path::new("/nonexistent/gtfs.zip")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/gtfs.zip: $: cannot read"), "{e}");
    }
}
