//! CAP adapter tests: real alerts from fixtures/samples/cap, cross-checked against Python's
//! standard-library ElementTree, then updates and cancellations, indexes, hostile XML and
//! random input.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cityops_core::model::Layer;
use proptest::prelude::*;

use super::*;

fn ctx() -> MessageContext<'static> {
    MessageContext {
        feed: "alerts",
        layer: Layer::Alerts,
        seq: 3,
        received_ms: 1_700_000_000_000,
        topic: None,
    }
}

/// The real alerts kept in the repository. Their absence fails the test rather than passing
/// silently: a green run must mean the real payloads were read.
fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/samples/cap");
    assert!(
        dir.is_dir(),
        "the real CAP alerts are missing: expected them at {} (fixtures/samples/README.md)",
        dir.display()
    );
    dir
}

fn real(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Somewhere to put areas that carry only geocodes (the middle of Helsinki).
fn helsinki() -> Option<GeoPoint> {
    GeoPoint::new(24.9384, 60.1699)
}

fn field<'o>(o: &'o Observation, key: &str) -> &'o Value {
    o.fields
        .get(key)
        .unwrap_or_else(|| panic!("{} has no field {key}: {:?}", o.entity, o.fields))
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn noaa_tsunami_update_keeps_its_references_and_circle() {
    let d = decode(ctx(), &real("google-PAAQ-4-mg5a94.xml")).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let [o] = d.observations.as_slice() else {
        panic!("one info with one area: {:?}", d.observations)
    };
    assert_eq!(o.entity, "cap:wcatwc@noaa.gov:PAAQ-4-mg5a94#0.0");
    assert_eq!(o.kind, "cap.update");
    // Its severity is "Unknown", which maps to minor.
    assert_eq!(
        (o.severity, field(o, "severity").as_str()),
        (Severity::Minor, Some("Unknown"))
    );
    assert_eq!(o.observed_ms, ms("2013-01-05T10:58:23Z"));
    assert_eq!((o.position.lon, o.position.lat), (-134.9, 55.3));
    assert_eq!(field(o, "position_source"), "circle");
    assert_eq!(field(o, "circle"), &serde_json::json!(["55.3,-134.9 0.0"]));
    assert_eq!(field(o, "event"), "Tsunami Cancellation");
    assert_eq!(field(o, "urgency"), "Past");
    let refs: Vec<&str> = field(o, "references").as_str().unwrap().split_whitespace().collect();
    assert_eq!(
        refs,
        [
            "wcatwc@noaa.gov,PAAQ-1-mg5a94,2013-01-05T09:01:16-00:00",
            "wcatwc@noaa.gov,PAAQ-2-mg5a94,2013-01-05T09:30:16-00:00",
            "wcatwc@noaa.gov,PAAQ-3-mg5a94,2013-01-05T10:17:31-00:00"
        ]
    );
    // Nothing earlier was seen by this adapter, so it replaces nothing.
    assert!(!o.fields.contains_key("replaces"));
    assert!(o.title.starts_with("The tsunami Warning is canceled"), "{}", o.title);
}

#[test]
fn the_tsunami_update_replaces_the_alert_it_references() {
    // The earlier alerts of this chain are not in the collection; make PAAQ-3 from PAAQ-4 by
    // changing only its identity, type and references.
    let update = String::from_utf8(real("google-PAAQ-4-mg5a94.xml")).unwrap();
    let refs_start = update.find("<references>").unwrap();
    let refs_end = update.find("</references>").unwrap() + "</references>".len();
    let earlier = format!("{}{}", &update[..refs_start], &update[refs_end..])
        .replace("PAAQ-4-mg5a94", "PAAQ-3-mg5a94")
        .replace("<msgType>Update</msgType>", "<msgType>Alert</msgType>")
        .replace(
            "<circle>55.3,-134.9 0.0</circle>",
            "<circle>55.3,-134.9 100</circle><circle>57.3,-136.9 50</circle>",
        );
    let mut a = CapAdapter::default();
    let first = a.decode(ctx(), earlier.as_bytes()).unwrap();
    assert_eq!(first.observations[0].entity, "cap:wcatwc@noaa.gov:PAAQ-3-mg5a94#0.0");
    assert_eq!(
        (first.observations[0].position.lon, first.observations[0].position.lat),
        (-135.9, 56.3)
    );
    let second = a.decode(ctx(), update.as_bytes()).unwrap();
    let [o] = second.observations.as_slice() else {
        panic!("{:?}", second.observations)
    };
    assert_eq!(
        o.entity, "cap:wcatwc@noaa.gov:PAAQ-3-mg5a94#0.0",
        "the update takes over the alert's entity"
    );
    assert_eq!(field(o, "replaces"), "cap:wcatwc@noaa.gov:PAAQ-3-mg5a94");
    assert_eq!(field(o, "identifier"), "PAAQ-4-mg5a94");
    // A later update that cites only PAAQ-4 still lands on the same entity.
    let third = update.replace("PAAQ-4-mg5a94", "PAAQ-5-mg5a94").replace(
        &update[refs_start..refs_end],
        "<references>wcatwc@noaa.gov,PAAQ-4-mg5a94,2013-01-05T10:58:23-00:00</references>",
    );
    let d = a.decode(ctx(), third.as_bytes()).unwrap();
    assert_eq!(d.observations[0].entity, "cap:wcatwc@noaa.gov:PAAQ-3-mg5a94#0.0");
}

#[test]
fn the_oasis_earthquake_update_follows_its_cap_1_1_alert() {
    // Two real messages of one chain: TRI13970876.1 (the CAP 1.1 example) and its update
    // TRI13970876.2 (the CAP 1.2 example), whose references name the first.
    let mut a = CapAdapter::default();
    let first = a.decode(ctx(), &real("v1dot1_appendix_adot3.xml")).unwrap();
    let o = &first.observations[0];
    assert_eq!(
        (o.entity.as_str(), o.kind.as_str(), o.severity),
        ("cap:trinet@caltech.edu:TRI13970876.1#0.0", "cap.alert", Severity::Minor)
    );
    assert_eq!(field(o, "cap_version"), "1.1");
    let second = a.decode(ctx(), &real("v1dot2_appendix_adot3.xml")).unwrap();
    let o = &second.observations[0];
    assert_eq!(
        (o.entity.as_str(), o.kind.as_str()),
        ("cap:trinet@caltech.edu:TRI13970876.1#0.0", "cap.update")
    );
    assert_eq!(
        field(o, "references"),
        "trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00"
    );
    assert_eq!(field(o, "cap_version"), "1.2");
    assert_eq!(o.title, "EQ 3.4 Imperial County CA");
    assert_eq!((o.position.lon, o.position.lat), (-115.5527, 32.9525));
}

#[test]
fn the_ipaws_cancel_closes_what_it_cancels_and_says_so_when_it_knows_nothing() {
    let cancel = real("ipaws-5e6dd9de023f1930ef6548d9.xml");
    // Alone, a Cancel without info has nothing to act on: refused with the reason, not lost.
    let d = decode(ctx(), &cancel).unwrap();
    assert!(d.observations.is_empty());
    assert_eq!(d.rejected.len(), 1);
    assert_eq!(d.rejected[0].place, "alert");
    assert!(
        d.rejected[0]
            .reason
            .contains("AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd"),
        "{}",
        d.rejected[0].reason
    );
    // After the alert it cancels (its real identity, a made-up area), it closes that area.
    let earlier = r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd</identifier>
        <sender>bbrundage@dps.state.nv.us</sender><sent>2019-04-18T12:02:32-06:00</sent><status>Actual</status><msgType>Alert</msgType>
        <scope>Public</scope><info><category>Safety</category><event>Test</event><urgency>Immediate</urgency><severity>Severe</severity>
        <certainty>Observed</certainty><area><areaDesc>Carson City</areaDesc><circle>39.16,-119.77 5</circle></area></info></alert>"#;
    let mut a = CapAdapter::default();
    assert_eq!(
        a.decode(ctx(), earlier.as_bytes()).unwrap().observations[0].severity,
        Severity::Severe
    );
    let d = a.decode(ctx(), &cancel).unwrap();
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let [o] = d.observations.as_slice() else {
        panic!("{:?}", d.observations)
    };
    assert_eq!(
        o.entity,
        "cap:bbrundage@dps.state.nv.us:AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd#0.0"
    );
    assert_eq!((o.kind.as_str(), o.severity), ("cap.cancel", Severity::Normal));
    assert_eq!((o.position.lon, o.position.lat), (-119.77, 39.16));
    assert_eq!(o.observed_ms, ms("2019-04-19T11:46:20-06:00"));
    assert_eq!(field(o, "identifier"), "AS-NV-58d33e3a-1f9a-4909-9d59-34e90b33b3e8");
    // Cancelling again finds nothing open.
    let again = a.decode(ctx(), &cancel).unwrap();
    assert!(
        again.observations.is_empty() && again.rejected[0].reason.contains("nothing open"),
        "{:?}",
        again.rejected
    );
}

#[test]
fn big_ipaws_alerts_with_audio_and_signatures_decode_within_limits() {
    for (name, bytes, identifier, severity, event) in [
        (
            "ipaws-5ea321f39fc226a7b44b6874.xml",
            459_263,
            "482277582702553",
            Severity::Extreme,
            "Civil Emergency Message",
        ),
        (
            "ipaws-5e6dd964023f1930ef638846.xml",
            103_882,
            "309104501346800",
            Severity::Minor,
            "Administrative Message/Follow up Statement",
        ),
        (
            "ipaws-5e6ddbad023f1930ef6c1a5a.xml",
            103_000,
            "44232112-8DF1-402A-BB60-948B569D6C7E",
            Severity::Severe,
            "Required Monthly Test",
        ),
    ] {
        let body = real(name);
        assert_eq!(body.len(), bytes, "{name}");
        let started = Instant::now();
        // Without a fallback position, a geocode-only area is refused with advice.
        let d = decode(ctx(), &body).unwrap();
        assert!(d.observations.is_empty());
        assert_eq!(d.rejected[0].place, "alert.info[0].area[0]");
        assert!(
            d.rejected[0].reason.contains("mapping.fallback_position"),
            "{}",
            d.rejected[0].reason
        );
        // With one, it is placed there and says so.
        let d = CapAdapter::new(helsinki()).decode(ctx(), &body).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name} took {:?}",
            started.elapsed()
        );
        let [o] = d.observations.as_slice() else {
            panic!("{name}: {:?}", d.observations)
        };
        assert_eq!(field(o, "identifier"), identifier);
        assert_eq!(field(o, "event"), event);
        assert_eq!((o.severity, o.position), (severity, helsinki().unwrap()), "{name}");
        assert_eq!(field(o, "position_source"), "fallback");
        // The base64 audio (resource/derefUri) and the signature are not kept.
        let kept = serde_json::to_string(&o.fields).unwrap().len();
        assert!(kept < 4 * 1024, "{name}: {kept} bytes of fields");
    }
}

#[test]
fn the_montgomery_polygon_is_placed_at_its_centroid() {
    let d = decode(ctx(), &real("ipaws-5e7e0fc5023f1930efcf3deb.xml")).unwrap();
    let o = &d.observations[0];
    assert_eq!(o.severity, Severity::Extreme);
    assert_eq!(o.title, "Alert Montgomery - Police Searching for Suspicious Person");
    let polygon = field(o, "polygon")[0].as_str().unwrap();
    assert_eq!(polygon.split_whitespace().count(), 41);
    // A closed ring: the first point is repeated last, as CAP requires.
    assert_eq!(polygon.split_whitespace().next(), polygon.split_whitespace().last());
    assert!(
        (o.position.lon - -77.149_412).abs() < 1e-5 && (o.position.lat - 39.083_931).abs() < 1e-5,
        "{:?}",
        o.position
    );
    assert_eq!(field(o, "geocode"), &serde_json::json!(["SAME=024031"]));
    // The area is kept as the polygon it is, for the map: 41 positions, lon before lat.
    let Some(Shape::Polygon(rings)) = o.shape.as_deref() else {
        panic!("the polygon is kept: {:?}", o.shape)
    };
    assert_eq!(rings[0].len(), 41);
    let (lat, lon) = polygon.split_whitespace().next().unwrap().split_once(',').unwrap();
    assert_eq!(rings[0][0], [lon.parse::<f64>().unwrap(), lat.parse::<f64>().unwrap()]);
}

/// A CAP alert over Helsinki with the given area elements.
fn helsinki_alert(area: &str) -> String {
    format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>FMI-1</identifier>
        <sender>fmi.fi</sender><sent>2026-11-26T20:45:00+02:00</sent><status>Actual</status><msgType>Alert</msgType>
        <scope>Public</scope><info><category>Met</category><event>Storm</event><urgency>Immediate</urgency><severity>Severe</severity>
        <certainty>Likely</certainty><area><areaDesc>Helsinki</areaDesc>{area}</area></info></alert>"#
    )
}

#[test]
fn circles_become_polygons_and_a_polygon_crossing_itself_is_refused_with_its_place() {
    let d = decode(ctx(), helsinki_alert("<circle>60.17,24.94 2</circle>").as_bytes()).unwrap();
    let Some(Shape::Polygon(rings)) = d.observations[0].shape.as_deref() else {
        panic!("a circle is drawn as a polygon: {:?}", d.observations[0].shape)
    };
    assert_eq!(rings[0].len(), 33);
    // An open ring is closed, as it is for the position.
    let open = "<polygon>60.16,24.92 60.16,24.96 60.18,24.96 60.18,24.92</polygon>";
    let d = decode(ctx(), helsinki_alert(open).as_bytes()).unwrap();
    assert!(matches!(d.observations[0].shape.as_deref(), Some(Shape::Polygon(r)) if r[0].len() == 5));
    // Two shapes in one area are one MultiPolygon.
    let both = format!("{open}<circle>60.20,24.90 1</circle>");
    let d = decode(ctx(), helsinki_alert(&both).as_bytes()).unwrap();
    assert!(matches!(d.observations[0].shape.as_deref(), Some(Shape::MultiPolygon(p)) if p.len() == 2));
    let bow_tie = "<polygon>60.16,24.92 60.18,24.96 60.16,24.96 60.18,24.92 60.16,24.92</polygon>";
    let d = decode(ctx(), helsinki_alert(bow_tie).as_bytes()).unwrap();
    assert!(d.observations.is_empty());
    assert_eq!(d.rejected[0].place, "alert.info[0].area[0]");
    assert_eq!(
        d.rejected[0].reason,
        "polygon[0]: ring 0 crosses itself (its edges 0 and 2)"
    );
}

#[test]
fn nws_blizzard_warning_is_cap_1_1_with_geocodes_only() {
    let body = real("nws-5c2cf27b1f56885d61654dc47fa411d5.xml");
    let d = CapAdapter::new(helsinki()).decode(ctx(), &body).unwrap();
    let [o] = d.observations.as_slice() else {
        panic!("{:?} {:?}", d.observations, d.rejected)
    };
    assert_eq!(field(o, "cap_version"), "1.1");
    assert_eq!((o.kind.as_str(), o.severity), ("cap.alert", Severity::Severe));
    assert_eq!(field(o, "event"), "Blizzard Warning");
    assert_eq!(o.observed_ms, ms("2021-12-27T16:08:00Z"));
    assert_eq!(field(o, "effective"), "2021-12-27T10:08:00-06:00");
    // Its <polygon> is empty: not a polygon, and not an error.
    assert!(!o.fields.contains_key("polygon"));
    assert_eq!(
        field(o, "geocode"),
        &serde_json::json!(["FIPS6=027031", "FIPS6=027075", "UGC=MNZ020", "UGC=MNZ021"])
    );
}

#[test]
fn cap_1_0_is_refused_naming_the_version() {
    for k in 1..=4 {
        let e = decode(ctx(), &real(&format!("v1dot0_appendix_adot{k}.xml"))).unwrap_err();
        assert!(
            e.reason
                .starts_with("CAP 1.0 (namespace http://www.incident.com/cap/1.0) is not supported"),
            "{e}"
        );
        assert_eq!(e.place, "byte 43 (line 2, column 1)");
    }
}

#[test]
fn the_amber_alert_gives_one_observation_per_language() {
    let d = CapAdapter::new(helsinki())
        .decode(ctx(), &real("v1dot2_appendix_adot4.xml"))
        .unwrap();
    let langs: Vec<(&str, &str, &str)> = d
        .observations
        .iter()
        .map(|o| {
            (
                o.entity.as_str(),
                field(o, "language").as_str().unwrap(),
                o.title.as_str(),
            )
        })
        .collect();
    assert_eq!(
        langs,
        [
            (
                "cap:KARO@CLETS.DOJ.CA.GOV:KAR0-0306112239-SW#0.0",
                "en-US",
                "Amber Alert in Los Angeles County"
            ),
            (
                "cap:KARO@CLETS.DOJ.CA.GOV:KAR0-0306112239-SW#1.0",
                "es-US",
                "Alerta Amber en el condado de Los Ángeles"
            ),
        ]
    );
    assert_eq!(d.observations.iter().map(|o| o.idx).collect::<Vec<_>>(), [0, 1]);
}

/// An independent reading of every real alert with Python's ElementTree: counts, identities,
/// references, polygon sizes and centroids (its own shoelace), and the element count.
#[cfg(feature = "peers")]
const PY_CROSS_CHECK: &str = r#"
import sys, os, json, xml.etree.ElementTree as ET
def shoelace(pts):
    n = len(pts); a = cx = cy = 0.0
    for k in range(n):
        x1, y1 = pts[k]; x2, y2 = pts[(k + 1) % n]
        c = x1 * y2 - x2 * y1; a += c; cx += (x1 + x2) * c; cy += (y1 + y2) * c
    return (cx / (3 * a), cy / (3 * a), abs(a) / 2) if abs(a) > 1e-12 else None
for name in sorted(os.listdir(sys.argv[1])):
    root = ET.parse(os.path.join(sys.argv[1], name)).getroot()
    ns = root.tag[1:].split('}')[0] if root.tag.startswith('{') else ''
    q = '{' + ns + '}'
    out = {'file': name, 'ns': ns, 'elements': sum(1 for _ in root.iter()),
           'identifier': root.findtext(q + 'identifier'), 'sender': root.findtext(q + 'sender'),
           'references': root.findtext(q + 'references') or '', 'pairs': []}
    for i, info in enumerate(root.findall(q + 'info')):
        for j, area in enumerate(info.findall(q + 'area')):
            polys = [p.text.split() for p in area.findall(q + 'polygon') if p.text and p.text.strip()]
            cents = [shoelace([(float(s.split(',')[1]), float(s.split(',')[0])) for s in p]) for p in polys]
            w = sum(c[2] for c in cents if c)
            pos = [sum(c[0] * c[2] for c in cents if c) / w, sum(c[1] * c[2] for c in cents if c) / w] if w else None
            circles = [c.text.split()[0] for c in area.findall(q + 'circle') if c.text and c.text.strip()]
            if pos is None and circles:
                cs = [(float(c.split(',')[1]), float(c.split(',')[0])) for c in circles]
                pos = [sum(c[0] for c in cs) / len(cs), sum(c[1] for c in cs) / len(cs)]
            out['pairs'].append({'info': i, 'area': j, 'vertices': [len(p) for p in polys], 'position': pos})
    print(json.dumps(out))
"#;

#[cfg(feature = "peers")]
#[test]
fn every_real_alert_agrees_with_python_elementtree() {
    let dir = data_dir();
    let run = std::process::Command::new("python3")
        .arg("-c")
        .arg(PY_CROSS_CHECK)
        .arg(&dir)
        .output();
    let run = run.unwrap_or_else(|e| panic!("python3 is needed for the independent cross-check: {e}"));
    assert!(
        run.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = String::from_utf8(run.stdout).unwrap();
    let mut checked = (0, 0);
    assert_eq!(lines.lines().count(), 19, "the collection holds 19 alerts");
    for line in lines.lines() {
        let py: Value = serde_json::from_str(line).unwrap();
        let name = py["file"].as_str().unwrap();
        let body = real(name);
        let elements = py["elements"].as_u64().unwrap() as usize;
        assert_eq!(tokenize(&body).unwrap(), elements, "{name}: element count");
        // The complete parse the decode benchmark measures sees the same elements, and
        // accepts every real alert (attributes, entities and all).
        assert_eq!(
            crate::xml::bare_parse(&body).unwrap(),
            elements,
            "{name}: element count, complete parse"
        );
        let ns = py["ns"].as_str().unwrap();
        let result = CapAdapter::new(helsinki()).decode(ctx(), &body);
        if ns == NS_CAP10 {
            assert!(result.unwrap_err().reason.contains("CAP 1.0"), "{name}");
            continue;
        }
        let d = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let pairs = py["pairs"].as_array().unwrap();
        let (sender, identifier) = (py["sender"].as_str().unwrap(), py["identifier"].as_str().unwrap());
        if pairs.is_empty() {
            // The IPAWS Cancel without info: refused with a reason, as tested above.
            assert_eq!((d.observations.len(), d.rejected.len()), (0, 1), "{name}");
            continue;
        }
        assert!(d.rejected.is_empty(), "{name}: {:?}", d.rejected);
        assert_eq!(
            d.observations.len(),
            pairs.len(),
            "{name}: one observation per info/area"
        );
        for (o, p) in d.observations.iter().zip(pairs) {
            assert_eq!(
                o.entity,
                format!("cap:{sender}:{identifier}#{}.{}", p["info"], p["area"]),
                "{name}"
            );
            assert_eq!(
                (field(o, "sender").as_str(), field(o, "identifier").as_str()),
                (Some(sender), Some(identifier))
            );
            assert_eq!(
                o.fields.get("references").and_then(Value::as_str).unwrap_or(""),
                py["references"].as_str().unwrap().trim(),
                "{name}"
            );
            assert_eq!(field(o, "cap_version"), if ns == NS_CAP11 { "1.1" } else { "1.2" });
            let vertices: Vec<usize> = o.fields.get("polygon").and_then(Value::as_array).map_or(vec![], |a| {
                a.iter()
                    .map(|s| s.as_str().unwrap().split_whitespace().count())
                    .collect()
            });
            assert_eq!(serde_json::json!(vertices), p["vertices"], "{name}: polygon sizes");
            match p["position"].as_array() {
                Some(xy) => {
                    let (x, y) = (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap());
                    assert!(
                        (o.position.lon - x).abs() < 1e-6 && (o.position.lat - y).abs() < 1e-6,
                        "{name}: {:?} vs {x},{y}",
                        o.position
                    );
                    checked.1 += 1;
                }
                None => assert_eq!(field(o, "position_source"), "fallback", "{name}"),
            }
            checked.0 += 1;
        }
    }
    // Every info/area of the 14 CAP 1.1 and 1.2 alerts was compared (the AMBER alert has two,
    // the Cancel none), 6 of them with a polygon or circle.
    assert_eq!(checked, (15, 6), "observations compared, positions compared");
}

// ---------------------------------------------------------------------------------------------
// Indexes of alerts.

/// A real alert's text without its XML declaration, to embed it.
fn embeddable(name: &str) -> String {
    let text = String::from_utf8(real(name)).unwrap();
    text[text.find("<alert").unwrap()..].to_owned()
}

#[test]
fn an_atom_index_decodes_embedded_alerts_and_lists_links() {
    let feed = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
  <id>urn:test:index</id><title>Alerts</title><updated>2003-06-17T14:57:00-07:00</updated>
  <entry><id>a</id><title>Thunderstorm</title><link rel="alternate" href="https://alerts.example/KSTO1055887203.xml"/>
    <content type="application/cap+xml">{storm}</content></entry>
  <entry><id>b</id><title>Linked only</title><link href="https://alerts.example/linked.cap"/><link rel="self" href="https://alerts.example/self"/>
    <link href="file:///etc/passwd"/><link href="relative/alert.xml"/></entry>
  <entry><id>c</id><content type="application/xml">{old}</content></entry>
  <entry><id>d</id><content type="application/xml">{quake}</content><link href="https://alerts.example/linked.cap"/></entry>
</feed>"#,
        storm = embeddable("v1dot2_appendix_adot2.xml"),
        old = embeddable("v1dot0_appendix_adot3.xml"),
        quake = embeddable("v1dot1_appendix_adot3.xml"),
    );
    let d = decode(ctx(), feed.as_bytes()).unwrap();
    let got: Vec<(&str, &str)> = d
        .observations
        .iter()
        .map(|o| (o.entity.as_str(), o.kind.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("cap:KSTO@NWS.NOAA.GOV:KSTO1055887203#0.0", "cap.alert"),
            ("cap:trinet@caltech.edu:TRI13970876.1#0.0", "cap.alert")
        ]
    );
    assert_eq!(d.observations.iter().map(|o| o.idx).collect::<Vec<_>>(), [0, 1]);
    // The embedded CAP 1.0 alert is refused on its own, naming where it was.
    assert_eq!(d.rejected.len(), 1);
    assert_eq!(d.rejected[0].place, "feed.entry[2].content.alert");
    assert!(d.rejected[0].reason.contains("CAP 1.0"), "{}", d.rejected[0].reason);
    assert_eq!(
        index_links(feed.as_bytes()).unwrap(),
        [
            "https://alerts.example/KSTO1055887203.xml",
            "https://alerts.example/linked.cap"
        ]
    );
    // A single alert has nothing to fetch.
    assert!(index_links(&real("v1dot2_appendix_adot1.xml")).unwrap().is_empty());
}

#[test]
fn an_rss_index_lists_item_links_and_enclosures() {
    let rss = format!(
        r#"<rss version="2.0"><channel><title>Alerts</title>
  <item><title>one</title><link>https://alerts.example/one.xml</link></item>
  <item><title>two</title><enclosure url="http://alerts.example/two.cap" type="application/cap+xml"/></item>
  <item><title>three</title><description>embedded</description>{quake}</item>
</channel></rss>"#,
        quake = embeddable("v1dot2_appendix_adot3.xml")
    );
    assert_eq!(
        index_links(rss.as_bytes()).unwrap(),
        ["https://alerts.example/one.xml", "http://alerts.example/two.cap"]
    );
    let d = decode(ctx(), rss.as_bytes()).unwrap();
    assert_eq!(d.observations.len(), 1);
    assert_eq!(d.observations[0].kind, "cap.update");
}

// ---------------------------------------------------------------------------------------------
// Hostile and broken input: one clear reason each, quickly, never a panic.

fn refused(body: &[u8]) -> DecodeError {
    let started = Instant::now();
    let e = decode(ctx(), body).expect_err("must be refused");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    e
}

const ALERT_HEAD: &str = r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>X1</identifier><sender>s@example.org</sender><sent>2024-01-01T00:00:00+00:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>"#;

fn alert_with(info: &str) -> String {
    format!("{ALERT_HEAD}{info}</alert>")
}

fn info_with(area: &str) -> String {
    format!("<info><category>Met</category><event>Wind</event><urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>{area}</info>")
}

#[test]
fn billion_laughs_is_refused_at_the_doctype_without_expanding() {
    let mut bomb = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    bomb.push_str(" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for k in 2..=9 {
        bomb.push_str(&format!(
            " <!ENTITY lol{k} \"{}\">\n",
            format!("&lol{};", k - 1).repeat(10)
        ));
    }
    bomb.push_str("]>\n");
    bomb.push_str(&alert_with(&info_with(
        "<area><areaDesc>&lol9;</areaDesc><circle>60.1,24.9 1</circle></area>",
    )));
    let e = refused(bomb.as_bytes());
    assert!(e.reason.starts_with("DOCTYPE declarations are refused"), "{e}");
    assert_eq!(e.place, "byte 22 (line 2, column 1)");
}

#[test]
fn external_entities_are_never_resolved() {
    let xxe = format!(
        "<!DOCTYPE alert [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        alert_with(&info_with("<area><areaDesc>&xxe;</areaDesc></area>"))
    );
    assert!(refused(xxe.as_bytes())
        .reason
        .starts_with("DOCTYPE declarations are refused"));
    // Without a DTD the entity is simply undeclared.
    let bare = alert_with(&info_with(
        "<area><areaDesc>&xxe;</areaDesc><circle>60.1,24.9 1</circle></area>",
    ));
    let e = refused(bare.as_bytes());
    assert!(e.reason.contains("undeclared entity &xxe;"), "{e}");
    assert!(e.place.starts_with("alert.info.area.areaDesc at byte"), "{e}");
    // Predefined entities and character references are fine.
    let ok = alert_with(&info_with(
        "<area><areaDesc>A &amp; B &#x263A; &lt;x&gt;</areaDesc><circle>60.1,24.9 1</circle></area>",
    ));
    let d = decode(ctx(), ok.as_bytes()).unwrap();
    assert_eq!(field(&d.observations[0], "areaDesc"), "A & B ☺ <x>");
}

#[test]
fn deep_nesting_is_refused_at_the_limit() {
    let deep = format!(
        "{ALERT_HEAD}{}{}</alert>",
        "<note>".repeat(10_000),
        "</note>".repeat(10_000)
    );
    let e = refused(deep.as_bytes());
    assert_eq!(
        e.reason,
        format!("elements nested deeper than {} levels", xml::MAX_DEPTH)
    );
    // The place names the element path, where the first element too deep starts.
    assert!(e.place.starts_with("alert.note.note"), "{e}");
}

#[test]
fn truncated_wrong_and_garbage_documents_say_why() {
    let real_alert = real("v1dot2_appendix_adot2.xml");
    let e = refused(&real_alert[..real_alert.len() / 2]);
    assert_eq!(
        (e.place.as_str(), e.reason.as_str()),
        (
            "alert.info.description at byte 1026 (line 24, column 85)",
            "truncated document: it ends inside <description>"
        )
    );
    let e = refused(&real_alert[..real_alert.len() - 3]);
    assert!(
        e.reason.starts_with("malformed XML: syntax error: tag not closed"),
        "{e}"
    );
    let e = refused(b"<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document/></kml>");
    assert_eq!(e.reason, "the root element <kml> in namespace http://www.opengis.net/kml/2.2 is not a CAP alert, an Atom feed or an RSS channel");
    let e = refused(b"<alert><identifier>x</identifier></alert>");
    assert!(e.reason.contains("without a namespace"), "{e}");
    let e = refused(b"\x00\x9f\x92\x96 garbage");
    assert!(e.reason.starts_with("not UTF-8"), "{e}");
    let e = refused(b"just some text");
    assert!(e.reason.contains("outside the root element"), "{e}");
    let e = refused(b"");
    assert!(e.reason.starts_with("no XML element"), "{e}");
    let e = refused(format!("{}{}", alert_with(""), alert_with("")).as_bytes());
    assert!(e.reason.contains("second root element"), "{e}");
    let e = refused(format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}", alert_with("")).as_bytes());
    assert!(e.reason.contains("\"ISO-8859-1\"; only UTF-8"), "{e}");
    let e = refused(&vec![b' '; MAX_CAP_BODY_BYTES + 1]);
    assert!(e.reason.contains("exceeds the 8388608-byte limit"), "{e}");
}

#[test]
fn invalid_coordinates_refuse_their_area_and_keep_the_neighbours() {
    let areas = [
        "<area><areaDesc>ok</areaDesc><polygon>60,24 60,25 61,25 61,24 60,24</polygon></area>",
        "<area><areaDesc>lat 95</areaDesc><polygon>95,24 60,25 61,25 95,24</polygon></area>",
        "<area><areaDesc>two points</areaDesc><polygon>60,24 60,25</polygon></area>",
        "<area><areaDesc>words</areaDesc><circle>north,east 5</circle></area>",
        "<area><areaDesc>no radius</areaDesc><circle>60.1,24.9</circle></area>",
        "<area><areaDesc>NaN</areaDesc><circle>NaN,24.9 1</circle></area>",
        "<area><areaDesc>over the antimeridian</areaDesc><polygon>-10,179 -10,-179 10,-179 10,179 -10,179</polygon></area>",
    ];
    let d = decode(ctx(), alert_with(&info_with(&areas.concat())).as_bytes()).unwrap();
    let placed: Vec<(&str, f64, f64)> = d
        .observations
        .iter()
        .map(|o| (field(o, "areaDesc").as_str().unwrap(), o.position.lon, o.position.lat))
        .collect();
    assert_eq!(placed.len(), 2, "{placed:?} {:?}", d.rejected);
    assert_eq!((placed[0].0, placed[0].1, placed[0].2), ("ok", 24.5, 60.5));
    assert_eq!(placed[1].0, "over the antimeridian");
    assert!(
        (placed[1].1.abs() - 180.0).abs() < 1e-9 && placed[1].2.abs() < 1e-9,
        "{placed:?}"
    );
    let rejected: Vec<(&str, &str)> = d
        .rejected
        .iter()
        .map(|r| (r.place.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (
                "alert.info[0].area[1]",
                "polygon[0]: \"95,24\": latitude or longitude out of range"
            ),
            (
                "alert.info[0].area[2]",
                "polygon[0]: 2 points; a polygon needs at least 3"
            ),
            (
                "alert.info[0].area[3]",
                "circle[0]: \"north,east\" is not \"lat,lon\" in numbers"
            ),
            (
                "alert.info[0].area[4]",
                "circle[0] \"60.1,24.9\": the radius is not a non-negative number of km"
            ),
            (
                "alert.info[0].area[5]",
                "circle[0]: \"NaN,24.9\": latitude or longitude out of range"
            ),
        ]
    );
}

#[test]
fn unknown_words_and_missing_identity_refuse_the_alert_or_info() {
    let bad_sev = alert_with(&info_with("<area><circle>60.1,24.9 1</circle></area>").replace("Moderate", "Purple"));
    let d = decode(ctx(), bad_sev.as_bytes()).unwrap();
    assert_eq!(d.rejected[0].place, "alert.info[0]");
    assert!(
        d.rejected[0]
            .reason
            .starts_with("<severity> \"Purple\" is not one of Extreme"),
        "{:?}",
        d.rejected
    );
    let bad_type = alert_with("").replace("<msgType>Alert", "<msgType>Panic");
    assert!(decode(ctx(), bad_type.as_bytes()).unwrap().rejected[0]
        .reason
        .starts_with("<msgType> \"Panic\""));
    let no_id = alert_with("").replace("<identifier>X1</identifier>", "");
    assert_eq!(
        decode(ctx(), no_id.as_bytes()).unwrap().rejected[0].reason,
        "no <identifier>"
    );
    let bad_time = alert_with("").replace("2024-01-01T00:00:00+00:00", "yesterday");
    assert_eq!(
        decode(ctx(), bad_time.as_bytes()).unwrap().rejected[0].reason,
        "<sent> \"yesterday\" is not a CAP date and time"
    );
    let many = alert_with(&info_with("<area><circle>60.1,24.9 1</circle></area>").repeat(MAX_INFOS + 1));
    assert_eq!(
        decode(ctx(), many.as_bytes()).unwrap().rejected[0].reason,
        format!("more than {MAX_INFOS} info blocks")
    );
}

#[test]
fn long_text_is_cut_and_says_so_and_test_alerts_are_labelled() {
    let long = "x".repeat(LONG_TEXT_BYTES * 3);
    let body = alert_with(&info_with(&format!(
        "<description>{long}</description><area><circle>60.1,24.9 1</circle></area>"
    )))
    .replace("<status>Actual", "<status>Exercise");
    let d = decode(ctx(), body.as_bytes()).unwrap();
    let o = &d.observations[0];
    assert_eq!(field(o, "description").as_str().unwrap().len(), LONG_TEXT_BYTES);
    assert_eq!(field(o, "truncated"), &serde_json::json!(["description"]));
    assert_eq!(o.title, "[Exercise] Wind");
}

#[test]
fn the_mapping_is_checked_when_the_feed_is_built() {
    assert!(CapAdapter::from_mapping("f", &Value::Null).is_ok());
    assert!(CapAdapter::from_mapping("f", &serde_json::json!({"fallback_position": [24.9, 60.2]})).is_ok());
    let e = CapAdapter::from_mapping("f", &serde_json::json!({"fallback_position": [24.9, 95]})).unwrap_err();
    assert_eq!(e.field, "mapping.fallback_position");
    let e = CapAdapter::from_mapping("f", &serde_json::json!({"fallback": [24.9, 60.2]})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "feed \"f\": mapping.fallback: unknown key (CAP knows fallback_position)"
    );
}

#[test]
fn memory_of_alerts_is_bounded() {
    let mut a = CapAdapter::default();
    for k in 0..MAX_REMEMBERED_ALERTS + 10 {
        let body = alert_with(&info_with("<area><circle>60.1,24.9 1</circle></area>")).replace("X1", &format!("X{k}"));
        a.decode(ctx(), body.as_bytes()).unwrap();
    }
    assert_eq!(a.memory.roots.len(), MAX_REMEMBERED_ALERTS);
    assert_eq!(a.memory.alias.len(), MAX_REMEMBERED_ALERTS);
    assert!(!a.memory.alias.contains_key("s@example.org,X0"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = CapAdapter::new(helsinki()).decode(ctx(), &body);
        let _ = index_links(&body);
        let _ = tokenize(&body);
        let _ = crate::xml::bare_parse(&body);
    }

    #[test]
    fn mutated_real_alerts_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..16)) {
        let mut body = real("google-PAAQ-4-mg5a94.xml");
        crate::mutate(&mut body, edits);
        let mut a = CapAdapter::new(helsinki());
        let _ = a.decode(ctx(), &body);
        let _ = a.decode(ctx(), &body);
    }
}

#[test]
fn a_manifest_names_the_cap_and_cot_feeds_and_their_mapping() {
    let manifest = r#"
name = "x"
map = "helsinki"
start = "2026-11-26T19:00:00Z"
view = [24.9, 60.1, 12]

[[feeds]]
id = "warnings"
layer = "alerts"
format = "cap"
mapping = { fallback_position = [24.9384, 60.1699] }

[[feeds]]
id = "tak"
layer = "security"
format = "cot"
"#;
    let m = cityops_core::scenario::Manifest::parse(manifest).unwrap();
    for spec in &m.feeds {
        assert!(
            super::super::adapter_for(spec, std::path::Path::new(".")).is_ok(),
            "{}",
            spec.id
        );
    }
    let bad = cityops_core::scenario::Manifest::parse(&manifest.replace("24.9384, 60.1699", "\"centre\"")).unwrap();
    let e = super::super::adapter_for(&bad.feeds[0], std::path::Path::new("."))
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "feed \"warnings\": mapping.fallback_position: must be [lon, lat] in degrees, in range"
    );
}
