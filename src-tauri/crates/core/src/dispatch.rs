//! Operator actions aimed at backend systems: what may be sent, and exactly what bytes it is.
//!
//! Validation and rendering are pure: the time, the idempotency key and the place are passed in,
//! so the preview the operator confirms is byte for byte what the outbox later sends, however
//! many times it has to retry. The engine adds what needs secrets or IO (signatures, sockets).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{GeoPoint, Millis};

/// The protocol a backend speaks, which decides the one kind of action it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum BackendKind {
    /// Open311 GeoReport v2: a service request for a field crew.
    Open311,
    /// An HTTP webhook with a JSON body, signed with HMAC-SHA256.
    Webhook,
    /// An MQTT command topic, with the device's reply awaited on a response topic.
    Mqtt,
    /// Cursor-on-Target to a TAK server: a tasking or a marker.
    Cot,
    /// A CAP 1.2 alert POSTed to an alert hub.
    Cap,
}

impl BackendKind {
    /// Every kind.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Open311,
        BackendKind::Webhook,
        BackendKind::Mqtt,
        BackendKind::Cot,
        BackendKind::Cap,
    ];

    /// The lowercase name used in the config file, the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Open311 => "open311",
            BackendKind::Webhook => "webhook",
            BackendKind::Mqtt => "mqtt",
            BackendKind::Cot => "cot",
            BackendKind::Cap => "cap",
        }
    }

    /// The kind with this name.
    pub fn parse(s: &str) -> Option<BackendKind> {
        BackendKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Device commands and public alerts act on the city directly, so they need a second
    /// confirmation.
    pub fn dangerous(self) -> bool {
        matches!(self, BackendKind::Mqtt | BackendKind::Cap)
    }

    /// What the action does, in words.
    pub fn action(self) -> &'static str {
        match self {
            BackendKind::Open311 => "Open a service request for a field crew",
            BackendKind::Webhook => "Notify another agency's system",
            BackendKind::Mqtt => "Command a device",
            BackendKind::Cot => "Task a field unit",
            BackendKind::Cap => "Publish a public alert",
        }
    }
}

/// Severity of a public alert, as CAP 1.2 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub enum AlertSeverity {
    Extreme,
    Severe,
    Moderate,
    Minor,
}

impl AlertSeverity {
    fn cap(self) -> &'static str {
        match self {
            AlertSeverity::Extreme => "Extreme",
            AlertSeverity::Severe => "Severe",
            AlertSeverity::Moderate => "Moderate",
            AlertSeverity::Minor => "Minor",
        }
    }
}

/// What the operator wants done; one variant per backend kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", tag = "kind")]
#[allow(missing_docs)]
pub enum ActionParams {
    /// Open311: a service request of one of the backend's service codes.
    #[serde(rename_all = "camelCase")]
    ServiceRequest { service_code: String, description: String },
    /// A webhook notification to another agency.
    #[serde(rename_all = "camelCase")]
    Notify { message: String },
    /// An MQTT device command: `command` is one of the backend's choices.
    #[serde(rename_all = "camelCase")]
    DeviceCommand { device: String, command: String },
    /// A CoT tasking: `task` is one of the backend's choices, `unit` the callsign or uid.
    #[serde(rename_all = "camelCase")]
    TaskUnit {
        unit: String,
        task: String,
        remarks: String,
    },
    /// A CAP 1.2 public alert for the incident's area.
    #[serde(rename_all = "camelCase")]
    PublicAlert {
        headline: String,
        description: String,
        instruction: String,
        severity: AlertSeverity,
        expires_minutes: u32,
    },
}

impl ActionParams {
    /// The backend kind these parameters are for.
    pub fn kind(&self) -> BackendKind {
        match self {
            ActionParams::ServiceRequest { .. } => BackendKind::Open311,
            ActionParams::Notify { .. } => BackendKind::Webhook,
            ActionParams::DeviceCommand { .. } => BackendKind::Mqtt,
            ActionParams::TaskUnit { .. } => BackendKind::Cot,
            ActionParams::PublicAlert { .. } => BackendKind::Cap,
        }
    }
}

/// Why an action cannot be sent as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The parameters are for another kind of backend.
    #[error("backend {backend} takes {expected} actions, not {got}")]
    WrongKind {
        /// The backend id.
        backend: String,
        /// What it takes.
        expected: &'static str,
        /// What was asked.
        got: &'static str,
    },
    /// A field is missing, too long, or not one of the backend's choices.
    #[error("{field}: {reason}")]
    Field {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The action has no place: no incident area and no point on the map.
    #[error("the action needs a place: an incident or a point on the map")]
    NoPlace,
}

/// The longest free text a field may carry: enough for a crew's instructions, small enough
/// that no backend refuses it.
pub const MAX_TEXT: usize = 2000;
/// The longest identifier (service code, device, unit, command).
pub const MAX_ID: usize = 128;

/// Where the action applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The point crews go to: the incident's root cause, or the point picked on the map.
    pub point: GeoPoint,
    /// A label for people ("Kaisaniemi substation").
    pub label: String,
    /// The affected area as a closed ring of `[lon, lat]`, when the incident has one.
    pub area: Option<Vec<[f64; 2]>>,
}

/// Everything besides the parameters that goes into the bytes.
#[derive(Debug, Clone)]
pub struct ActionContext<'a> {
    /// The idempotency key: unique per action, repeated on every retry.
    pub key: &'a str,
    /// The incident the action is for.
    pub incident: Option<&'a str>,
    /// Where.
    pub place: &'a Place,
    /// Who sends it.
    pub operator: &'a str,
    /// When it is committed (wall clock for live work, scenario time in an exercise).
    pub now_ms: Millis,
    /// A training exercise: every document says so (CAP `status` Exercise).
    pub exercise: bool,
    /// Who the sender is to the outside world (CAP `sender`, CoT and webhook source).
    pub sender: &'a str,
    /// A CoT tasking is also addressed to this callsign: the sender's own TAK client, which
    /// confirms that the server relayed it.
    pub confirm_to: Option<&'a str>,
}

/// The bytes of one action and how to describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The body, as sent.
    pub body: String,
    /// Its media type.
    pub content_type: &'static str,
    /// One line for lists.
    pub summary: String,
    /// The device an MQTT command is for (it names the command topic).
    pub device: Option<String>,
}

fn text(field: &'static str, value: &str, required: bool) -> Result<(), DispatchError> {
    if required && value.trim().is_empty() {
        return Err(DispatchError::Field {
            field,
            reason: "is required".into(),
        });
    }
    if value.chars().count() > MAX_TEXT {
        return Err(DispatchError::Field {
            field,
            reason: format!("is longer than {MAX_TEXT} characters"),
        });
    }
    Ok(())
}

fn ident(field: &'static str, value: &str, choices: &[String]) -> Result<(), DispatchError> {
    if value.trim().is_empty() {
        return Err(DispatchError::Field {
            field,
            reason: "is required".into(),
        });
    }
    if value.len() > MAX_ID
        || value
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '+' || c == '#')
    {
        return Err(DispatchError::Field {
            field,
            reason: format!("{value:?} is not a valid identifier"),
        });
    }
    if !choices.is_empty() && !choices.iter().any(|c| c == value) {
        return Err(DispatchError::Field {
            field,
            reason: format!("{value:?} is not one of {}", choices.join(", ")),
        });
    }
    Ok(())
}

/// Checks parameters against the backend they are for: right kind, required fields present,
/// identifiers among the backend's choices, text within bounds.
pub fn validate(
    backend: &str,
    kind: BackendKind,
    choices: &[String],
    params: &ActionParams,
) -> Result<(), DispatchError> {
    if params.kind() != kind {
        return Err(DispatchError::WrongKind {
            backend: backend.to_owned(),
            expected: kind.as_str(),
            got: params.kind().as_str(),
        });
    }
    match params {
        ActionParams::ServiceRequest {
            service_code,
            description,
        } => {
            ident("serviceCode", service_code, choices)?;
            text("description", description, true)
        }
        ActionParams::Notify { message } => text("message", message, true),
        ActionParams::DeviceCommand { device, command } => {
            ident("device", device, &[])?;
            ident("command", command, choices)
        }
        ActionParams::TaskUnit { unit, task, remarks } => {
            ident("unit", unit, &[])?;
            ident("task", task, choices)?;
            text("remarks", remarks, false)
        }
        ActionParams::PublicAlert {
            headline,
            description,
            instruction,
            expires_minutes,
            ..
        } => {
            text("headline", headline, true)?;
            if headline.chars().count() > 160 {
                return Err(DispatchError::Field {
                    field: "headline",
                    reason: "CAP headlines should stay under 160 characters".into(),
                });
            }
            text("description", description, true)?;
            text("instruction", instruction, false)?;
            if !(1..=7 * 24 * 60).contains(expires_minutes) {
                return Err(DispatchError::Field {
                    field: "expiresMinutes",
                    reason: "must be between 1 minute and 7 days".into(),
                });
            }
            Ok(())
        }
    }
}

/// How many confirmations the operator must give.
pub fn confirmations_needed(kind: BackendKind) -> u8 {
    if kind.dangerous() {
        2
    } else {
        1
    }
}

/// Renders validated parameters into the exact body the backend receives. `extra` is the
/// backend's static form fields (Open311 `api_key` placeholder, `jurisdiction_id`) appended to
/// an Open311 form, in order.
pub fn render(params: &ActionParams, ctx: &ActionContext<'_>, extra: &[(String, String)]) -> Rendered {
    let at = iso(ctx.now_ms);
    let place = ctx.place;
    match params {
        ActionParams::ServiceRequest {
            service_code,
            description,
        } => {
            let mut form = vec![
                ("service_code".to_owned(), service_code.clone()),
                ("lat".to_owned(), format!("{:.6}", place.point.lat)),
                ("long".to_owned(), format!("{:.6}", place.point.lon)),
                ("address_string".to_owned(), place.label.clone()),
                ("description".to_owned(), description.clone()),
                ("attribute[cityops_key]".to_owned(), ctx.key.to_owned()),
            ];
            if let Some(incident) = ctx.incident {
                form.push(("attribute[cityops_incident]".to_owned(), incident.to_owned()));
            }
            form.extend(extra.iter().cloned());
            Rendered {
                body: form_encode(&form),
                content_type: "application/x-www-form-urlencoded",
                summary: format!("Service request {service_code} at {}", place.label),
                device: None,
            }
        }
        ActionParams::Notify { message } => {
            let body = serde_json::json!({
                "key": ctx.key,
                "sent": at,
                "sender": ctx.sender,
                "operator": ctx.operator,
                "exercise": ctx.exercise,
                "incident": ctx.incident,
                "place": { "label": place.label, "lon": place.point.lon, "lat": place.point.lat },
                "message": message,
            });
            Rendered {
                body: body.to_string(),
                content_type: "application/json",
                summary: format!("Notify: {}", first_line(message)),
                device: None,
            }
        }
        ActionParams::DeviceCommand { device, command } => {
            let body = serde_json::json!({
                "key": ctx.key,
                "device": device,
                "command": command,
                "sent": at,
                "operator": ctx.operator,
                "exercise": ctx.exercise,
                "incident": ctx.incident,
            });
            Rendered {
                body: body.to_string(),
                content_type: "application/json",
                summary: format!("Command {command} to {device}"),
                device: Some(device.clone()),
            }
        }
        ActionParams::TaskUnit { unit, task, remarks } => Rendered {
            body: cot_tasking(ctx, unit, task, remarks),
            content_type: "application/xml",
            summary: format!("Task {unit}: {task} at {}", place.label),
            device: None,
        },
        ActionParams::PublicAlert {
            headline,
            description,
            instruction,
            severity,
            expires_minutes,
        } => Rendered {
            body: cap_alert(ctx, headline, description, instruction, *severity, *expires_minutes),
            content_type: "application/cap+xml",
            summary: format!("Public alert: {}", first_line(headline)),
            device: None,
        },
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(80).collect()
}

/// RFC 3339 with a `Z` zone; CAP wants an explicit offset, which `+00:00` is.
fn iso(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

fn iso_z(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `application/x-www-form-urlencoded`, as browsers encode it (the WHATWG URL standard's
/// serializer): letters, digits and `*-._` as they are, space as `+`, every other byte of the
/// UTF-8 as `%XX` in upper case.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// One form component, encoded as [`form_encode`] encodes it.
pub fn form_component(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Escapes text for XML character data and attribute values. Control characters XML 1.0 cannot
/// carry are dropped rather than sent as an invalid document.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// A CoT tasking: a marker at the place, addressed to the unit, whose uid is derived from the
/// idempotency key so a repeated delivery updates the same marker instead of adding one.
fn cot_tasking(ctx: &ActionContext<'_>, unit: &str, task: &str, remarks: &str) -> String {
    let p = ctx.place.point;
    let time = iso_z(ctx.now_ms);
    let stale = iso_z(ctx.now_ms + 3_600_000);
    let exercise = if ctx.exercise { " (EXERCISE)" } else { "" };
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<event version=\"2.0\" uid=\"cityops-{key}\" type=\"{task}\" how=\"h-g-i-g-o\" time=\"{time}\" start=\"{time}\" stale=\"{stale}\">",
            "<point lat=\"{lat:.6}\" lon=\"{lon:.6}\" hae=\"9999999.0\" ce=\"9999999.0\" le=\"9999999.0\"/>",
            "<detail><contact callsign=\"{label}\"/>",
            "<marti><dest callsign=\"{unit}\"/>{confirm}</marti>",
            "<link uid=\"{sender}\" relation=\"p-p\" type=\"a-f-G-U-C\"/>",
            "<remarks source=\"{sender}\">{remarks}{exercise}</remarks>",
            "<__cityops key=\"{key}\" incident=\"{incident}\" operator=\"{operator}\"/>",
            "</detail></event>"
        ),
        key = xml_escape(ctx.key),
        task = xml_escape(task),
        time = time,
        stale = stale,
        lat = p.lat,
        lon = p.lon,
        label = xml_escape(&ctx.place.label),
        unit = xml_escape(unit),
        confirm = ctx.confirm_to.map(|c| format!("<dest callsign=\"{}\"/>", xml_escape(c))).unwrap_or_default(),
        sender = xml_escape(ctx.sender),
        remarks = xml_escape(remarks),
        exercise = exercise,
        incident = xml_escape(ctx.incident.unwrap_or_default()),
        operator = xml_escape(ctx.operator),
    )
}

/// A CAP 1.2 alert for the place: the incident's area as a polygon where it has one, else a
/// 500 m circle around the point. The identifier is derived from the idempotency key, so a hub
/// that sees it twice can tell it is the same alert.
fn cap_alert(
    ctx: &ActionContext<'_>,
    headline: &str,
    description: &str,
    instruction: &str,
    severity: AlertSeverity,
    expires_minutes: u32,
) -> String {
    let status = if ctx.exercise { "Exercise" } else { "Actual" };
    let sent = iso(ctx.now_ms);
    let expires = iso(ctx.now_ms + i64::from(expires_minutes) * 60_000);
    let mut area = format!("<areaDesc>{}</areaDesc>", xml_escape(&ctx.place.label));
    match &ctx.place.area {
        Some(ring) if ring.len() >= 4 => {
            // CAP polygons are "lat,lon" pairs separated by spaces, first and last equal.
            let pairs: Vec<String> = ring.iter().map(|[lon, lat]| format!("{lat:.5},{lon:.5}")).collect();
            let _ = write!(area, "<polygon>{}</polygon>", pairs.join(" "));
        }
        _ => {
            let _ = write!(
                area,
                "<circle>{:.5},{:.5} 0.5</circle>",
                ctx.place.point.lat, ctx.place.point.lon
            );
        }
    }
    let instruction = if instruction.trim().is_empty() {
        String::new()
    } else {
        format!("<instruction>{}</instruction>", xml_escape(instruction))
    };
    let note = if ctx.exercise {
        "<note>EXERCISE EXERCISE EXERCISE: a training exercise, not a real alert.</note>"
    } else {
        ""
    };
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">",
            "<identifier>cityops-{key}</identifier><sender>{sender}</sender><sent>{sent}</sent>",
            "<status>{status}</status><msgType>Alert</msgType><scope>Public</scope>{note}",
            "<info><language>en-GB</language><category>Infra</category><event>{event}</event>",
            "<urgency>Immediate</urgency><severity>{severity}</severity><certainty>Observed</certainty>",
            "<expires>{expires}</expires><senderName>{sender}</senderName><headline>{headline}</headline>",
            "<description>{description}</description>{instruction}",
            "<area>{area}</area></info></alert>"
        ),
        key = xml_escape(ctx.key),
        sender = xml_escape(ctx.sender),
        sent = sent,
        status = status,
        note = note,
        event = xml_escape(&first_line(headline)),
        severity = severity.cap(),
        expires = expires,
        headline = xml_escape(headline),
        description = xml_escape(description),
        instruction = instruction,
        area = area,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written encoder this module had before it used `form_urlencoded`: the crate's
    /// output must stay byte for byte what Open311 backends have been receiving.
    fn old_form_component(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b as char),
                b' ' => out.push('+'),
                _ => {
                    let _ = write!(out, "%{b:02X}");
                }
            }
        }
        out
    }

    #[test]
    fn form_encoding_is_byte_for_byte_what_it_was() {
        let tricky = [
            "",
            "a b",
            "*",
            "~",
            "+",
            "&",
            "=",
            "%",
            "%41",
            "a+b=c&d",
            "Kaisaniemi <substation> & co",
            "Hämeentie 1 ✓",
            "tab\there\r\n",
            "/?#[]@!$'(),;:",
            "\u{0}\u{7f}\u{80}\u{10ffff}",
        ];
        for s in tricky {
            assert_eq!(form_component(s), old_form_component(s), "{s:?}");
        }
        assert_eq!(form_component("a b*~+&=%ä"), "a+b*%7E%2B%26%3D%25%C3%A4");
        let pairs: Vec<(String, String)> = tricky
            .iter()
            .map(|s| (s.to_string(), s.chars().rev().collect()))
            .collect();
        let old = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", old_form_component(k), old_form_component(v)))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(form_encode(&pairs), old);
        assert_eq!(form_encode(&[]), "");
        assert_eq!(
            form_encode(&[("k".into(), String::new()), (String::new(), "v".into())]),
            "k=&=v"
        );
        for b in 0..=u8::MAX {
            let s = String::from_utf8_lossy(&[b]).into_owned();
            assert_eq!(form_component(&s), old_form_component(&s), "byte {b}");
        }
    }

    proptest::proptest! {
        #[test]
        fn form_components_match_the_old_encoder(s in "\\PC*") {
            proptest::prop_assert_eq!(form_component(&s), old_form_component(&s));
        }
    }

    fn place() -> Place {
        Place {
            point: GeoPoint {
                lon: 24.9445,
                lat: 60.1709,
            },
            label: "Kaisaniemi <substation> & co".into(),
            area: None,
        }
    }

    fn ctx(p: &Place) -> ActionContext<'_> {
        ActionContext {
            key: "k1",
            incident: Some("inc-1"),
            place: p,
            operator: "anna",
            now_ms: 1_780_000_000_000,
            exercise: false,
            sender: "cityops@hel.example",
            confirm_to: None,
        }
    }

    #[test]
    fn validation_names_the_field() {
        let choices = vec!["utility-crew".to_owned()];
        let p = ActionParams::ServiceRequest {
            service_code: "pothole".into(),
            description: "x".into(),
        };
        let e = validate("works", BackendKind::Open311, &choices, &p).unwrap_err();
        assert!(
            matches!(
                e,
                DispatchError::Field {
                    field: "serviceCode",
                    ..
                }
            ),
            "{e}"
        );
        let p = ActionParams::ServiceRequest {
            service_code: "utility-crew".into(),
            description: " ".into(),
        };
        assert!(matches!(
            validate("works", BackendKind::Open311, &choices, &p),
            Err(DispatchError::Field {
                field: "description",
                ..
            })
        ));
        let p = ActionParams::Notify { message: "hi".into() };
        assert!(matches!(
            validate("works", BackendKind::Open311, &choices, &p),
            Err(DispatchError::WrongKind { .. })
        ));
        let p = ActionParams::DeviceCommand {
            device: "sig/#".into(),
            command: "flash".into(),
        };
        assert!(
            matches!(
                validate("dev", BackendKind::Mqtt, &[], &p),
                Err(DispatchError::Field { field: "device", .. })
            ),
            "topic wildcards are refused"
        );
        let p = ActionParams::PublicAlert {
            headline: "h".into(),
            description: "d".into(),
            instruction: String::new(),
            severity: AlertSeverity::Severe,
            expires_minutes: 0,
        };
        assert!(matches!(
            validate("hub", BackendKind::Cap, &[], &p),
            Err(DispatchError::Field {
                field: "expiresMinutes",
                ..
            })
        ));
        assert_eq!(confirmations_needed(BackendKind::Cap), 2);
        assert_eq!(confirmations_needed(BackendKind::Open311), 1);
    }

    #[test]
    fn open311_form_is_encoded_and_carries_the_key() {
        let p = place();
        let r = render(
            &ActionParams::ServiceRequest {
                service_code: "utility-crew".into(),
                description: "Feeder trip; 12 signals dark".into(),
            },
            &ctx(&p),
            &[("api_key".into(), "K".into())],
        );
        assert_eq!(
            r.body,
            "service_code=utility-crew&lat=60.170900&long=24.944500&address_string=Kaisaniemi+%3Csubstation%3E+%26+co&description=Feeder+trip%3B+12+signals+dark&attribute%5Bcityops_key%5D=k1&attribute%5Bcityops_incident%5D=inc-1&api_key=K"
        );
    }

    #[test]
    fn xml_documents_escape_operator_and_feed_text() {
        let p = place();
        let hostile = "</remarks><script>alert(1)</script>\u{1}";
        let r = render(
            &ActionParams::TaskUnit {
                unit: "U1".into(),
                task: "t-x-i".into(),
                remarks: hostile.into(),
            },
            &ctx(&p),
            &[],
        );
        assert!(r.body.contains("&lt;/remarks&gt;&lt;script&gt;"), "{}", r.body);
        assert!(!r.body.contains('\u{1}'));
        assert!(r.body.contains("uid=\"cityops-k1\""));
        let mut c = ctx(&p);
        c.exercise = true;
        let r = render(
            &ActionParams::PublicAlert {
                headline: hostile.into(),
                description: "d".into(),
                instruction: String::new(),
                severity: AlertSeverity::Severe,
                expires_minutes: 60,
            },
            &c,
            &[],
        );
        assert!(r.body.contains("<status>Exercise</status>"));
        assert!(r.body.contains("<circle>60.17090,24.94450 0.5</circle>"));
        assert!(r.body.contains("<sent>2026-05-28T20:26:40+00:00</sent>"), "{}", r.body);
        assert!(r.body.contains("<expires>2026-05-28T21:26:40+00:00</expires>"));
    }

    #[test]
    fn rendering_is_a_function_of_its_inputs() {
        let p = place();
        let params = ActionParams::Notify {
            message: "Substation down".into(),
        };
        assert_eq!(render(&params, &ctx(&p), &[]), render(&params, &ctx(&p), &[]));
        let v: serde_json::Value = serde_json::from_str(&render(&params, &ctx(&p), &[]).body).unwrap();
        assert_eq!(v["key"], "k1");
        assert_eq!(v["place"]["label"], "Kaisaniemi <substation> & co");
    }
}
