//! CoT adapter tests: events written to the MITRE CoT base event schema and as ATAK sends them,
//! the type table, stale events, stream splitting, hostile peers and random input.

use cityops_core::model::Layer;
use proptest::prelude::*;

use super::*;

fn ctx_at(received: &str) -> MessageContext<'static> {
    let received_ms = chrono::DateTime::parse_from_rfc3339(received)
        .unwrap()
        .timestamp_millis();
    MessageContext {
        feed: "tak",
        layer: Layer::Security,
        seq: 9,
        received_ms,
        topic: None,
    }
}

fn ctx() -> MessageContext<'static> {
    ctx_at("2005-04-05T11:43:40Z")
}

/// The sample event of the MITRE Cursor-on-Target documentation (a hostile aircraft).
const MITRE: &str = r#"<?xml version="1.0" standalone="yes"?>
<event version="2.0" uid="J-01334" type="a-h-A-M-F-U-M" time="2005-04-05T11:43:38.07Z" start="2005-04-05T11:43:38.07Z" stale="2005-04-05T11:45:38.07Z" how="m-i">
  <detail></detail>
  <point lat="30.0090027" lon="-85.9578735" ce="45.3" hae="-42.6" le="99.5"/>
</event>"#;

/// A friendly team member as ATAK sends it, with a typical detail.
fn atak(uid: &str, cot_type: &str, lat: &str, lon: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><event version="2.0" uid="{uid}" type="{cot_type}" how="m-g" time="2005-04-05T11:43:30Z" start="2005-04-05T11:43:30Z" stale="2005-04-05T11:49:30Z"><point lat="{lat}" lon="{lon}" hae="15.2" ce="9.9" le="9999999.0"/><detail><takv os="34" version="4.10.0" device="PIXEL" platform="ATAK-CIV"/><contact endpoint="*:-1:stcp" callsign="HEL-1"/><uid Droid="HEL-1"/><__group role="Team Member" name="Cyan"/><status battery="88"/><track course="90.0" speed="1.5"/><link uid="A" relation="p-p"/><link uid="B" relation="p-p"/><remarks>On foot &amp; moving &lt;north&gt;</remarks></detail></event>"#
    )
}

/// The flattened `detail` fields, their names without the `detail.` prefix.
fn detail_of(o: &Observation) -> serde_json::Map<String, Value> {
    o.fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("detail.")?.to_owned(), v.clone())))
        .collect()
}

fn field<'o>(o: &'o Observation, key: &str) -> &'o Value {
    o.fields
        .get(key)
        .unwrap_or_else(|| panic!("{} has no field {key}: {:?}", o.entity, o.fields))
}

#[test]
fn the_mitre_sample_event() {
    let d = decode(ctx(), MITRE.as_bytes()).unwrap();
    let [o] = d.observations.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(
        (o.entity.as_str(), o.kind.as_str(), o.severity),
        ("cot:J-01334", "unit.hostile", Severity::Moderate)
    );
    assert_eq!(
        o.observed_ms,
        chrono::DateTime::parse_from_rfc3339("2005-04-05T11:43:38.070Z")
            .unwrap()
            .timestamp_millis()
    );
    assert_eq!((o.position.lat, o.position.lon), (30.0090027, -85.9578735));
    assert_eq!(o.title, "J-01334");
    assert_eq!(
        (field(o, "hae"), field(o, "ce"), field(o, "le")),
        (
            &serde_json::json!(-42.6),
            &serde_json::json!(45.3),
            &serde_json::json!(99.5)
        )
    );
    assert_eq!(
        (field(o, "how"), field(o, "dimension"), field(o, "stale")),
        (&Value::from("m-i"), &Value::from("air"), &Value::from(false))
    );
    assert_eq!(field(o, "stale_time"), "2005-04-05T11:45:38.07Z");
    assert!(detail_of(o).is_empty(), "{:?}", o.fields);
    assert_eq!(tokenize(MITRE.as_bytes()).unwrap(), 1);
}

#[test]
fn an_atak_position_keeps_callsign_remarks_and_flattened_detail() {
    let d = decode(ctx(), atak("ANDROID-1", "a-f-G-U-C", "60.1699", "24.9384").as_bytes()).unwrap();
    let o = &d.observations[0];
    assert_eq!(
        (o.kind.as_str(), o.severity, o.title.as_str()),
        ("unit.friendly", Severity::Normal, "HEL-1")
    );
    assert_eq!(field(o, "callsign"), "HEL-1");
    assert_eq!(field(o, "remarks"), "On foot & moving <north>");
    assert_eq!(field(o, "dimension"), "ground");
    assert_eq!(
        Value::Object(detail_of(o)),
        serde_json::json!({
            "takv.os": "34", "takv.version": "4.10.0", "takv.device": "PIXEL", "takv.platform": "ATAK-CIV",
            "contact.endpoint": "*:-1:stcp", "uid.Droid": "HEL-1", "__group.role": "Team Member", "__group.name": "Cyan",
            "status.battery": "88", "track.course": "90.0", "track.speed": "1.5",
            "link.uid": "A", "link.relation": "p-p", "link.uid[2]": "B", "link.relation[2]": "p-p"
        })
    );
}

#[test]
fn types_map_to_kinds_and_severities() {
    let table = [
        ("a-f-G-U-C", "unit.friendly", Severity::Normal),
        ("a-a-A", "unit.friendly", Severity::Normal),
        ("a-n-S", "unit.neutral", Severity::Normal),
        ("a-h-G-E-V-A-T", "unit.hostile", Severity::Moderate),
        ("a-s-G", "unit.hostile", Severity::Moderate),
        ("a-u-G", "unit.unknown", Severity::Minor),
        ("a-p-A", "unit.unknown", Severity::Minor),
        ("b-a-o-tbl", "alarm", Severity::Severe),
        ("b-a-o-opn", "alarm", Severity::Severe),
        ("b-a-g", "alarm", Severity::Severe),
        ("b-a-o-can", "alarm.cancelled", Severity::Normal),
        ("b-r-f-h-c", "report.casevac", Severity::Severe),
        ("b-m-p-s-p-i", "marker", Severity::Normal),
        ("b-m-p-w", "marker", Severity::Normal),
        ("b-m-r", "route", Severity::Normal),
        ("b-t-f", "chat", Severity::Normal),
        ("b-i-x-i", "bits", Severity::Minor),
        ("u-d-f", "drawing", Severity::Normal),
        ("t-x-c-t", "tasking", Severity::Minor),
        ("y-a-f", "reply", Severity::Normal),
        ("c-c", "capability", Severity::Normal),
        ("z-z", "cot.other", Severity::Minor),
    ];
    for (t, kind, severity) in table {
        let d = decode(ctx(), atak("u", t, "60.1", "24.9").as_bytes()).unwrap();
        assert_eq!(
            (d.observations[0].kind.as_str(), d.observations[0].severity),
            (kind, severity),
            "{t}"
        );
    }
}

#[test]
fn stale_events_are_kept_marked_and_calmed() {
    let alarm = atak("ALARM-1", "b-a-o-tbl", "60.1", "24.9");
    let fresh = decode(ctx_at("2005-04-05T11:49:29Z"), alarm.as_bytes()).unwrap();
    assert_eq!(
        (fresh.observations[0].severity, field(&fresh.observations[0], "stale")),
        (Severity::Severe, &Value::from(false))
    );
    // At the stale time itself it is stale.
    let stale = decode(ctx_at("2005-04-05T11:49:30Z"), alarm.as_bytes()).unwrap();
    let o = &stale.observations[0];
    assert_eq!(
        (o.kind.as_str(), o.severity, field(o, "stale")),
        ("alarm", Severity::Normal, &Value::from(true))
    );
}

#[test]
fn a_chunk_of_several_events_keeps_the_good_ones() {
    let chunk = format!(
        "{}\n{}<!-- keepalive -->{}garbage between<event uid='x' type='a-f-G' time='nope' stale='2005-04-05T11:49:30Z'><point lat='1' lon='2'/></event>{}",
        MITRE,
        atak("A", "a-f-G", "60.1", "24.9"),
        atak("B", "a-f-G", "95.0", "24.9"),
        atak("C", "b-m-p-s-p-i", "60.2", "25.0"),
    );
    assert_eq!(tokenize(chunk.as_bytes()).unwrap(), 5);
    let d = decode(ctx(), chunk.as_bytes()).unwrap();
    let got: Vec<(&str, u32)> = d.observations.iter().map(|o| (o.entity.as_str(), o.idx)).collect();
    assert_eq!(got, [("cot:J-01334", 0), ("cot:A", 1), ("cot:C", 2)]);
    let rejected: Vec<(&str, &str)> = d
        .rejected
        .iter()
        .map(|r| (&r.place[..r.place.find(" (").unwrap()], r.reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            ("event[2]", "point lat=95 lon=24.9 is out of range"),
            ("event[3]", "not a CoT event: \"garbage between\""),
            ("event[4]", "time \"nope\" is not an xs:dateTime"),
        ]
    );
}

#[test]
fn split_stream_waits_for_the_rest_of_a_half_event() {
    let first = atak("A", "a-f-G", "60.1", "24.9");
    let second = atak("B", "a-f-G", "60.2", "24.9");
    let stream = format!("{first}\n{second}\n");
    let cut = first.len() + 1 + second.len() / 2;
    let mut buf = stream.as_bytes()[..cut].to_vec();
    let out = split_stream(&mut buf);
    assert_eq!(out, [first.as_bytes().to_vec()]);
    assert_eq!(
        buf,
        second.as_bytes()[..second.len() / 2],
        "the half event stays buffered"
    );
    buf.extend_from_slice(&stream.as_bytes()[cut..]);
    assert_eq!(split_stream(&mut buf), [second.as_bytes().to_vec()]);
    assert!(buf.is_empty());
    // One byte at a time gives the same pieces.
    let mut buf = Vec::new();
    let mut pieces = Vec::new();
    for b in stream.bytes() {
        buf.push(b);
        pieces.extend(split_stream(&mut buf));
    }
    assert_eq!(pieces, [first.as_bytes().to_vec(), second.as_bytes().to_vec()]);
    // A `>` inside an attribute value or a CDATA `</event>` does not end the event.
    let tricky = "<event uid='a>b' type='a-f-G' time='2005-04-05T11:43:30Z' stale='2005-04-05T11:49:30Z'><point lat='1' lon='2'/><detail><remarks><![CDATA[</event>]]></remarks></detail></event>";
    let mut buf = tricky.as_bytes().to_vec();
    assert_eq!(split_stream(&mut buf), [tricky.as_bytes().to_vec()]);
    let d = decode(ctx(), tricky.as_bytes()).unwrap();
    assert_eq!(
        (d.observations[0].entity.as_str(), field(&d.observations[0], "remarks")),
        ("cot:a>b", &Value::from("</event>"))
    );
}

#[test]
fn a_peer_sending_garbage_is_refused_piece_by_piece() {
    let good = atak("A", "a-f-G", "60.1", "24.9");
    let mut buf = format!("HELLO\r\n{good}\x01\x02 noise <evil/>{good}<ev").into_bytes();
    let out = split_stream(&mut buf);
    assert_eq!(out.len(), 4);
    assert_eq!(buf, b"<ev", "a possible event start waits");
    let reasons: Vec<String> = out
        .iter()
        .map(|p| match decode(ctx(), p) {
            Ok(d) => format!("ok {}", d.observations[0].entity),
            Err(e) => e.reason,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "not a CoT event: \"HELLO..\"",
            "ok cot:A",
            "not a CoT event: \".. noise <evil/>\"",
            "ok cot:A"
        ]
    );
    // TAK protocol v1 (protobuf) is named.
    let e = decode(ctx(), &[0xBF, 0x01, 0xBF, 0x12, 0x00]).unwrap_err();
    assert!(e.reason.starts_with("TAK protocol version 1"), "{e}");
}

#[test]
fn an_event_that_never_ends_is_discarded_at_the_buffer_limit() {
    let mut buf = b"<event uid='x' type='a-f-G'><detail><remarks>".to_vec();
    let mut out = split_stream(&mut buf);
    assert!(out.is_empty());
    let filler = vec![b'a'; 64 * 1024];
    while buf.len() <= MAX_STREAM_BUFFER && out.is_empty() {
        buf.extend_from_slice(&filler);
        out = split_stream(&mut buf);
    }
    assert!(buf.len() < filler.len(), "at most the last read stays buffered");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), MAX_STREAM_BUFFER);
    let e = decode(ctx(), &out[0]).unwrap_err();
    assert!(
        e.reason
            .starts_with("truncated event: no closing </event> in 1048576 bytes"),
        "{e}"
    );
    // The stream resynchronises at the next event: the rest of the endless one is refused as
    // one piece, and the event after it decodes.
    buf.extend_from_slice(atak("A", "a-f-G", "60.1", "24.9").as_bytes());
    let out = split_stream(&mut buf);
    assert_eq!(out.len(), 2);
    assert!(decode(ctx(), &out[0])
        .unwrap_err()
        .reason
        .starts_with("not a CoT event: \"aaaa"));
    assert_eq!(decode(ctx(), &out[1]).unwrap().observations[0].entity, "cot:A");
    // Endless garbage is bounded the same way.
    let mut buf = Vec::new();
    let mut pieces = 0;
    for _ in 0..40 {
        buf.extend_from_slice(&filler);
        pieces += split_stream(&mut buf).len();
        assert!(buf.len() <= MAX_STREAM_BUFFER);
    }
    assert_eq!(
        pieces, 2,
        "2.5 MiB of garbage gives two pieces of 1 MiB; the rest waits for more"
    );
}

#[test]
fn bad_coordinates_and_missing_parts_say_which() {
    let base = "<event version='2.0' uid='U' type='a-f-G' time='2005-04-05T11:43:30Z' start='2005-04-05T11:43:30Z' stale='2005-04-05T11:49:30Z' how='m-g'>";
    for (rest, reason) in [
        (
            "<point lat='60' lon='181'/></event>",
            "point lat=60 lon=181 is out of range",
        ),
        (
            "<point lat='NaN' lon='24'/></event>",
            "point lat=\"NaN\" is not a finite number",
        ),
        (
            "<point lat='60' lon='24' hae='inf'/></event>",
            "point hae=\"inf\" is not a finite number",
        ),
        ("<point lat='60'/></event>", "point without lon"),
        ("<detail/></event>", "no <point>"),
        (
            "<point lat='1' lon='2'/><point lat='1' lon='2'/></event>",
            "more than one <point>",
        ),
    ] {
        let e = decode(ctx(), format!("{base}{rest}").as_bytes()).unwrap_err();
        assert!(e.reason.starts_with(reason), "{rest}: {e}");
        assert!(e.place.starts_with("event (bytes 0.."), "{e}");
    }
    let e = decode(
        ctx(),
        base.replace("stale='2005-04-05T11:49:30Z'", "stale='2005-04-05T11:40:00Z'")
            .replace('>', "><point lat='1' lon='2'/></event>")
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.reason, "stale 2005-04-05T11:40:00Z is before start");
    let e = decode(
        ctx(),
        base.replace("uid='U' ", "")
            .replace('>', "><point lat='1' lon='2'/></event>")
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.reason, "no uid");
    let e = decode(ctx(), b"<foo uid='x'/>").unwrap_err();
    assert_eq!(e.reason, "not a CoT event: \"<foo uid='x'/>\"");
    // A time without an offset is UTC.
    let naive = base
        .replace("2005-04-05T11:43:30Z", "2005-04-05T11:43:30.5")
        .replace('>', "><point lat='1' lon='2'/></event>");
    let d = decode(ctx(), naive.as_bytes()).unwrap();
    assert_eq!(
        d.observations[0].observed_ms,
        chrono::DateTime::parse_from_rfc3339("2005-04-05T11:43:30.5Z")
            .unwrap()
            .timestamp_millis()
    );
}

#[test]
fn xml_bombs_are_refused_and_their_neighbours_kept() {
    let mut bomb = String::from("<?xml version=\"1.0\"?><!DOCTYPE event [<!ENTITY lol \"lol\">");
    for k in 1..=9 {
        let prev = if k == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", k - 1)
        };
        bomb.push_str(&format!("<!ENTITY lol{k} \"{}\">", format!("&{prev};").repeat(10)));
    }
    bomb.push_str("]>");
    bomb.push_str(
        &atak("BOMB", "a-f-G", "60.1", "24.9")
            .replace("On foot &amp; moving", "&lol9;")
            .replace("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>", ""),
    );
    let started = std::time::Instant::now();
    let e = decode(ctx(), bomb.as_bytes()).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(e.reason.starts_with("DOCTYPE declarations are refused"), "{e}");
    // In a stream, the bomb is one piece with its event; the next event is unharmed.
    let mut buf = format!("{bomb}{}", atak("OK", "a-f-G", "60.1", "24.9")).into_bytes();
    let pieces = split_stream(&mut buf);
    assert_eq!(pieces.len(), 2);
    assert!(decode(ctx(), &pieces[0]).is_err());
    assert_eq!(decode(ctx(), &pieces[1]).unwrap().observations[0].entity, "cot:OK");
    // External entity, undeclared entity, deep nesting.
    let xxe = atak("X", "a-f-G", "60.1", "24.9").replace("On foot &amp; moving", "&xxe;");
    assert!(decode(ctx(), xxe.as_bytes())
        .unwrap_err()
        .reason
        .contains("undeclared entity &xxe;"));
    let deep = atak("D", "a-f-G", "60.1", "24.9")
        .replace("<remarks>", &format!("{}<remarks>", "<x>".repeat(10_000)))
        .replace("</remarks>", &format!("</remarks>{}", "</x>".repeat(10_000)));
    let e = decode(ctx(), deep.as_bytes()).unwrap_err();
    assert!(e.reason.starts_with("elements nested deeper than 32 levels"), "{e}");
    let e = decode(ctx(), b"<event uid='\xff'/>").unwrap_err();
    assert!(e.reason.starts_with("byte 12 (line 1) of the event: not UTF-8"), "{e}");
}

#[test]
fn detail_is_bounded() {
    let many: String = (0..1000).map(|k| format!("<f{k} v='{}'/>", "y".repeat(100))).collect();
    let body = atak("A", "a-f-G", "60.1", "24.9").replace("<takv ", &format!("{many}<takv "));
    let o = &decode(ctx(), body.as_bytes()).unwrap().observations[0];
    let detail = detail_of(o);
    assert_eq!(detail.len(), MAX_DETAIL_FIELDS);
    assert!(serde_json::to_string(&detail).unwrap().len() < DETAIL_BYTES + 4 * MAX_DETAIL_FIELDS * 2);
    assert_eq!(field(o, "detail_truncated"), true);
}

#[test]
fn a_name_that_numbering_would_repeat_is_dropped() {
    // Only a hostile event has brackets in a name; the repeat numbered `[2]` keeps that name.
    let body = atak("A", "a-f-G", "60.1", "24.9").replace(
        r#"<link uid="B" relation="p-p"/>"#,
        r#"<link uid="B" relation="p-p"/><link uid[2]="C"/>"#,
    );
    let o = &decode(ctx(), body.as_bytes()).unwrap().observations[0];
    let detail = detail_of(o);
    assert_eq!(
        (&detail["link.uid"], &detail["link.uid[2]"]),
        (&Value::from("A"), &Value::from("B"))
    );
    assert!(!detail.values().any(|v| v == "C"), "{detail:?}");
    assert_eq!(field(o, "detail_truncated"), true);
    assert_eq!(detail.len(), 15, "{detail:?}");
}

#[test]
fn the_mapping_must_be_empty() {
    assert!(CotAdapter::from_mapping("tak", &Value::Null).is_ok());
    let e = CotAdapter::from_mapping("tak", &serde_json::json!({"port": 8087})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "feed \"tak\": mapping.port: unknown key: CoT has no mapping choices"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(ctx(), &body);
        let _ = tokenize(&body);
        let mut buf = body.clone();
        let pieces = split_stream(&mut buf);
        prop_assert!(pieces.iter().map(Vec::len).sum::<usize>() + buf.len() <= body.len());
    }

    #[test]
    fn mutated_events_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..16)) {
        let mut body = format!("{MITRE}{}", atak("A", "b-a-o-tbl", "60.1", "24.9")).into_bytes();
        crate::mutate(&mut body, edits);
        let _ = decode(ctx(), &body);
        let mut buf = body.clone();
        let _ = split_stream(&mut buf);
    }

    /// Decoding a lone event without cutting the body first gives what cutting gives: the
    /// same observations, or the same refusal with the same place, for one event mutated at
    /// random and wrapped in whatever a peer might put around it.
    #[test]
    fn a_lone_event_decodes_as_the_cut_body_does(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
        before in prop_oneof![Just(""), Just("  \n"), Just("\u{feff}"), Just("<!-- c -->"), Just("junk"), Just("<?xml version=\"1.0\"?>\n")],
        after in prop_oneof![Just(""), Just("\r\n "), Just("<!-- c -->"), Just("x"), Just("<event/>")],
        prefixed in any::<bool>(),
    ) {
        let event = atak("A", "a-f-G-U-C", "60.1", "24.9");
        let event = if prefixed { event.replace("<event", "<t:event").replace("</event>", "</t:event>") } else { event };
        let mut body = format!("{before}{event}{after}").into_bytes();
        crate::mutate(&mut body, edits);
        prop_assert_eq!(format!("{:?}", decode(ctx(), &body)), format!("{:?}", decode_pieces(ctx(), &body)));
    }

    #[test]
    fn any_cut_of_a_stream_gives_the_same_pieces(cuts in proptest::collection::vec(0usize..2000, 0..8)) {
        let stream = format!("{MITRE}junk{}<!-- c -->{}", atak("A", "a-f-G", "60.1", "24.9"), atak("B", "a-h-G", "60.2", "24.8"));
        let whole = {
            let mut buf = stream.clone().into_bytes();
            split_stream(&mut buf)
        };
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % stream.len()).collect();
        cuts.sort_unstable();
        let (mut buf, mut pieces, mut from) = (Vec::new(), Vec::new(), 0);
        for c in cuts.into_iter().chain([stream.len()]) {
            buf.extend_from_slice(&stream.as_bytes()[from..c.max(from)]);
            from = c.max(from);
            pieces.extend(split_stream(&mut buf));
        }
        prop_assert_eq!(pieces, whole);
    }
}
