//! GTFS static (a zip of CSV files) as reference data for the GTFS-Realtime adapter: where each
//! stop is, which route each trip runs, the stops of each trip in order, and a representative
//! point of each route (the centroid of its shapes, or of its stops when it has no shape).
//!
//! Only `stops.txt` (required), `routes.txt`, `trips.txt`, `stop_times.txt` and `shapes.txt` are
//! read; calendars, fares and the rest are not needed to place a realtime observation. The zip
//! is read with the `zip` crate (stored and deflate members only), and each member is streamed
//! into the CSV reader as it is inflated, so no member is held whole in memory and every
//! member's CRC-32 is checked when its end is reached.
//!
//! Limits: the zip file at most [`MAX_ZIP_BYTES`], each member at most [`MAX_MEMBER_BYTES`]
//! once inflated (a "zip bomb" stops there: a member that declares more is refused before it is
//! read, and one that inflates past what it declares fails as soon as it does), rows of at most
//! the CSV reader's defaults. Errors name the zip, the member, the line and the field:
//! `cairns.zip: stops.txt line 12, field stop_lat: "abc" is not a number`.

use std::collections::HashMap;
use std::io::{self, Read, Seek};
use std::path::Path;

use cityops_core::model::GeoPoint;
use zip::result::ZipError;
use zip::ZipArchive;

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
        let fail = |reason: String| StaticError {
            zip: zip_name.clone(),
            place: "$".into(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        // The size of the file that was opened, not of whatever the path names a moment later.
        let len = file.metadata().map_err(|e| fail(format!("cannot read: {e}")))?.len();
        if len > MAX_ZIP_BYTES {
            return Err(fail(format!("{len} bytes exceeds the {MAX_ZIP_BYTES}-byte limit")));
        }
        Self::from_zip_reader(&zip_name, io::BufReader::new(file))
    }

    /// Reads the reference data from the bytes of a GTFS zip; `zip_name` is used in errors.
    pub fn from_zip_bytes(zip_name: &str, bytes: &[u8]) -> Result<GtfsStatic, StaticError> {
        Self::from_zip_reader(zip_name, io::Cursor::new(bytes))
    }

    fn from_zip_reader<R: Read + Seek>(zip_name: &str, reader: R) -> Result<GtfsStatic, StaticError> {
        let mut zip = GtfsZip::open(zip_name, reader)?;
        let mut g = GtfsStatic::default();
        if !zip.read_member("stops.txt", |t| g.read_stops(t))? {
            return Err(StaticError {
                zip: zip_name.to_owned(),
                place: "stops.txt".into(),
                reason: "missing (a GTFS feed must have stops.txt)".into(),
            });
        }
        zip.read_member("routes.txt", |t| g.read_routes(t))?;
        zip.read_member("trips.txt", |t| g.read_trips(t))?;
        zip.read_member("stop_times.txt", |t| g.read_stop_times(t))?;
        zip.read_member("shapes.txt", |t| g.read_shapes(t))?;
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
        stop.position.or_else(|| {
            stop.parent
                .as_deref()
                .and_then(|p| self.stop(p))
                .and_then(|p| p.position)
        })
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

    fn read_stops(&mut self, t: &mut Table<'_>) -> Result<(), StaticError> {
        let (id, name, lat, lon, parent) = (
            t.col("stop_id", true)?,
            t.col("stop_name", false)?,
            t.col("stop_lat", false)?,
            t.col("stop_lon", false)?,
            t.col("parent_station", false)?,
        );
        while let Some(row) = t.next_row()? {
            let stop_id = row.req(id)?.to_owned();
            let lat_v = row.opt_f64(lat)?;
            let lon_v = row.opt_f64(lon)?;
            let position = match (lat_v, lon_v) {
                (Some(la), Some(lo)) => Some(
                    GeoPoint::new(lo, la)
                        .ok_or_else(|| row.error(lat, format!("position {lo},{la} is out of range")))?,
                ),
                _ => None,
            };
            let stop = StopRef {
                id: stop_id.clone(),
                name: row.opt(name).unwrap_or_default().to_owned(),
                position,
                parent: row.opt(parent).map(str::to_owned),
            };
            if self.stop_index.contains_key(&stop_id) {
                return Err(row.error(id, format!("stop_id {stop_id:?} appears twice")));
            }
            self.stop_index.insert(stop_id, self.stops.len() as u32);
            self.stops.push(stop);
        }
        Ok(())
    }

    fn read_routes(&mut self, t: &mut Table<'_>) -> Result<(), StaticError> {
        let (id, short, long, kind) = (
            t.col("route_id", true)?,
            t.col("route_short_name", false)?,
            t.col("route_long_name", false)?,
            t.col("route_type", false)?,
        );
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

    fn read_trips(&mut self, t: &mut Table<'_>) -> Result<(), StaticError> {
        let (id, route, shape) = (
            t.col("trip_id", true)?,
            t.col("route_id", true)?,
            t.col("shape_id", false)?,
        );
        while let Some(row) = t.next_row()? {
            let trip = TripRef {
                route_id: row.req(route)?.to_owned(),
                shape_id: row.opt(shape).map(str::to_owned),
                stops: Vec::new(),
            };
            self.trips.insert(row.req(id)?.to_owned(), trip);
        }
        Ok(())
    }

    fn read_stop_times(&mut self, t: &mut Table<'_>) -> Result<(), StaticError> {
        let (trip, stop, seq) = (
            t.col("trip_id", true)?,
            t.col("stop_id", false)?,
            t.col("stop_sequence", true)?,
        );
        while let Some(row) = t.next_row()? {
            self.stop_time_count += 1;
            // Flexible services (GTFS-Flex) leave stop_id empty for zones: nothing to place.
            let Some(stop_id) = row.opt(stop) else { continue };
            let sequence: u32 = row.req(seq)?.parse().map_err(|_| {
                row.error(
                    seq,
                    format!("{:?} is not a non-negative integer", row.opt(seq).unwrap_or_default()),
                )
            })?;
            let stop_idx = *self
                .stop_index
                .get(stop_id)
                .ok_or_else(|| row.error(stop, format!("stop_id {stop_id:?} is not in stops.txt")))?;
            // A stop time of an unknown trip is kept under that trip id: it still places stops.
            self.trips
                .entry(row.req(trip)?.to_owned())
                .or_default()
                .stops
                .push((sequence, stop_idx));
        }
        for trip in self.trips.values_mut() {
            trip.stops.sort_unstable();
        }
        Ok(())
    }

    fn read_shapes(&mut self, t: &mut Table<'_>) -> Result<(), StaticError> {
        let (id, lat, lon) = (
            t.col("shape_id", true)?,
            t.col("shape_pt_lat", true)?,
            t.col("shape_pt_lon", true)?,
        );
        let mut means: HashMap<String, Mean> = HashMap::new();
        while let Some(row) = t.next_row()? {
            let la = row.opt_f64(lat)?.ok_or_else(|| row.error(lat, "missing".into()))?;
            let lo = row.opt_f64(lon)?.ok_or_else(|| row.error(lon, "missing".into()))?;
            let p =
                GeoPoint::new(lo, la).ok_or_else(|| row.error(lat, format!("position {lo},{la} is out of range")))?;
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
        self.shape_centroids = means
            .into_iter()
            .filter_map(|(k, m)| m.point().map(|p| (k, p)))
            .collect();
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
        (self.n > 0)
            .then(|| GeoPoint::new(self.lon / self.n as f64, self.lat / self.n as f64))
            .flatten()
    }
}

/// An open GTFS zip, whose members are read one at a time as CSV.
struct GtfsZip<'a, R> {
    name: &'a str,
    archive: ZipArchive<R>,
}

impl<'a, R: Read + Seek> GtfsZip<'a, R> {
    fn open(name: &'a str, reader: R) -> Result<Self, StaticError> {
        let archive = ZipArchive::new(reader).map_err(|e| {
            let reason = match e {
                ZipError::Io(e) => format!("cannot read: {e}"),
                ZipError::InvalidArchive(why) => format!("not a zip file, or a damaged one: {why}"),
                ZipError::UnsupportedArchive(why) => format!("unsupported zip: {why}"),
                other => other.to_string(),
            };
            StaticError {
                zip: name.to_owned(),
                place: "$".into(),
                reason,
            }
        })?;
        Ok(GtfsZip { name, archive })
    }

    /// The index of the member called `file`, at the top level or else inside one folder (some
    /// publishers zip the folder rather than its files).
    fn find(&self, file: &str) -> Option<usize> {
        self.archive.index_for_name(file).or_else(|| {
            self.archive.file_names().position(|n| {
                n.is_ok_and(|n| {
                    n.rsplit_once('/')
                        .is_some_and(|(dir, f)| f == file && !dir.contains('/'))
                })
            })
        })
    }

    /// Streams the member called `file` through `read` as a CSV table; `Ok(false)` when the zip
    /// has no such member.
    fn read_member(
        &mut self,
        file: &'static str,
        read: impl FnOnce(&mut Table<'_>) -> Result<(), StaticError>,
    ) -> Result<bool, StaticError> {
        let Some(index) = self.find(file) else { return Ok(false) };
        let zip = self.name;
        let fail = |reason: String| StaticError {
            zip: zip.to_owned(),
            place: file.to_owned(),
            reason,
        };
        let member = self.archive.by_index(index).map_err(|e| {
            fail(match e {
                ZipError::Io(e) => format!("cannot read: {e}"),
                ZipError::InvalidArchive(why) => format!("damaged: {why}"),
                ZipError::UnsupportedArchive(why) => {
                    format!("not supported: {why} (only stored and deflate members without encryption are)")
                }
                other => other.to_string(),
            })
        })?;
        let declared = member.size();
        // Refused before anything is inflated; `Member` holds a member to what it declares.
        if declared > MAX_MEMBER_BYTES {
            return Err(fail(format!(
                "inflates to {declared} bytes, over the {MAX_MEMBER_BYTES}-byte limit"
            )));
        }
        let mut table = Table::new(
            zip,
            file,
            Box::new(Member {
                inner: member,
                declared,
                read: 0,
            }),
        )?;
        match read(&mut table) {
            Ok(()) => Ok(true),
            Err(e) if table.unreadable => Err(e),
            Err(e) => Err(damage(zip, file, table.reader.get_mut()).unwrap_or(e)),
        }
    }
}

/// The inflated bytes of one member as they are read. The declared size is what the member
/// limit was checked against, so a member must not inflate past it (it fails as soon as it
/// does, rather than after the limit's worth of memory or time) nor end short of it.
struct Member<R> {
    inner: R,
    declared: u64,
    read: u64,
}

impl<R: Read> Read for Member<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.declared {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("inflated to more than the {} bytes the zip declares", self.declared),
            ));
        }
        if n == 0 && !buf.is_empty() && self.read != self.declared {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("inflated to {} bytes but the zip declares {}", self.read, self.declared),
            ));
        }
        Ok(n)
    }
}

/// One CSV member being read, with enough context to name the place of any error.
struct Table<'a> {
    zip: &'a str,
    file: &'static str,
    headers: Vec<String>,
    reader: csv::Reader<Box<dyn Read + 'a>>,
    record: csv::StringRecord,
    /// Whether reading the member itself failed (as opposed to its CSV being wrong).
    unreadable: bool,
}

struct Row<'t, 'a> {
    table: &'t Table<'a>,
    line: u64,
}

impl<'a> Table<'a> {
    fn new(zip: &'a str, file: &'static str, mut data: Box<dyn Read + 'a>) -> Result<Table<'a>, StaticError> {
        // GTFS files are often written with a UTF-8 byte order mark; it is not part of the
        // first column's name. The CSV reader drops one only when its first read returns all
        // three bytes, which a stream does not promise, so it is taken off here.
        let mut head = Vec::with_capacity(3);
        (&mut data).take(3).read_to_end(&mut head).map_err(|e| StaticError {
            zip: zip.to_owned(),
            place: file.to_owned(),
            reason: format!("cannot read: {e}"),
        })?;
        if head == b"\xEF\xBB\xBF" {
            head.clear();
        }
        let data: Box<dyn Read + 'a> = Box::new(io::Cursor::new(head).chain(data));
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
        let headers = match reader.headers() {
            Ok(h) => h.iter().map(|h| h.trim().to_owned()).collect(),
            Err(e) if e.is_io_error() => return Err(read_error(zip, file, e)),
            Err(e) => {
                let bad = StaticError {
                    zip: zip.to_owned(),
                    place: format!("{file} line 1"),
                    reason: format!("bad header: {e}"),
                };
                return Err(damage(zip, file, reader.get_mut()).unwrap_or(bad));
            }
        };
        Ok(Table {
            zip,
            file,
            headers,
            reader,
            record: csv::StringRecord::new(),
            unreadable: false,
        })
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
            Err(e) if e.is_io_error() => {
                self.unreadable = true;
                Err(read_error(self.zip, self.file, e))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                Err(StaticError {
                    zip: self.zip.to_owned(),
                    place: format!("{} line {line}", self.file),
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// A damaged member can look like bad CSV before its end, where its CRC-32 is checked, is
/// reached: after a CSV error the member is read to its end, and any damage found is the error
/// reported instead of what the damage looked like. (This costs reading the rest of the member,
/// on errors only.)
fn damage(zip: &str, file: &str, rest: &mut dyn Read) -> Option<StaticError> {
    io::copy(rest, &mut io::sink()).err().map(|e| StaticError {
        zip: zip.to_owned(),
        place: file.to_owned(),
        reason: format!("cannot read: {e}"),
    })
}

/// A member that could not be read (inflated, checked against its CRC-32 or its declared
/// size), named without a line: the damage is in the zip, not in the CSV.
fn read_error(zip: &str, file: &str, e: csv::Error) -> StaticError {
    StaticError {
        zip: zip.to_owned(),
        place: file.to_owned(),
        reason: format!("cannot read: {e}"),
    }
}

impl Row<'_, '_> {
    fn error(&self, col: Option<usize>, reason: String) -> StaticError {
        let field = col
            .and_then(|c| self.table.headers.get(c))
            .map(|h| format!(", field {h}"))
            .unwrap_or_default();
        StaticError {
            zip: self.table.zip.to_owned(),
            place: format!("{} line {}{field}", self.table.file, self.line),
            reason,
        }
    }

    fn opt(&self, col: Option<usize>) -> Option<&str> {
        col.and_then(|c| self.table.record.get(c))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    fn req(&self, col: Option<usize>) -> Result<&str, StaticError> {
        self.opt(col).ok_or_else(|| self.error(col, "missing or empty".into()))
    }

    fn opt_f64(&self, col: Option<usize>) -> Result<Option<f64>, StaticError> {
        self.opt(col)
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| self.error(col, format!("{s:?} is not a number")))
            })
            .transpose()
    }
}

/// Helpers for tests of this module and of the GTFS-Realtime adapter.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::Write;

    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    /// Builds a zip of stored members.
    pub fn stored_zip(files: &[(&str, &str)]) -> Vec<u8> {
        zip_with(CompressionMethod::Stored, files)
    }

    /// Builds a zip whose members are all compressed with `method`.
    pub fn zip_with(method: CompressionMethod, files: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in files {
            w.start_file(*name, SimpleFileOptions::default().compression_method(method))
                .unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
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
        let e = GtfsStatic::from_zip_bytes(
            "t.zip",
            &stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,60.0,24.0\nB,north,24.1\n")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.zip: stops.txt line 3, field stop_lat: \"north\" is not a number"
        );
        let e = GtfsStatic::from_zip_bytes(
            "t.zip",
            &stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,95.0,24.0\n")]),
        )
        .unwrap_err();
        assert!(e.reason.contains("out of range"), "{e}");
        let e = GtfsStatic::from_zip_bytes("t.zip", &stored_zip(&[("stops.txt", "stop_name\nx\n")])).unwrap_err();
        assert_eq!(e.place, "stops.txt line 1, field stop_id");
        let e = GtfsStatic::from_zip_bytes("t.zip", &stored_zip(&[("routes.txt", "route_id\n1\n")])).unwrap_err();
        assert_eq!(
            (e.place.as_str(), e.reason.as_str()),
            ("stops.txt", "missing (a GTFS feed must have stops.txt)")
        );
        let e = GtfsStatic::from_zip_bytes(
            "t.zip",
            &stored_zip(&[
                ("stops.txt", "stop_id,stop_lat,stop_lon\nA,60,24\n"),
                ("stop_times.txt", "trip_id,stop_id,stop_sequence\nt,Z,1\n"),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.zip: stop_times.txt line 2, field stop_id: stop_id \"Z\" is not in stops.txt"
        );
        assert!(GtfsStatic::from_zip_bytes("t.zip", b"PK\x03\x04 not really")
            .unwrap_err()
            .reason
            .starts_with("not a zip"));
        let mut cut = stored_zip(&[("stops.txt", "stop_id,stop_lat,stop_lon\nA,60,24\n")]);
        cut.drain(10..30);
        assert!(GtfsStatic::from_zip_bytes("t.zip", &cut).is_err());
        let e = GtfsStatic::load(Path::new("/nonexistent/gtfs.zip")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/gtfs.zip: $: cannot read"),
            "{e}"
        );
    }

    const STOPS: &str = "stop_id,stop_lat,stop_lon\nA,60.0,24.0\nB,60.2,24.2\n";

    /// Where the fixed fields of the first local header and central directory entry are.
    fn headers(zip: &[u8]) -> (usize, usize) {
        let find = |sig: &[u8]| zip.windows(4).position(|w| w == sig).unwrap();
        (find(b"PK\x03\x04"), find(b"PK\x01\x02"))
    }

    /// Overwrites the uncompressed size the zip declares for its first member.
    fn declare_size(zip: &mut [u8], size: u32) {
        let (local, central) = headers(zip);
        zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
    }

    #[test]
    fn deflated_members_are_read_like_stored_ones() {
        let zip = testing::zip_with(zip::CompressionMethod::Deflated, &[("gtfs/stops.txt", STOPS)]);
        let g = GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap();
        assert_eq!(g.stop_position("B"), GeoPoint::new(24.2, 60.2));
    }

    #[test]
    fn a_damaged_member_is_an_error_naming_the_zip_and_the_member() {
        for method in [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated] {
            let mut zip = testing::zip_with(method, &[("stops.txt", STOPS)]);
            // The member's data starts right after its local header (30 bytes, the name, no
            // extra field); its last byte is flipped.
            let (local, central) = headers(&zip);
            let compressed = u32::from_le_bytes(zip[central + 20..central + 24].try_into().unwrap()) as usize;
            let name_len = u16::from_le_bytes([zip[local + 26], zip[local + 27]]) as usize;
            let extra_len = u16::from_le_bytes([zip[local + 28], zip[local + 29]]) as usize;
            zip[local + 30 + name_len + extra_len + compressed - 1] ^= 0x5A;
            let e = GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap_err();
            assert_eq!(
                (e.zip.as_str(), e.place.as_str()),
                ("t.zip", "stops.txt"),
                "{method:?}: {e}"
            );
            assert!(e.reason.starts_with("cannot read: "), "{method:?}: {e}");
        }
        let zip = testing::stored_zip(&[("stops.txt", STOPS)]);
        let (local, _) = headers(&zip);
        let name_len = "stops.txt".len();
        for (at, flip) in [(3, 0x01), (3, 0x80)] {
            // A column name that is wrong ("stoq_id"), then one that is not UTF-8: both are
            // reported as the damage they are.
            let mut zip = zip.clone();
            zip[local + 30 + name_len + at] ^= flip;
            assert_eq!(
                GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap_err().to_string(),
                "t.zip: stops.txt: cannot read: Invalid checksum"
            );
        }
    }

    #[test]
    fn members_are_held_to_the_limit_and_to_their_declared_size() {
        let mut zip = testing::stored_zip(&[("stops.txt", STOPS)]);
        declare_size(&mut zip, 0xFFFF_FFF0);
        let e = GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("t.zip: stops.txt: inflates to 4294967280 bytes, over the {MAX_MEMBER_BYTES}-byte limit")
        );

        let mut zip = testing::zip_with(zip::CompressionMethod::Deflated, &[("stops.txt", STOPS)]);
        declare_size(&mut zip, 10);
        let e = GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap_err();
        assert_eq!(e.place, "stops.txt", "{e}");
        assert!(
            e.reason.starts_with("cannot read: ") && e.reason.contains("declare"),
            "{e}"
        );

        let mut zip = testing::zip_with(zip::CompressionMethod::Deflated, &[("stops.txt", STOPS)]);
        declare_size(&mut zip, STOPS.len() as u32 + 10);
        let e = GtfsStatic::from_zip_bytes("t.zip", &zip).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "t.zip: stops.txt: cannot read: inflated to {} bytes but the zip declares {}",
                STOPS.len(),
                STOPS.len() + 10
            )
        );
    }
}
