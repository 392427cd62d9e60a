//! Desktop end-to-end test: the real cityops app in a real WebKitGTK window (under Xvfb),
//! driven through tauri-driver and WebKitWebDriver.
//!
//! Run by the README's test command after `cargo build -p cityops-desktop`, inside
//! `xvfb-run`. It needs `tauri-driver` (cargo install) and `WebKitWebDriver`
//! (Debian webkit2gtk-driver); the live test also Debian's `mosquitto` and `mosquitto_pub`.
//! The window is 1600x1000, as a workstation would show it. The tests take turns (one window
//! at a time), so a loaded machine does not starve two WebKit processes at once.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::actions::{InputSource, KeyAction, KeyActions, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tauri_driver() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    let installed = home.join("bin/tauri-driver");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("tauri-driver")
    }
}

/// tauri-driver, stopped with SIGTERM so that it stops its WebKitWebDriver child too (a
/// SIGKILL would orphan it, holding its port).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

async fn wait_port(port: u16, deadline: Instant) -> Result<()> {
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(Instant::now() < deadline, "port {port} never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Polls a JavaScript expression until it returns something truthy.
async fn wait_js(c: &Client, what: &str, script: &str, timeout: Duration) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = c
            .execute(script, vec![])
            .await
            .with_context(|| format!("while waiting for {what}"))?;
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} (last value {v})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Calls a Tauri command from the current window the way any script in it could (through
/// the IPC bridge every Tauri page has), and returns `{"ok": value}` or `{"err": message}`.
async fn invoke_from_page(c: &Client, cmd: &str, args: Value) -> Result<Value> {
    c.execute_async(
        r#"const [cmd, args, done] = arguments;
           window.__TAURI_INTERNALS__.invoke(cmd, args).then(v => done({ ok: v === undefined ? null : v }), e => done({ err: typeof e === "string" ? e : JSON.stringify(e) }));"#,
        vec![json!(cmd), args],
    )
    .await
    .with_context(|| format!("invoking {cmd} from the page"))
}

/// Asserts that the current window's capability refuses `cmd`: Tauri's access control answers
/// before the command runs.
async fn refused(c: &Client, window: &str, cmd: &str, args: Value) -> Result<()> {
    let answer = invoke_from_page(c, cmd, args).await?;
    let err = answer["err"].as_str().unwrap_or_default();
    ensure!(
        err.contains("not allowed"),
        "the {window} window may call {cmd}: {answer}"
    );
    println!("{window} window refused {cmd}: {err:.120}");
    Ok(())
}

/// Counts rendered observation features per layer.
const COUNT_RENDERED: &str = r#"
    const m = window.__cityopsMap;
    const out = {};
    for (const l of ["transport", "security", "utility", "alerts"]) {
        out[l] = m.getLayer("obs-" + l) ? m.queryRenderedFeatures({ layers: ["obs-" + l] }).length : 0;
    }
    return out;
"#;

const IDLE: &str = r#"
    const m = window.__cityopsMap;
    return !!(m && m.loaded() && m.isStyleLoaded() && m.areTilesLoaded() && !m.isMoving());
"#;

/// One app window at a time: the tests hold this while their app runs.
static ONE_WINDOW: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_end_to_end() -> Result<()> {
    let _turn = ONE_WINDOW.lock().await;
    let tmp = tempfile_dir("replay")?;
    // The database's first supervisor comes from the command line, as on a real site.
    let cli = target_dir().join("debug/cityops");
    ensure!(cli.exists(), "{} is missing: `cargo test` builds it", cli.display());
    let added = std::process::Command::new(&cli)
        .args([
            "roster",
            "add",
            "E2E Supervisor",
            "--role",
            "supervisor",
            "--pin-env",
            "CITYOPS_E2E_PIN",
            "--db",
        ])
        .arg(tmp.join("e2e.db"))
        .env("CITYOPS_E2E_PIN", SUPERVISOR_PIN)
        .output()?;
    ensure!(
        added.status.success(),
        "cityops roster add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let env = [
        ("CITYOPS_DB", tmp.join("e2e.db")),
        ("CITYOPS_SCENARIO", repo().join("fixtures/scenarios/helsinki-storm")),
        ("CITYOPS_MAPS", repo().join("maps")),
    ];
    let run = async {
        let app = App::start(&env).await?;
        let result = scenario(&app.client, app.started).await;
        app.finish(&tmp, result).await
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .context("the end-to-end test took over 10 minutes")?
}

/// The app in its window, driven through a WebDriver session.
struct App {
    client: Client,
    driver: Driver,
    /// When the session was asked for, to time the cold start.
    started: Instant,
}

impl App {
    /// Starts tauri-driver (which starts the app with `env`) and opens a session.
    async fn start(env: &[(&str, PathBuf)]) -> Result<App> {
        let app = target_dir().join("debug/cityops-desktop");
        ensure!(
            app.exists(),
            "{} is missing: run `cargo build -p cityops-desktop` first",
            app.display()
        );
        let (port, native_port) = (free_port(), free_port());
        let driver = Driver(
            Command::new(tauri_driver())
                .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
                .envs(env.iter().map(|(k, v)| (*k, v)))
                .spawn()
                .context("starting tauri-driver (cargo install tauri-driver --version 2.1.0 --locked)")?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        wait_port(port, deadline).await?;

        let caps = json!({ "browserName": "wry", "tauri:options": { "application": app } });
        let started = Instant::now();
        // tauri-driver answers before WebKitWebDriver is up, so the first sessions can fail.
        let client = loop {
            let attempt = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.as_object().unwrap().clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match attempt {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("session not ready yet: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => bail!("no WebDriver session: {e}"),
            }
        };
        Ok(App {
            client,
            driver,
            started,
        })
    }

    /// Ends the session and the app; on failure first saves a screenshot into `tmp`.
    async fn finish(self, tmp: &Path, result: Result<()>) -> Result<()> {
        if result.is_err() {
            // Numbered, so that a test with two windows keeps both screenshots.
            static FAILURES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = tmp.join(format!("failure-{n}.png"));
            if let Ok(png) = self.client.screenshot().await {
                let _ = std::fs::write(&path, png);
                eprintln!("failure screenshot: {}", path.display());
            }
        }
        let _ = self.client.close().await;
        drop(self.driver);
        result
    }
}

fn tempfile_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cityops-e2e-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn click_at(c: &Client, x: f64, y: f64) -> Result<()> {
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo { duration: None, x, y })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(mouse).await?;
    Ok(())
}

/// Moves the map to `lon, lat` at zoom 16 and, once it is idle (`what`), clicks that place.
async fn click_map_at(c: &Client, lon: f64, lat: f64, what: &str) -> Result<()> {
    let point = c
        .execute(
            r#"const [lon, lat] = arguments; const m = window.__cityopsMap;
               m.jumpTo({ center: [lon, lat], zoom: 16 });
               const p = m.project([lon, lat]);
               const r = m.getCanvas().getBoundingClientRect();
               return [r.left + p.x, r.top + p.y];"#,
            vec![json!(lon), json!(lat)],
        )
        .await?;
    wait_js(c, what, IDLE, Duration::from_secs(60)).await?;
    click_at(c, point[0].as_f64().unwrap_or(0.0), point[1].as_f64().unwrap_or(0.0)).await
}

async fn scenario(c: &Client, started: Instant) -> Result<()> {
    // 1. The map reaches idle with basemap features drawn from the local tiles.
    wait_js(c, "first map idle", IDLE, Duration::from_secs(180)).await?;
    let cold_start = started.elapsed();
    println!("cold start to first map idle: {} ms", cold_start.as_millis());
    let basemap = wait_js(
        c,
        "basemap features",
        r#"return window.__cityopsMap.queryRenderedFeatures().filter(f => f.source === "openmaptiles").length;"#,
        Duration::from_secs(60),
    )
    .await?;
    println!("basemap features rendered: {basemap}");
    let home = c
        .execute(
            "const m = window.__cityopsMap; return [m.getCenter().lng, m.getCenter().lat, m.getZoom()];",
            vec![],
        )
        .await?;
    let attribution = c.find(Locator::Css(".maplibregl-ctrl-attrib")).await?.text().await?;
    ensure!(
        attribution.contains("OpenStreetMap contributors"),
        "attribution shows {attribution:?}"
    );

    // 2. Replay at max speed puts observations of all three layers on the map.
    c.find(Locator::Css("[data-testid=speed]"))
        .await?
        .select_by_value("max")
        .await?;
    c.find(Locator::Css("[data-testid=play-toggle]")).await?.click().await?;
    let counts = wait_js(
        c,
        "observations on the transport, security and utility layers",
        &COUNT_RENDERED.replace(
            "return out;",
            "return (out.transport > 0 && out.security > 0 && out.utility > 0) ? out : null;",
        ),
        Duration::from_secs(120),
    )
    .await?;
    println!("rendered observations per layer: {counts}");
    // 2b. The storm warning is drawn as the area it covers, not only as its point: its polygon
    //     fills the alerts layer's shape layer, under the dots.
    let warning = wait_js(
        c,
        "the storm warning drawn as its area",
        r#"const m = window.__cityopsMap;
           const f = m.queryRenderedFeatures({ layers: ["shapes-alerts-fill"] });
           const w = f.find(x => x.properties.id === "warning/storm-2026-11-26-helsinki");
           return w ? [w.geometry.type, f.length] : null;"#,
        Duration::from_secs(60),
    )
    .await?;
    ensure!(warning[0] == "Polygon", "the warning's shape: {warning}");
    // 2c. The scenario's zone, the station perimeter, is drawn with its name, and `z` hides it.
    wait_js(
        c,
        "the station zone drawn",
        r#"const m = window.__cityopsMap;
           return m.getLayoutProperty("zones-line", "visibility") !== "none"
               && m.queryRenderedFeatures({ layers: ["zones-fill"] }).some(f => f.properties.name === "Helsinki Central station");"#,
        Duration::from_secs(30),
    )
    .await?;
    press(c, "z").await?;
    wait_js(
        c,
        "the zones hidden",
        r#"return window.__cityopsMap.getLayoutProperty("zones-line", "visibility") === "none";"#,
        Duration::from_secs(10),
    )
    .await?;
    press(c, "z").await?;

    // 3. Toggling a layer removes its features and leaves the others.
    c.find(Locator::Css("[data-testid=layer-toggle-security]"))
        .await?
        .click()
        .await?;
    let after = wait_js(
        c,
        "security layer hidden",
        &COUNT_RENDERED.replace(
            "return out;",
            "return (out.security === 0 && out.transport > 0) ? out : null;",
        ),
        Duration::from_secs(30),
    )
    .await?;
    println!("after hiding security: {after}");
    c.find(Locator::Css("[data-testid=layer-toggle-security]"))
        .await?
        .click()
        .await?;
    wait_js(
        c,
        "security layer shown again",
        &COUNT_RENDERED.replace("return out;", "return out.security > 0;"),
        Duration::from_secs(30),
    )
    .await?;

    // 4. Clicking the hostile citizen report shows its text literally in the details panel.
    let target = wait_js(
        c,
        "the hostile report on the map",
        r#"
        const m = window.__cityopsMap;
        const f = m.querySourceFeatures("obs-alerts").find(f => f.id === "report/hostile-0001" || (f.properties && f.properties.id === "report/hostile-0001"));
        if (!f) return null;
        const [lon, lat] = f.geometry.coordinates;
        m.jumpTo({ center: [lon, lat], zoom: 18 });
        return [lon, lat];
        "#,
        Duration::from_secs(30),
    )
    .await?;
    wait_js(c, "idle at the report", IDLE, Duration::from_secs(60)).await?;
    let point = c
        .execute(
            r#"
            const m = window.__cityopsMap;
            const p = m.project(arguments[0]);
            const r = m.getCanvas().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
            "#,
            vec![target.clone()],
        )
        .await?;
    let (x, y) = (point[0].as_f64().unwrap_or(0.0), point[1].as_f64().unwrap_or(0.0));
    click_at(c, x, y).await?;
    let details = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=details]"))
        .await?;
    let text = wait_for_text(&details, "onerror", Duration::from_secs(20)).await?;
    ensure!(
        text.contains("<img src=x onerror=alert(1)>"),
        "details panel shows {text:?}"
    );
    ensure!(
        text.contains("<script>alert('x')</script>"),
        "payload field not shown literally: {text:?}"
    );
    let injected = c.find_all(Locator::Css("[data-testid=details] img, [data-testid=details] script, [data-testid=details] svg, [data-testid=details] a")).await?;
    ensure!(injected.is_empty(), "feed text became HTML elements");
    // The rest of the attacker's fields: a `javascript:` link and markup that would set a flag
    // are plain text, the bidirectional overrides are shown isolated (the operator reads them
    // in stored order), and 20,000 unbroken characters stay inside the panel.
    let hostile = wait_js(
        c,
        "the hostile fields shown inert",
        r#"const d = document.querySelector("[data-testid=details]");
           const t = d.textContent;
           if (!t.includes("javascript:window.__pwned='link'") || !t.includes("onerror=\"window.__pwned='img'\"") || !t.includes("WWWWWWWWWW") || !t.includes("invoice⟨U+202E⟩gpj.exe")) return null;
           const r = d.getBoundingClientRect();
           const wide = [...d.querySelectorAll("*")].filter(e => e.getBoundingClientRect().right > r.right + 1).length;
           return { panel: [r.width, r.height], wide, page: [document.documentElement.scrollWidth, window.innerWidth], pwned: window.__pwned ?? null,
                    links: document.querySelectorAll("a[href^='javascript:']").length };"#,
        Duration::from_secs(20),
    )
    .await?;
    println!("hostile fields: {hostile}");
    ensure!(
        hostile["pwned"].is_null() && hostile["links"] == 0,
        "feed text ran or linked script: {hostile}"
    );
    ensure!(
        hostile["wide"] == 0,
        "an element sticks out of the details panel: {hostile}"
    );
    ensure!(
        hostile["page"][0].as_f64() <= hostile["page"][1].as_f64(),
        "the page scrolls sideways: {hostile}"
    );

    // 5. Dragging the seek slider back to the middle of the outage restores that picture: signals
    //    that were dark then (and are restored by the end of the tape) are dark again.
    let dark_signals = r#"return window.__cityopsMap.queryRenderedFeatures({ layers: ["obs-transport"] })
        .filter(f => f.properties.kind === "signal.dark").length;"#;
    c.execute(
        "const [lon, lat, zoom] = arguments[0]; window.__cityopsMap.jumpTo({ center: [lon, lat], zoom }); return true;",
        vec![home],
    )
    .await?;
    wait_js(c, "idle at home", IDLE, Duration::from_secs(60)).await?;
    let dark_at_end = c.execute(dark_signals, vec![]).await?;
    ensure!(
        dark_at_end == json!(0),
        "signals still dark at the end of the tape: {dark_at_end}"
    );
    let slider = c
        .execute(r#"const r = document.querySelector("[data-testid=seek]").getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"#, vec![])
        .await?;
    let f = |i: usize| slider[i].as_f64().unwrap_or(0.0);
    // 40% of an hour from 21:00 is about 21:24, deep in the outage (21:12 to 21:45).
    click_at(c, f(0) + f(2) * 0.4, f(1) + f(3) / 2.0).await?;
    let dark = wait_js(
        c,
        "dark signals after seeking back",
        &dark_signals.replace(".length;", ".length || null;"),
        Duration::from_secs(30),
    )
    .await?;
    let clock = c.find(Locator::Css("[data-testid=clock]")).await?.text().await?;
    println!("after seeking to {clock}: {dark} dark signals drawn");
    ensure!(
        clock.as_str() > "21:15" && clock.as_str() < "21:35",
        "seek landed at {clock}"
    );

    // 6. The substation's details, for the README's screenshot of the storm at its worst.
    let sub = wait_js(
        c,
        "the tripped substation",
        r#"const f = window.__cityopsMap.queryRenderedFeatures({ layers: ["obs-utility"] }).find(f => f.properties.kind === "substation.trip");
           if (!f) return null;
           const m = window.__cityopsMap; const p = m.project(f.geometry.coordinates); const r = m.getCanvas().getBoundingClientRect();
           return [r.left + p.x, r.top + p.y];"#,
        Duration::from_secs(30),
    )
    .await?;
    click_at(c, sub[0].as_f64().unwrap_or(0.0), sub[1].as_f64().unwrap_or(0.0)).await?;
    wait_for_text(&details, "substation.trip", Duration::from_secs(20)).await?;

    // 7. The incident queue shows the outage at the top; the operator signs in, acknowledges it
    //    with the keyboard, opens it, reads why a member belongs, and the map highlights the area.
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "observation details closed",
        r#"return !document.querySelector("[data-testid=details]");"#,
        Duration::from_secs(10),
    )
    .await?;
    let top = wait_js(
        c,
        "the power outage at the top of the queue",
        r#"const e = document.querySelector("[data-testid=incident-entry]");
           return e && e.textContent.includes("Power outage") && e.dataset.status === "new" ? [e.textContent, e.dataset.severity] : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    println!("top of the queue: {top}");
    ensure!(top[1] == "extreme", "the outage is not extreme: {top}");
    c.find(Locator::Css("[data-testid=sign-in]")).await?.click().await?;
    c.find(Locator::Css("[data-testid=sign-in-name]"))
        .await?
        .send_keys("E2E Operator")
        .await?;
    c.find(Locator::Css("[data-testid=sign-in-submit]"))
        .await?
        .click()
        .await?;
    let who = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=operator]"))
        .await?
        .text()
        .await?;
    ensure!(who.contains("E2E Operator"), "signed in as {who:?}");
    // Both the outage and the storm warning went unacknowledged past their limits: escalated,
    // on top, the outage (extreme) first. Acknowledged, the outage leaves the top to the
    // warning, still escalated.
    let escalated = wait_js(
        c,
        "the escalated incidents",
        r#"return [...document.querySelectorAll("[data-testid=incident-entry]")].filter(e => e.querySelector("[data-testid=incident-escalated]")).map(e => e.textContent.includes("Power outage") ? "outage" : e.textContent.includes("Weather warning") ? "warning" : "other").join(",") || null;"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(escalated == "outage,warning", "escalated, in order: {escalated}");
    press(c, "a").await?;
    wait_js(
        c,
        "the outage acknowledged",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           return e && e.dataset.status === "acknowledged";"#,
        Duration::from_secs(10),
    )
    .await?;
    press(c, ENTER).await?;
    let detail = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=incident-detail]"))
        .await?;
    let text = wait_for_text(&detail, "it is fed by that substation", Duration::from_secs(20)).await?;
    ensure!(
        text.contains("Kaisankuja substation"),
        "the detail does not name the substation: {text:.300}"
    );
    let explanation = c
        .find(Locator::Css(
            "[data-testid=incident-group-transport] [data-testid=member-explanation]",
        ))
        .await?
        .text()
        .await?;
    println!("a member's explanation: {explanation}");
    ensure!(
        explanation.contains("went dark") && explanation.contains("after substation"),
        "explanation {explanation:?}"
    );
    ensure!(
        text.contains("Acknowledged by E2E Operator"),
        "the timeline lacks the acknowledgement"
    );
    wait_js(c, "idle at the incident", IDLE, Duration::from_secs(60)).await?;
    let area = wait_js(
        c,
        "the affected area highlighted on the map",
        r#"const m = window.__cityopsMap;
           const n = m.getLayer("incident-area-fill") ? m.queryRenderedFeatures({ layers: ["incident-area-fill", "incident-area-line"] }).length : 0;
           const c = m.getCenter();
           return n > 0 ? [n, c.lng, c.lat, m.getZoom()] : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    println!("area drawn, camera at {area}");

    // 7b. Dispatch a crew for the outage (key s). A replay is an exercise: the preview says so,
    //     and the action is recorded as delivered without leaving the machine.
    let reference = dispatch_crew(c, true).await?;
    ensure!(
        reference == "exercise: recorded, not sent",
        "exercise reference {reference:?}"
    );
    // The timeline strip marks where incidents opened and where the trainee acted.
    let marks = wait_js(
        c,
        "incident and action marks on the timeline",
        r#"const k = [...document.querySelectorAll("[data-testid=timeline-mark]")].map(m => m.dataset.kind);
           return k.includes("incident") && k.includes("action") ? k.length : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!("timeline marks: {marks}");
    wait_js(c, "idle for the screenshot", IDLE, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let png = c.screenshot().await?;
    let out = repo().join("assets/screenshot.png");
    std::fs::write(&out, &png)?;
    println!("screenshot saved: {} ({} bytes)", out.display(), png.len());

    // 7c. A phone call entered as an incident (key n).
    enter_call(c).await?;
    // 7d. What happened here (key h, then a box dragged on the map).
    what_happened_here(c).await?;

    // 8. The keys are documented in the window: `?` opens the help, Esc closes it.
    press(c, "?").await?;
    let help = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=help]"))
        .await?
        .text()
        .await?;
    ensure!(
        help.contains("Acknowledge") && help.contains("Next / previous incident"),
        "help shows {help:?}"
    );
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "help closed",
        r#"return !document.querySelector("[data-testid=help]");"#,
        Duration::from_secs(10),
    )
    .await?;

    // 8b. A replay is an exercise and the window says so; the after-action report opens in the
    //     window with the trainee's score against the scenario's objectives.
    let banner = c
        .find(Locator::Css("[data-testid=exercise-banner]"))
        .await?
        .text()
        .await?;
    ensure!(banner == "EXERCISE", "exercise banner {banner:?}");
    c.find(Locator::Css("[data-testid=report-open]")).await?.click().await?;
    let score = wait_js(
        c,
        "the report with the score",
        r#"const f = document.querySelector("[data-testid=report-frame]");
           if (!f) return null;
           const m = f.srcdoc.match(/run \d+: <strong>([\d.]+) of 4 points<\/strong>/);
           return m && f.srcdoc.includes("Acknowledge the substation outage within 60 s") ? m[1] : null;"#,
        Duration::from_secs(60),
    )
    .await?;
    println!("exercise score so far: {score} of 4");
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "report closed",
        r#"return !document.querySelector("[data-testid=report]");"#,
        Duration::from_secs(10),
    )
    .await?;

    // 9. The quarantine browser (key q) also works in a replay. The demo tape refuses nothing
    //    (`cityops replay` reports 0 rejected), so it says so; the live test lists refusals.
    let replay_mode = c
        .find(Locator::Css("[data-testid=feed-health]"))
        .await?
        .attr("data-mode")
        .await?;
    ensure!(
        replay_mode.as_deref() == Some("replay"),
        "the feed panel is in mode {replay_mode:?}"
    );
    press(c, "q").await?;
    let empty = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=quarantine-empty]"))
        .await?
        .text()
        .await?;
    ensure!(empty == "Nothing refused.", "the demo's quarantine shows {empty:?}");
    let count = c
        .find(Locator::Css("[data-testid=quarantine-count]"))
        .await?
        .text()
        .await?;
    ensure!(count.trim() == "0 refused", "count {count:?}");
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "quarantine closed",
        r#"return !document.querySelector("[data-testid=quarantine]");"#,
        Duration::from_secs(10),
    )
    .await?;

    // 9b. The operator's window may not inject: that is the trainer's.
    refused(
        c,
        "operator",
        "inject",
        json!({ "request": { "inject": "citizen-report", "lon": 24.94, "lat": 60.17, "trainer": "x" } }),
    )
    .await?;

    trainer_view(c).await?;
    wall_display(c).await?;

    // 12. The trainee ends the exercise (key e, then Enter on the confirmation): the report
    //     opens with the score, who ended it, and the map's picture of the outage.
    press(c, "e").await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=confirm]"))
        .await?;
    press(c, ENTER).await?;
    let ended = wait_js(
        c,
        "the report of the ended exercise",
        r#"const f = document.querySelector("[data-testid=report-frame]");
           if (!f) return null;
           const m = f.srcdoc.match(/run \d+: <strong>([\d.]+) of 4 points<\/strong>/);
           const by = f.srcdoc.match(/Exercise ended at [\d:]+ by ([^.<]+)\./);
           const map = f.srcdoc.match(/<img alt="Map of the main incident's area" src="data:image\/png;base64,([A-Za-z0-9+\/=]+)"/);
           return m && by && map ? [m[1], by[1], map[1].length] : null;"#,
        Duration::from_secs(60),
    )
    .await?;
    println!(
        "exercise ended: score {} of 4, ended by {}, map image {} base64 bytes",
        ended[0], ended[1], ended[2]
    );
    ensure!(ended[1] == "E2E Operator", "ended by {}", ended[1]);
    ensure!(
        ended[2].as_u64().unwrap_or(0) > 10_000,
        "the map image is too small to show anything"
    );
    let banner = c
        .find(Locator::Css("[data-testid=exercise-banner]"))
        .await?
        .text()
        .await?;
    ensure!(banner == "EXERCISE ENDED", "banner after the end {banner:?}");
    // The frame is sandboxed (no access from here): give its megabyte of map image time to draw.
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::write(repo().join("assets/screenshot-report.png"), c.screenshot().await?)?;
    press(c, ESCAPE).await?;
    // The trainee's record is closed: acknowledging anything more is refused, in words.
    press(c, "a").await?;
    let refused = wait_js(
        c,
        "the acknowledgement refused after the end",
        r#"const e = document.querySelector("[data-testid=error]");
           return e && e.textContent.includes("the exercise ended at scenario time") ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!("after the end: {refused}");
    roster(c).await?;
    let pwned = c.execute("return window.__pwned ?? null;", vec![]).await?;
    ensure!(pwned.is_null(), "feed text ran script at some point: {pwned}");
    Ok(())
}

/// The PIN `cityops roster add` gave the database's first supervisor.
const SUPERVISOR_PIN: &str = "2468";

/// Sets a `<select>` by its test id, as a person picking an option would.
async fn choose(c: &Client, testid: &str, value: &str) -> Result<()> {
    c.execute(
        r#"const [id, v] = arguments; const s = document.querySelector(`[data-testid=${id}]`);
           s.value = v; s.dispatchEvent(new Event("change", { bubbles: true }));"#,
        vec![json!(testid), json!(value)],
    )
    .await?;
    Ok(())
}

/// 7c. A phone call entered as an incident (key n): the operator picks its type, severity and
///     layer, writes what the caller said, and clicks the map where it is (a pin shows it). The
///     incident opens when the clock passes the second it was entered in, as the root of its
///     own incident, named from the description and numbered; the window opens it, and a note
///     goes in its log.
async fn enter_call(c: &Client) -> Result<()> {
    press(c, "n").await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=new-incident]"))
        .await?;
    choose(c, "new-incident-type", "obstruction").await?;
    choose(c, "new-incident-severity", "severe").await?;
    choose(c, "new-incident-layer", "transport").await?;
    c.find(Locator::Css("[data-testid=new-incident-description]"))
        .await?
        .send_keys(
            "Fallen tree across the tram tracks, Aleksanterinkatu by Senate Square. Caller <b>stays</b> on site.",
        )
        .await?;
    // Entered before it is placed, it is refused with the reason, and nothing is lost.
    c.find(Locator::Css("[data-testid=new-incident-submit]"))
        .await?
        .click()
        .await?;
    let problem = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=new-incident-problem]"))
        .await?
        .text()
        .await?;
    ensure!(problem.contains("Click the map"), "unplaced call: {problem:?}");
    click_map_at(c, 24.9505, 60.1697, "the map idle at the caller's place").await?;
    let place = c
        .find(Locator::Css("[data-testid=new-incident-place]"))
        .await?
        .text()
        .await?;
    ensure!(
        place.contains("60.169") && place.contains("24.950"),
        "placed at {place:?}"
    );
    wait_js(
        c,
        "the pin where the call is placed",
        r#"return !!document.querySelector("[data-testid=new-incident-pin]");"#,
        Duration::from_secs(10),
    )
    .await?;
    wait_js(c, "idle with the pin", IDLE, Duration::from_secs(60)).await?;
    std::fs::write(repo().join("assets/screenshot-call.png"), c.screenshot().await?)?;
    c.find(Locator::Css("[data-testid=new-incident-submit]"))
        .await?
        .click()
        .await?;
    wait_js(
        c,
        "the form closed and the pin gone",
        r#"return !document.querySelector("[data-testid=new-incident]") && !document.querySelector("[data-testid=new-incident-pin]");"#,
        Duration::from_secs(10),
    )
    .await?;
    // The replay rests: at 1x for a moment, the clock passes the call's second.
    choose(c, "speed", "1").await?;
    press(c, " ").await?;
    let opened = wait_js(
        c,
        "the call's incident open in the detail",
        r#"const d = document.querySelector("[data-testid=incident-detail]");
           return d && d.textContent.includes("Obstruction: Fallen tree across the tram tracks") ? d.textContent : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    press(c, " ").await?;
    let opened = opened.as_str().unwrap_or_default();
    ensure!(
        opened.contains("reported to an operator by phone or radio") && opened.contains("HEL-2026-"),
        "the call's incident: {opened:.400}"
    );
    let entry = wait_js(
        c,
        "the call's incident in the queue",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Obstruction: Fallen tree"));
           return e ? [e.dataset.severity, e.textContent] : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(entry[0] == "severe", "the call's severity: {entry}");
    // The operator's words are shown literally, never as markup.
    let member = c
        .find(Locator::Css("[data-testid=incident-detail]"))
        .await?
        .html(false)
        .await?;
    ensure!(!member.contains("<b>stays</b>"), "feed text rendered as markup");
    c.find(Locator::Css("[data-testid=note-text]"))
        .await?
        .send_keys("Called back: tree crew from Stara on the way, ETA 20 min.")
        .await?;
    c.find(Locator::Css("[data-testid=note-add]")).await?.click().await?;
    let note = wait_js(
        c,
        "the note in the call's log",
        r#"const e = document.querySelector("[data-testid=incident-timeline] li[data-kind=note]");
           return e ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(
        note.as_str().unwrap_or_default().contains("tree crew from Stara"),
        "note {note}"
    );
    println!("entered a call: {}", entry[1]);
    Ok(())
}

/// 7d. What happened here: `h`, then a box dragged around the substation. The panel lists what
///     was observed in it over the last 15 minutes of scenario time, with counts per kind, the
///     map rings them, and Escape closes it all.
async fn what_happened_here(c: &Client) -> Result<()> {
    let corners = c
        .execute(
            r#"const m = window.__cityopsMap;
               m.jumpTo({ center: [24.9427, 60.1718], zoom: 15 });
               const r = m.getCanvas().getBoundingClientRect();
               const a = m.project([24.9360, 60.1690]), b = m.project([24.9500, 60.1750]);
               return [r.left + a.x, r.top + a.y, r.left + b.x, r.top + b.y];"#,
            vec![],
        )
        .await?;
    wait_js(c, "the map idle over the substation", IDLE, Duration::from_secs(60)).await?;
    let at = |i: usize| corners[i].as_f64().unwrap_or(0.0);
    press(c, "h").await?;
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: at(0),
            y: at(1),
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveTo {
            duration: Some(Duration::from_millis(300)),
            x: at(2),
            y: at(3),
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(drag).await?;
    let answer = wait_js(
        c,
        "what happened in the box",
        r#"const p = document.querySelector("[data-testid=area-query-count]");
           const kinds = [...document.querySelectorAll("[data-testid=area-query-kinds] tr")].map(r => r.dataset.kind);
           return p && Number(p.dataset.count) > 0 ? [Number(p.dataset.count), kinds] : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    println!("what happened here: {answer}");
    let kinds = answer[1].as_array().map(Vec::len).unwrap_or(0);
    ensure!(kinds >= 2, "counts for several kinds across layers: {answer}");
    let ringed = wait_js(
        c,
        "the listed observations ringed on the map",
        r#"const m = window.__cityopsMap;
           const n = m.queryRenderedFeatures({ layers: ["area-query-hits"] }).length;
           return n > 0 ? n : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    println!("ringed on the map: {ringed}");
    wait_js(c, "idle for the box's screenshot", IDLE, Duration::from_secs(60)).await?;
    std::fs::write(repo().join("assets/screenshot-here.png"), c.screenshot().await?)?;
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "the box's panel closed",
        r#"return !document.querySelector("[data-testid=area-query]");"#,
        Duration::from_secs(10),
    )
    .await?;
    Ok(())
}

/// 13. Authority comes from the roster: typing "supervisor" at sign-in is refused; the
///     supervisor the command line added signs in with the PIN and names a trainer in the app.
async fn roster(c: &Client) -> Result<()> {
    sign_out(c).await?;
    c.find(Locator::Css("[data-testid=sign-in]")).await?.click().await?;
    c.find(Locator::Css("[data-testid=sign-in-name]"))
        .await?
        .send_keys("Mallory")
        .await?;
    choose(c, "sign-in-role", "supervisor").await?;
    c.find(Locator::Css("[data-testid=sign-in-submit]"))
        .await?
        .click()
        .await?;
    let refused = wait_js(
        c,
        "the claimed role refused",
        r#"const e = document.querySelector("[data-testid=error]");
           return e && e.textContent.includes("not in the roster as supervisor") ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!("claimed role: {refused}");
    ensure!(
        c.find(Locator::Css("[data-testid=operator]")).await.is_err(),
        "Mallory got in"
    );
    let name = c.find(Locator::Css("[data-testid=sign-in-name]")).await?;
    name.clear().await?;
    name.send_keys("E2E Supervisor").await?;
    c.find(Locator::Css("[data-testid=sign-in-pin]"))
        .await?
        .send_keys(SUPERVISOR_PIN)
        .await?;
    c.find(Locator::Css("[data-testid=sign-in-submit]"))
        .await?
        .click()
        .await?;
    let who = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=operator]"))
        .await?
        .text()
        .await?;
    ensure!(
        who.contains("E2E Supervisor") && who.to_lowercase().contains("supervisor"),
        "signed in as {who:?}"
    );
    c.find(Locator::Css("[data-testid=roster-open]")).await?.click().await?;
    wait_js(
        c,
        "the roster listing the supervisor",
        r#"const l = document.querySelector("[data-testid=roster-list]"); return l && l.textContent.includes("E2E Supervisor");"#,
        Duration::from_secs(10),
    )
    .await?;
    name_in_roster(c, "E2E Trainer", "trainer", Some("1357")).await?;
    let done = wait_js(
        c,
        "the trainer named",
        r#"const d = document.querySelector("[data-testid=roster-done]");
           const l = document.querySelector("[data-testid=roster-list]");
           return d && l && l.textContent.includes("E2E Trainer") ? d.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!("roster: {done}");
    std::fs::write(repo().join("assets/screenshot-roster.png"), c.screenshot().await?)?;
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "the roster closed",
        r#"return !document.querySelector("[data-testid=roster-dialog]");"#,
        Duration::from_secs(10),
    )
    .await?;
    Ok(())
}

/// In a trainer view: arms the citizen's report in the inject palette, clicks a place in
/// Kaisaniemi park (north of the substation) on the map, and waits until the panel says it was
/// injected and lists it among the injects made with `listed`.
async fn place_citizen_report(c: &Client, listed: &str) -> Result<()> {
    c.find(Locator::Css("[data-testid=inject-option][data-inject=citizen-report]"))
        .await?
        .click()
        .await?;
    let hint = c.find(Locator::Css("[data-testid=inject-hint]")).await?.text().await?;
    ensure!(hint.contains("Click the map to place"), "hint {hint:?}");
    click_map_at(c, 24.9445, 60.1745, "the trainer's map idle at the place").await?;
    let made = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=inject-message]"))
        .await?;
    let said = wait_for_text(&made, "Injected", Duration::from_secs(20)).await?;
    println!("trainer: {said}");
    let made = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=injects-made]"))
        .await?;
    wait_for_text(&made, listed, Duration::from_secs(20)).await?;
    Ok(())
}

/// 10-11. The trainer view (key t) opens in its own window and takes the clock: the trainee's
/// bar shows it without controls. The trainer places an inject from the palette on the map;
/// it shows among the injects made and on the map. Closing the view gives the clock back.
async fn trainer_view(c: &Client) -> Result<()> {
    let main = c.window().await?;
    press(c, "t").await?;
    let trainer = second_window(c, &main, "the trainer view's").await?;
    wait_js(
        c,
        "the clock locked in the trainee's window",
        r#"return !!document.querySelector("[data-testid=clock-locked]");"#,
        Duration::from_secs(20),
    )
    .await?;
    ensure!(
        c.find(Locator::Css("[data-testid=play-toggle]"))
            .await?
            .attr("disabled")
            .await?
            .is_some(),
        "the trainee can still play"
    );
    c.switch_to_window(trainer).await?;
    c.wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("[data-testid=trainer-banner]"))
        .await?;
    wait_js(c, "the trainer's map idle", IDLE, Duration::from_secs(120)).await?;
    // The trainer moves the clock: 60% of the hour is about 21:36, late in the outage.
    let slider = c
        .execute(r#"const r = document.querySelector("[data-testid=seek]").getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"#, vec![])
        .await?;
    let f = |i: usize| slider[i].as_f64().unwrap_or(0.0);
    click_at(c, f(0) + f(2) * 0.6, f(1) + f(3) / 2.0).await?;
    wait_js(
        c,
        "the trainer's seek",
        r#"const t = document.querySelector("[data-testid=clock]").textContent; return t > "21:33" && t < "21:40" ? t : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    let name = c.find(Locator::Css("[data-testid=trainer-name]")).await?;
    name.clear().await?;
    name.send_keys("E2E Trainer").await?;
    place_citizen_report(c, "Citizen reports an outage").await?;
    wait_js(
        c,
        "the inject on the trainer's map",
        r#"return window.__cityopsMap.querySourceFeatures("obs-alerts").some(f => (f.properties && f.properties.id === "inject/1") || f.id === "inject/1") || null;"#,
        Duration::from_secs(20),
    )
    .await?;
    let score = c
        .find(Locator::Css("[data-testid=trainer-score]"))
        .await?
        .text()
        .await?;
    println!("trainer sees: {score}");
    wait_js(
        c,
        "the trainer's map idle for the screenshot",
        IDLE,
        Duration::from_secs(60),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(repo().join("assets/screenshot-trainer.png"), c.screenshot().await?)?;
    // The trainer's window may move the clock and inject, but not act for the trainee.
    refused(c, "trainer", "confirm_action", json!({ "token": "t" })).await?;
    refused(c, "trainer", "arm_action", json!({ "token": "t" })).await?;
    refused(
        c,
        "trainer",
        "incident_transition",
        json!({ "id": "i1", "to": "resolved" }),
    )
    .await?;
    // The trainer closes the view from its panel; the window goes and the clock comes back.
    // The click closes the very window it was sent to, so WebKitWebDriver may answer it with an
    // error when the window is gone first; what counts is that the window closes.
    if let Err(e) = c.find(Locator::Css("[data-testid=trainer-close]")).await?.click().await {
        println!("the closing click was answered with: {e}");
    }
    c.switch_to_window(main.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.windows().await?.len() > 1 {
        ensure!(Instant::now() < deadline, "the trainer's window did not close");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_js(
        c,
        "the clock back with the trainee",
        r#"return !document.querySelector("[data-testid=clock-locked]");"#,
        Duration::from_secs(20),
    )
    .await?;
    Ok(())
}

/// Waits for a window other than `main` to open (`what` names it in the failure).
async fn second_window(
    c: &Client,
    main: &fantoccini::wd::WindowHandle,
    what: &str,
) -> Result<fantoccini::wd::WindowHandle> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(h) = c.windows().await?.into_iter().find(|h| h != main) {
            return Ok(h);
        }
        ensure!(Instant::now() < deadline, "{what} window did not open");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// 11b. The wall display (key w) opens in its own window and follows the picture and the
/// queue, read only: its capability refuses every command that acts, while the two it is
/// granted answer. The window is closed again, and the operator's carries on.
async fn wall_display(c: &Client) -> Result<()> {
    let main = c.window().await?;
    press(c, "w").await?;
    let wall = second_window(c, &main, "the wall display's").await?;
    c.switch_to_window(wall).await?;
    let banner = c
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("[data-testid=wall-banner]"))
        .await?
        .text()
        .await?;
    ensure!(banner.contains("READ ONLY"), "wall banner {banner:?}");
    wait_js(
        c,
        "the outage in the wall's queue",
        r#"return [...document.querySelectorAll("[data-testid=incident-entry]")].some(e => e.textContent.includes("Power outage"));"#,
        Duration::from_secs(60),
    )
    .await?;
    let buttons = c
        .execute(
            r#"return [...document.querySelectorAll("header button")].map(b => b.textContent);"#,
            vec![],
        )
        .await?;
    ensure!(
        buttons.as_array().is_some_and(|b| b.is_empty()),
        "the wall's header has controls: {buttons}"
    );
    let name = invoke_from_page(c, "scenario", json!({})).await?;
    ensure!(
        name["ok"]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "the wall cannot read the scenario: {name}"
    );
    refused(
        c,
        "wall",
        "incident_transition",
        json!({ "id": "i1", "to": "resolved" }),
    )
    .await?;
    refused(c, "wall", "confirm_action", json!({ "token": "t" })).await?;
    refused(c, "wall", "replay_seek", json!({ "ms": 0 })).await?;
    refused(
        c,
        "wall",
        "sign_in",
        json!({ "name": "Mallory", "role": "supervisor", "pin": null }),
    )
    .await?;
    wait_js(c, "the wall's map idle", IDLE, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(repo().join("assets/screenshot-wall.png"), c.screenshot().await?)?;
    c.close_window().await?;
    c.switch_to_window(main).await?;
    Ok(())
}

/// Opens the action dialog for the open incident (key s), sends a crew through the demo's
/// Open311 backend (`city-works`) after reading the preview, and waits until the incident's
/// action list shows it delivered; returns the backend's reference. `exercise` is what the
/// preview must say about it.
async fn dispatch_crew(c: &Client, exercise: bool) -> Result<String> {
    press(c, "s").await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=dispatch-dialog]"))
        .await?;
    c.find(Locator::Css("[data-testid=dispatch-backend-city-works]"))
        .await?
        .click()
        .await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=dispatch-preview]"))
        .await?
        .click()
        .await?;
    let body = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=dispatch-body]"))
        .await?
        .text()
        .await?;
    let destination = c
        .find(Locator::Css("[data-testid=dispatch-destination]"))
        .await?
        .text()
        .await?;
    println!("preview: {destination}\n{body}");
    ensure!(
        body.contains("service_code=utility-crew") && body.contains("attribute%5Bcityops_key%5D="),
        "preview body {body:?}"
    );
    ensure!(
        destination.starts_with("POST http://127.0.0.1:") && destination.ends_with("/requests.json"),
        "destination {destination:?}"
    );
    let marked = !c
        .find_all(Locator::Css(
            "[data-testid=dispatch-dialog] [data-testid=dispatch-exercise]",
        ))
        .await?
        .is_empty();
    ensure!(
        marked == exercise,
        "the preview's exercise mark is {marked}, expected {exercise}"
    );
    c.find(Locator::Css("[data-testid=dispatch-confirm]"))
        .await?
        .click()
        .await?;
    wait_js(
        c,
        "the dialog closed",
        r#"return !document.querySelector("[data-testid=dispatch-dialog]");"#,
        Duration::from_secs(10),
    )
    .await?;
    let delivered = wait_js(
        c,
        "the crew's action delivered on the incident",
        r#"const e = document.querySelector("[data-testid=incident-actions] [data-testid^=incident-action-]");
           if (!e || e.querySelector("[data-status]")?.dataset.status !== "delivered") return null;
           return e.querySelector("[data-reference]").dataset.reference;"#,
        Duration::from_secs(60),
    )
    .await?;
    Ok(delivered.as_str().unwrap_or_default().to_owned())
}

/// A peer server of `tests/peers` (`run.sh PORT DIR`) on a loopback port, its output in
/// `DIR.log`, killed when dropped.
struct Peer(Child);

impl Peer {
    /// Starts `tests/peers/<name>/run.sh` on `port` with its data in `dir/<name>` and waits
    /// `up_to` for the port (a first start may install the server into a virtual environment).
    async fn start(name: &str, dir: &Path, port: u16, up_to: Duration) -> Result<Peer> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new("bash")
            .arg(repo().join("tests/peers").join(name).join("run.sh"))
            .arg(port.to_string())
            .arg(dir.join(name))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting tests/peers/{name}/run.sh"))?;
        let server = Peer(child);
        wait_port(port, Instant::now() + up_to).await?;
        Ok(server)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The live test's backends file: the demo's Open311 backend id on `port`, retrying quickly.
fn live_backends(dir: &Path, port: u16) -> Result<PathBuf> {
    let path = dir.join("backends.toml");
    std::fs::write(
        &path,
        format!(
            "[[backends]]\nid = \"city-works\"\nname = \"City works (Open311)\"\nkind = \"open311\"\nurl = \"http://127.0.0.1:{port}\"\n\
             api_key = {{ env = \"CITYOPS_OPEN311_KEY\" }}\nchoices = [\"utility-crew\"]\nretry_base_ms = 200\nmax_backoff_s = 1\npoll_s = 1\n"
        ),
    )?;
    Ok(path)
}

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// Presses and releases one key (a character, or a WebDriver key code) on whatever has focus.
async fn press(c: &Client, key: &str) -> Result<()> {
    let ch = key.chars().next().context("a key")?;
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: ch })
        .then(KeyAction::Up { value: ch });
    c.perform_actions(keys).await?;
    Ok(())
}

async fn wait_for_text(e: &fantoccini::elements::Element, needle: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = e.text().await?;
        if text.contains(needle) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("{needle:?} never appeared; the element shows {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Debian's mosquitto on a loopback port, killed when dropped (a small copy of the engine
/// tests' `common::mosquitto_on`: this crate does not depend on the engine's test helpers).
struct Broker;

impl Broker {
    /// Starts it on `port`, retrying while a broker that was just killed still holds the port.
    async fn start(dir: &Path, port: u16) -> Result<Peer> {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )?;
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("mosquitto is not installed (Debian package mosquitto; .ci/setup installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut child = Command::new(bin)
                .arg("-c")
                .arg(&conf)
                .stderr(std::process::Stdio::null())
                .spawn()?;
            let attempt = Instant::now() + Duration::from_secs(2);
            while Instant::now() < attempt {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Peer(child));
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("mosquitto did not start on port {port}")
    }
}

/// Publishes one message with QoS 1 through Debian's `mosquitto_pub`.
fn publish(port: u16, topic: &str, payload: &str) -> Result<()> {
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
        ])
        .status()
        .context("running mosquitto_pub (Debian package mosquitto-clients)")?;
    ensure!(status.success(), "mosquitto_pub failed: {status}");
    Ok(())
}

/// The live feed configuration of the test: MQTT JSON telemetry of two feeders with known
/// positions and a voltage threshold, from the broker on `port`, correlated with the demo's
/// rules and assets.
fn live_config(dir: &Path, port: u16) -> Result<PathBuf> {
    let sensors = [
        ("feeder-F2", [24.9431, 60.1712], "Feeder F2, Kaisankuja"),
        ("feeder-F3", [24.9455, 60.1722], "Feeder F3"),
    ];
    feeder_config(
        &dir.join("feeds.toml"),
        "Live e2e",
        [24.9429, 60.1714],
        port,
        sensors
            .map(|(id, at, name)| (id.to_owned(), at, name.to_owned()))
            .as_slice(),
    )
}

/// A live configuration at `path`: MQTT JSON telemetry of `sensors` (id, position, name) from
/// the broker on `port`, a voltage threshold, and the demo's rules and assets.
fn feeder_config(
    path: &Path,
    name: &str,
    view: [f64; 2],
    port: u16,
    sensors: &[(String, [f64; 2], String)],
) -> Result<PathBuf> {
    let sensors: String = sensors
        .iter()
        .map(|(id, [lon, lat], name)| {
            format!("[feeds.mapping.sensors.{id}]\nposition = [{lon:.5}, {lat:.5}]\nname = \"{name}\"\n")
        })
        .collect();
    std::fs::write(
        path,
        format!(
            r#"name = "{name}"
view = [{lon}, {lat}, 15.0]
rules = "{rules}"
assets = "{assets}"

[[feeds]]
id = "grid-telemetry"
layer = "utility"
format = "mqtt-json"
name = "Feeder telemetry"
[feeds.transport]
type = "mqtt"
host = "127.0.0.1"
port = {port}
topics = ["grid/#"]
[feeds.mapping]
id = "sensor"
{sensors}[[feeds.mapping.thresholds]]
field = "voltage_kv"
below = 9.5
severity = "moderate"
kind = "feeder.voltage"
"#,
            lon = view[0],
            lat = view[1],
            rules = repo().join("fixtures/rules/default.toml").display(),
            assets = repo()
                .join("fixtures/scenarios/helsinki-storm/assets.geojson")
                .display(),
        ),
    )?;
    Ok(path.to_owned())
}

/// Live mode: the app started with `--config` (here through `CITYOPS_CONFIG`) shows MQTT
/// telemetry on the map, reports the broker going away and coming back in feed health, and
/// lists a malformed message in the quarantine browser, as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_live_mode() -> Result<()> {
    let _turn = ONE_WINDOW.lock().await;
    let tmp = tempfile_dir("live")?;
    let port = free_port();
    let broker = Broker::start(&tmp, port).await?;
    // The Open311 server is not started yet: the first dispatch finds it down.
    let open311 = free_port();
    let env = [
        ("CITYOPS_DB", tmp.join("live.db")),
        ("CITYOPS_CONFIG", live_config(&tmp, port)?),
        ("CITYOPS_MAPS", repo().join("maps")),
        ("CITYOPS_BACKENDS", live_backends(&tmp, open311)?),
        ("CITYOPS_OPEN311_KEY", PathBuf::from("e2e-key")),
    ];
    let run = async {
        let app = App::start(&env).await?;
        let result = live_steps(&app.client, &tmp, port, broker, open311).await;
        app.finish(&tmp, result).await
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .context("the live end-to-end test took over 10 minutes")?
}

/// A script that is true when the feed health panel shows feed `id` in `state` (`connected`,
/// `stale` or `disconnected`).
fn feed_in(id: &str, state: &str) -> String {
    format!(
        r#"const e = document.querySelector("[data-testid=feed-health-{id}]"); return !!e && e.dataset.status === "{state}";"#
    )
}

/// Publishes `payload` until `script` (polled for 3 s after each) answers: the subscription
/// lands just after the connection, so a message sent in between is lost.
async fn publish_until(c: &Client, port: u16, payload: &[&str], what: &str, script: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for p in payload {
            publish(port, "grid/sub1/telemetry", p)?;
        }
        match wait_js(c, what, script, Duration::from_secs(3)).await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => {}
        }
    }
}

async fn live_steps(c: &Client, tmp: &Path, port: u16, broker: Peer, open311: u16) -> Result<()> {
    wait_js(c, "first map idle", IDLE, Duration::from_secs(180)).await?;
    let bar = c
        .find(Locator::Css("[data-testid=replay-bar]"))
        .await?
        .attr("data-mode")
        .await?;
    ensure!(bar.as_deref() == Some("live"), "the replay bar is in mode {bar:?}");
    ensure!(
        c.find_all(Locator::Css("[data-testid=exercise-banner]"))
            .await?
            .is_empty(),
        "live work is marked as an exercise"
    );
    wait_js(
        c,
        "the MQTT feed connected",
        &feed_in("grid-telemetry", "connected"),
        Duration::from_secs(60),
    )
    .await?;

    // 1. Telemetry published to the broker appears on the map.
    let both_drawn = r#"const ids = window.__cityopsMap.queryRenderedFeatures({ layers: ["obs-utility"] }).map(f => f.properties.id ?? f.id);
        return ids.includes("sensor/feeder-F2") && ids.includes("sensor/feeder-F3") ? ids : null;"#;
    let telemetry = [
        r#"{"sensor":"feeder-F2","voltage_kv":8.1}"#,
        r#"{"sensor":"feeder-F3","voltage_kv":10.4}"#,
    ];
    let drawn = publish_until(c, port, &telemetry, "telemetry on the map", both_drawn).await?;
    println!("live observations drawn: {drawn}");
    let count = c
        .find(Locator::Css("[data-testid=layer-count-utility]"))
        .await?
        .text()
        .await?;
    ensure!(count == "2", "the utility layer counts {count:?}");
    // The desk correlates the low voltage once wall time has passed its arrival second.
    let queued = wait_js(
        c,
        "the low voltage as an incident in the queue",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Feeder F2"));
           return e ? e.textContent : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    println!("live incident: {queued}");
    let error = c.find_all(Locator::Css("[data-testid=error]")).await?;
    ensure!(error.is_empty(), "the header shows an error");
    let row = c
        .find(Locator::Css("[data-testid=feed-health-grid-telemetry]"))
        .await?
        .text()
        .await?;
    ensure!(
        row.contains("/min") && row.to_lowercase().contains("connected"),
        "health row {row:?}"
    );

    // 1b. The operator acknowledges the incident and sends a crew through Open311 while the
    //     city works server is down: the action waits in the outbox, which says so plainly;
    //     when the server comes up it is delivered once, with the server's request id.
    c.find(Locator::Css("[data-testid=sign-in]")).await?.click().await?;
    c.find(Locator::Css("[data-testid=sign-in-name]"))
        .await?
        .send_keys("E2E Operator")
        .await?;
    c.find(Locator::Css("[data-testid=sign-in-submit]"))
        .await?
        .click()
        .await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=operator]"))
        .await?;
    let entry = c
        .find(Locator::XPath(
            "//*[@data-testid='incident-entry'][contains(., 'Feeder F2')]",
        ))
        .await?;
    entry.click().await?;
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=incident-detail]"))
        .await?;
    press(c, "a").await?;
    wait_js(c, "the incident acknowledged", r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Feeder F2")); return !!e && e.dataset.status === "acknowledged";"#, Duration::from_secs(10)).await?;
    press(c, "s").await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=dispatch-dialog]"))
        .await?;
    c.find(Locator::Css("[data-testid=dispatch-backend-city-works]"))
        .await?
        .click()
        .await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=dispatch-preview]"))
        .await?
        .click()
        .await?;
    let body = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=dispatch-body]"))
        .await?
        .text()
        .await?;
    ensure!(
        body.contains("service_code=utility-crew") && body.ends_with("api_key=********"),
        "preview body {body:?}"
    );
    ensure!(
        c.find_all(Locator::Css(
            "[data-testid=dispatch-dialog] [data-testid=dispatch-exercise]"
        ))
        .await?
        .is_empty(),
        "live actions are not exercises"
    );
    c.find(Locator::Css("[data-testid=dispatch-confirm]"))
        .await?
        .click()
        .await?;
    let queued = r#"const e = document.querySelector("[data-testid=incident-actions] [data-testid^=incident-action-]");
        return e ? e.querySelector("[data-status]")?.dataset.status : null;"#;
    let status = wait_js(c, "the crew's action on the incident", queued, Duration::from_secs(20)).await?;
    ensure!(
        status == "queued" || status == "sending",
        "with the server down the action is {status}"
    );
    let banner = wait_js(
        c,
        "the offline banner",
        r#"const e = document.querySelector("[data-testid=offline-banner]"); return e ? e.textContent : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    println!("offline: {banner}");
    press(c, "o").await?;
    let row = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=outbox] [data-testid^=outbox-action-]"))
        .await?;
    let waiting = row
        .find(Locator::Css("[data-status]"))
        .await?
        .attr("data-status")
        .await?;
    ensure!(
        matches!(waiting.as_deref(), Some("queued" | "sending")),
        "outbox shows {waiting:?}"
    );
    std::fs::write(tmp.join("outbox-offline.png"), c.screenshot().await?)?;
    let _works = Peer::start("open311", tmp, open311, Duration::from_secs(60)).await?;
    let delivered = wait_js(
        c,
        "the crew's action delivered with the Open311 request id",
        r#"const e = document.querySelector("[data-testid=incident-actions] [data-testid^=incident-action-]");
           if (!e || e.querySelector("[data-status]")?.dataset.status !== "delivered") return null;
           const o = document.querySelector("[data-testid=outbox] [data-testid^=outbox-action-] [data-reference]");
           return [e.querySelector("[data-reference]").dataset.reference, o ? o.dataset.reference : null, e.textContent];"#,
        Duration::from_secs(60),
    )
    .await?;
    println!("delivered: {delivered}");
    ensure!(
        delivered[0] == "SR-000001" && delivered[1] == "SR-000001",
        "references {delivered}"
    );
    ensure!(
        delivered[2].as_str().is_some_and(|t| t.contains("SR-000001")),
        "the incident shows {delivered}"
    );
    wait_js(
        c,
        "the offline banner gone",
        r#"return !document.querySelector("[data-testid=offline-banner]");"#,
        Duration::from_secs(30),
    )
    .await?;
    wait_js(c, "idle for the live screenshot", IDLE, Duration::from_secs(60)).await?;
    std::fs::write(repo().join("assets/screenshot-live.png"), c.screenshot().await?)?;
    press(c, "o").await?;

    // 2. The broker dies: the panel says disconnected. It comes back on the same port: connected.
    drop(broker);
    wait_js(
        c,
        "the feed shown disconnected",
        &feed_in("grid-telemetry", "disconnected"),
        Duration::from_secs(60),
    )
    .await?;
    let state = c
        .find(Locator::Css(
            "[data-testid=feed-health-grid-telemetry] [data-testid=feed-state]",
        ))
        .await?
        .text()
        .await?;
    ensure!(state.eq_ignore_ascii_case("disconnected"), "state shown as {state:?}");
    let _broker = Broker::start(tmp, port).await?;
    wait_js(
        c,
        "the feed shown connected again",
        &feed_in("grid-telemetry", "connected"),
        Duration::from_secs(90),
    )
    .await?;

    // 3. A malformed message is refused; the quarantine browser (key q) lists it with its
    //    reason, and its hostile text stays text.
    let bad = r#"{"sensor":"feeder-F2","voltage_kv": NaN, "note":"<img src=x onerror=alert(1)>"}"#;
    let refused = r#"const e = document.querySelector("[data-testid=feed-health-grid-telemetry] [data-testid=feed-rejected]"); return e ? e.textContent : null;"#;
    let counted = publish_until(c, port, &[bad], "the refusal counted", refused).await?;
    println!("feed health: {counted}");
    press(c, "q").await?;
    let entry = wait_js(
        c,
        "the refused message in the quarantine browser",
        r#"const e = [...document.querySelectorAll("[data-testid=quarantine] [data-testid=quarantine-entry]")].find(e => e.dataset.feed === "grid-telemetry");
           if (!e) return null;
           const t = (id) => e.querySelector(`[data-testid=${id}]`)?.textContent ?? "";
           return [t("quarantine-entry-reason"), t("quarantine-entry-preview"), t("quarantine-entry-place")];"#,
        Duration::from_secs(30),
    )
    .await?;
    println!("quarantined: {entry}");
    ensure!(entry[0].as_str().is_some_and(|r| r.contains("NaN")), "reason {entry}");
    ensure!(entry[1].as_str() == Some(bad), "preview {entry}");
    let injected = c
        .find_all(Locator::Css(
            "[data-testid=quarantine] img, [data-testid=quarantine] script",
        ))
        .await?;
    ensure!(injected.is_empty(), "feed text became HTML elements");
    std::fs::write(tmp.join("quarantine.png"), c.screenshot().await?)?;
    println!("quarantine screenshot: {}", tmp.join("quarantine.png").display());
    press(c, ESCAPE).await?;
    wait_js(
        c,
        "quarantine closed",
        r#"return !document.querySelector("[data-testid=quarantine]");"#,
        Duration::from_secs(10),
    )
    .await?;

    // 4. A flood: telemetry at 50,000 messages a second for 15 s. The window still answers
    //    the keyboard, feed health marks the feed overloaded, memory stays bounded, and once
    //    the flood ends the mark clears.
    flood(c, port).await
}

/// The resident memory of the first process whose name is `comm`, MiB.
fn rss_of(comm: &str) -> Option<f64> {
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|e| {
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        if name.trim_end() != comm {
            return None;
        }
        let status = std::fs::read_to_string(e.path().join("status")).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    })
}

/// Publishes `per_second` messages a second on `topic` (QoS `qos`) through one
/// `mosquitto_pub -l`, each made by `line` from its number, in batches every 10 ms, until
/// `stop` is set. The thread answers how many it sent.
struct Publisher {
    child: Child,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writer: std::thread::JoinHandle<std::io::Result<u64>>,
}

impl Publisher {
    fn start(
        port: u16,
        topic: &str,
        qos: u8,
        per_second: u64,
        mut line: impl FnMut(u64, Duration) -> String + Send + 'static,
    ) -> Result<Publisher> {
        use std::io::Write;
        let mut child = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                &qos.to_string(),
                "-t",
                topic,
                "-l",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .context("running mosquitto_pub (Debian package mosquitto-clients)")?;
        let mut stdin = child.stdin.take().context("mosquitto_pub's stdin")?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let per_batch = (per_second / 100).max(1);
        let writer = std::thread::spawn(move || -> std::io::Result<u64> {
            let started = Instant::now();
            let mut sent = 0u64;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let mut batch = String::new();
                for _ in 0..per_batch {
                    batch.push_str(&line(sent, started.elapsed()));
                    batch.push('\n');
                    sent += 1;
                }
                stdin.write_all(batch.as_bytes())?;
                let due = Duration::from_millis(10 * sent / per_batch);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(sent)
        });
        Ok(Publisher { child, stop, writer })
    }

    /// Stops publishing; how many were sent.
    fn finish(mut self) -> Result<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let sent = self
            .writer
            .join()
            .map_err(|_| anyhow::anyhow!("the publisher's writer panicked"))??;
        let _ = self.child.wait();
        Ok(sent)
    }
}

async fn flood(c: &Client, port: u16) -> Result<()> {
    // The name the kernel keeps is cut at 15 bytes.
    let (app, web) = ("cityops-desktop", "WebKitWebProces");
    let before = (
        rss_of(app).context("the app's process")?,
        rss_of(web).unwrap_or(f64::NAN),
    );
    let publisher = Publisher::start(port, "grid/flood/telemetry", 0, 50_000, |n, _| {
        let (sensor, kv) = if n.is_multiple_of(2) {
            ("feeder-F2", 9.6)
        } else {
            ("feeder-F3", 10.4)
        };
        format!(
            "{{\"sensor\":\"{sensor}\",\"voltage_kv\":{:.3}}}",
            kv + (n % 100) as f64 / 1000.0
        )
    })?;
    let mut peak = before;
    let mut answers = Vec::new();
    let flooding = Instant::now();
    let mut overloaded = None;
    while flooding.elapsed() < Duration::from_secs(15) {
        // The keyboard and the mouse still work: the help opens and closes by key, the outbox
        // by clicks.
        let asked = Instant::now();
        press(c, "?").await?;
        wait_js(
            c,
            "the help during the flood",
            r#"return !!document.querySelector("[data-testid=help]");"#,
            Duration::from_secs(10),
        )
        .await?;
        press(c, ESCAPE).await?;
        wait_js(
            c,
            "the help closed during the flood",
            r#"return !document.querySelector("[data-testid=help]");"#,
            Duration::from_secs(10),
        )
        .await?;
        c.find(Locator::Css("[data-testid=outbox-toggle]"))
            .await?
            .click()
            .await?;
        wait_js(
            c,
            "the outbox opened by a click during the flood",
            r#"return !!document.querySelector("[data-testid=outbox]");"#,
            Duration::from_secs(10),
        )
        .await?;
        c.find(Locator::Css("[data-testid=outbox-toggle]"))
            .await?
            .click()
            .await?;
        wait_js(
            c,
            "the outbox closed by a click during the flood",
            r#"return !document.querySelector("[data-testid=outbox]");"#,
            Duration::from_secs(10),
        )
        .await?;
        answers.push(asked.elapsed().as_millis());
        if overloaded.is_none() {
            let shown = c.execute(r#"const e = document.querySelector("[data-testid=feed-health-grid-telemetry] [data-testid=feed-overloaded]"); return e ? e.textContent : null;"#, vec![]).await?;
            overloaded = shown.as_str().map(str::to_owned);
        }
        peak = (
            peak.0.max(rss_of(app).unwrap_or(0.0)),
            peak.1.max(rss_of(web).unwrap_or(0.0)),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sent = publisher.finish()?;
    std::fs::write(repo().join("target/flood.png"), c.screenshot().await?).ok();
    let overloaded = match overloaded {
        Some(text) => text,
        None => wait_js(c, "the feed marked overloaded", r#"const e = document.querySelector("[data-testid=feed-health-grid-telemetry] [data-testid=feed-overloaded]"); return e ? e.textContent : null;"#, Duration::from_secs(20)).await?.as_str().unwrap_or_default().to_owned(),
    };
    println!(
        "flood: {sent} messages in 15 s; help (keys) and outbox (clicks) opened and closed {} times, slowest round {} ms; {overloaded}; RSS app {:.0} -> {:.0} MiB, web {:.0} -> {:.0} MiB",
        answers.len(),
        answers.iter().max().unwrap_or(&0),
        before.0,
        peak.0,
        before.1,
        peak.1
    );
    ensure!(
        answers.len() >= 3,
        "the window answered the keyboard only {} times in 15 s",
        answers.len()
    );
    ensure!(
        peak.0 - before.0 < 500.0,
        "the app grew by {:.0} MiB during the flood",
        peak.0 - before.0
    );
    wait_js(
        c,
        "the overload mark cleared after the flood",
        r#"return !document.querySelector("[data-testid=feed-overloaded]");"#,
        Duration::from_secs(120),
    )
    .await?;
    Ok(())
}

/// The soak: the app in live mode for `CITYOPS_SOAK_MINUTES` (CI: 3; a release runs 240) under
/// steady telemetry from 40 feeders at 200 messages a second, with voltage dips that open and
/// clear incidents and one malformed message in 200 for the quarantine. Every 10 s it samples
/// the app's and the web process's resident memory and the page's element count, and uses the
/// keyboard. After a warm-up of a third of the run, none may keep growing: the app by less
/// than 64 MiB, the web process by less than 128 MiB, the page by less than 500 elements.
/// WebKitGTK gives scripts no heap figure (no `performance.memory`), so the web process's
/// resident memory, which holds the JS heap, stands in for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_soak() -> Result<()> {
    let minutes: u64 = std::env::var("CITYOPS_SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let _turn = ONE_WINDOW.lock().await;
    let tmp = tempfile_dir("soak")?;
    let port = free_port();
    let _broker = Broker::start(&tmp, port).await?;
    let env = [
        ("CITYOPS_DB", tmp.join("soak.db")),
        ("CITYOPS_CONFIG", soak_config(&tmp, port)?),
        ("CITYOPS_MAPS", repo().join("maps")),
    ];
    let run = async {
        let app = App::start(&env).await?;
        let result = soak_steps(&app.client, port, Duration::from_secs(minutes * 60)).await;
        app.finish(&tmp, result).await
    };
    tokio::time::timeout(Duration::from_secs(minutes * 60 + 600), run)
        .await
        .context("the soak overran")?
}

/// Forty feeders in a row along the demo's streets.
fn soak_config(dir: &Path, port: u16) -> Result<PathBuf> {
    let sensors: Vec<(String, [f64; 2], String)> = (0..40)
        .map(|i| {
            (
                format!("feeder-S{i}"),
                [24.9380 + 0.0003 * i as f64, 60.1700 + 0.0001 * (i % 7) as f64],
                format!("Feeder S{i}"),
            )
        })
        .collect();
    feeder_config(&dir.join("soak.toml"), "Soak", [24.9440, 60.1705], port, &sensors)
}

/// One memory sample: seconds since the start, app RSS, web process RSS (MiB), page elements.
type Sample = (f64, f64, f64, f64);

async fn soak_steps(c: &Client, port: u16, length: Duration) -> Result<()> {
    wait_js(c, "first map idle", IDLE, Duration::from_secs(180)).await?;
    wait_js(
        c,
        "the MQTT feed connected",
        &feed_in("grid-telemetry", "connected"),
        Duration::from_secs(60),
    )
    .await?;
    let publisher = Publisher::start(port, "grid/soak/telemetry", 1, 200, |n, since| {
        let sensor = n % 40;
        // Each feeder dips below the threshold for a few seconds every couple of minutes, so
        // incidents keep opening and clearing.
        let dip = (since.as_secs() + sensor * 3) % 120 < 4;
        if n % 200 == 199 {
            format!("{{\"sensor\":\"feeder-S{sensor}\",\"voltage_kv\": NaN}}")
        } else {
            format!(
                "{{\"sensor\":\"feeder-S{sensor}\",\"voltage_kv\":{:.3}}}",
                if dip { 9.1 } else { 10.4 } + (n % 50) as f64 / 1000.0
            )
        }
    })?;
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    while started.elapsed() < length {
        press(c, "?").await?;
        wait_js(
            c,
            "the help during the soak",
            r#"return !!document.querySelector("[data-testid=help]");"#,
            Duration::from_secs(10),
        )
        .await?;
        press(c, ESCAPE).await?;
        wait_js(
            c,
            "the help closed during the soak",
            r#"return !document.querySelector("[data-testid=help]");"#,
            Duration::from_secs(10),
        )
        .await?;
        let elements = c
            .execute("return document.getElementsByTagName('*').length;", vec![])
            .await?
            .as_f64()
            .unwrap_or(f64::NAN);
        let sample = (
            started.elapsed().as_secs_f64(),
            rss_of("cityops-desktop").unwrap_or(f64::NAN),
            rss_of("WebKitWebProces").unwrap_or(f64::NAN),
            elements,
        );
        println!(
            "soak {:>6.0} s: app {:.0} MiB, web {:.0} MiB, {:.0} elements",
            sample.0, sample.1, sample.2, sample.3
        );
        samples.push(sample);
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let sent = publisher.finish()?;
    let incidents = c.find_all(Locator::Css("[data-testid=incident-entry]")).await?.len();
    let refused = c
        .find(Locator::Css(
            "[data-testid=feed-health-grid-telemetry] [data-testid=feed-rejected]",
        ))
        .await?
        .text()
        .await?;
    std::fs::write(repo().join("target/soak.png"), c.screenshot().await?).ok();

    ensure!(samples.len() >= 6, "only {} samples", samples.len());
    let warm = samples.len() / 3;
    let after: &[Sample] = &samples[warm..];
    let tail = &samples[samples.len() - 3..];
    let mean = |f: fn(&Sample) -> f64, s: &[Sample]| s.iter().map(f).sum::<f64>() / s.len() as f64;
    // Growth per hour from a least-squares line through the samples after the warm-up.
    let slope = |f: fn(&Sample) -> f64| {
        let (mt, mv) = (mean(|s| s.0, after), mean(f, after));
        let num: f64 = after.iter().map(|s| (s.0 - mt) * (f(s) - mv)).sum();
        let den: f64 = after.iter().map(|s| (s.0 - mt).powi(2)).sum();
        num / den * 3600.0
    };
    let growth = |f: fn(&Sample) -> f64| mean(f, tail) - f(&after[0]);
    let (app, web, dom) = (growth(|s| s.1), growth(|s| s.2), growth(|s| s.3));
    println!(
        "soak: {sent} messages over {:.0} s, {incidents} open incidents listed, feed {refused}; after the warm-up app {app:+.1} MiB ({:+.0} MiB/h), web {web:+.1} MiB ({:+.0} MiB/h), page {dom:+.0} elements",
        started.elapsed().as_secs_f64(),
        slope(|s| s.1),
        slope(|s| s.2)
    );
    ensure!(
        refused.contains("refused"),
        "the malformed messages were counted: {refused:?}"
    );
    ensure!(app < 64.0, "the app grew by {app:.1} MiB after the warm-up");
    ensure!(web < 128.0, "the web process grew by {web:.1} MiB after the warm-up");
    ensure!(dom < 500.0, "the page grew by {dom:.0} elements after the warm-up");
    Ok(())
}

/// SIGKILLs the cityops-desktop process whose environment holds `var` (`NAME=value`), as a
/// workstation that vanishes; fails when there is none.
fn kill_app_with(var: &str) -> Result<()> {
    let wanted = format!("{var}\0");
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let dir = entry.path();
        let is_app = std::fs::read_link(dir.join("exe"))
            .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "cityops-desktop"));
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        if is_app && environ.windows(wanted.len()).any(|w| w == wanted.as_bytes()) {
            let pid = entry.file_name().to_string_lossy().into_owned();
            ensure!(
                Command::new("kill").args(["-KILL", &pid]).status()?.success(),
                "kill {pid}"
            );
            return Ok(());
        }
    }
    bail!("no cityops-desktop with {var}")
}

/// The PIN the site's supervisor Sari gets from `cityops roster add`.
const SITE_SUPERVISOR_PIN: &str = "2468";

/// `cityops ARGS` as the administrator of site `hel`.
fn site_admin(url: &str, args: &[&str]) -> Result<String> {
    site_admin_at(url, "hel", args)
}

/// `cityops ARGS` as the administrator of `site`.
fn site_admin_at(url: &str, site: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(target_dir().join("debug/cityops"))
        .args(args)
        .args(["--nats", url, "--site", site])
        .env("CITYOPS_NATS_USER", "admin")
        .env("CITYOPS_NATS_PASSWORD", "admin-test-pass")
        .env("SITE_SUPERVISOR_PIN", SITE_SUPERVISOR_PIN)
        .output()?;
    ensure!(
        out.status.success(),
        "cityops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A control room on one machine: a site fed with the demo tape, and two app windows, each a
/// workstation of the site with its own cache and its own NATS user. Aino acknowledges the
/// outage in window A; window B shows it acknowledged by Aino, and Bo, acknowledging it a
/// moment later in B, is told who was first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_site() -> Result<()> {
    let _turn = ONE_WINDOW.lock().await;
    let tmp = tempfile_dir("site")?;
    let port = free_port();
    // nats-server 2.15.1 with the users and permissions of `fixtures/nats/accounts.conf`.
    let _nats = Peer::start("nats", &tmp, port, Duration::from_secs(300)).await?;
    let url = format!("nats://127.0.0.1:{port}");
    site_admin(&url, &["site", "init"])?;
    for name in ["Aino", "Bo"] {
        site_admin(&url, &["roster", "add", name, "--role", "operator"])?;
    }
    site_admin(
        &url,
        &[
            "roster",
            "add",
            "Sari",
            "--role",
            "supervisor",
            "--pin-env",
            "SITE_SUPERVISOR_PIN",
        ],
    )?;
    let demo = repo().join("fixtures/scenarios/helsinki-storm");
    site_admin(&url, &["publish", "--scenario", demo.to_str().unwrap()])?;
    // The city works' Open311 server, and the site's dispatch worker that sends to it: the
    // windows send nothing themselves.
    let open311 = free_port();
    let _open311 = Peer::start("open311", &tmp, open311, Duration::from_secs(60)).await?;
    let backends = live_backends(&tmp, open311)?;
    let _worker = dispatch_worker(&url, "hel", &backends, &tmp.join("worker-1.log"))?;
    let env = |ws: &str| {
        [
            ("CITYOPS_BACKENDS", backends.clone()),
            ("CITYOPS_NATS", PathBuf::from(&url)),
            ("CITYOPS_SITE", PathBuf::from("hel")),
            ("CITYOPS_WORKSTATION", PathBuf::from(ws)),
            ("CITYOPS_DB", tmp.join(format!("{ws}.db"))),
            ("CITYOPS_MAPS", repo().join("maps")),
            ("CITYOPS_NATS_USER", PathBuf::from(ws)),
            ("CITYOPS_NATS_PASSWORD", PathBuf::from("ws-test-pass")),
        ]
    };
    // The wall display: a read-only member of the site, as the NATS user that may not publish.
    let wall_env = [
        ("CITYOPS_NATS", PathBuf::from(&url)),
        ("CITYOPS_SITE", PathBuf::from("hel")),
        ("CITYOPS_WORKSTATION", PathBuf::from("wall")),
        ("CITYOPS_WALL", PathBuf::from("true")),
        ("CITYOPS_DB", tmp.join("wall.db")),
        ("CITYOPS_MAPS", repo().join("maps")),
        ("CITYOPS_NATS_USER", PathBuf::from("wall")),
        ("CITYOPS_NATS_PASSWORD", PathBuf::from("wall-test-pass")),
    ];
    let run = async {
        let a = App::start(&env("ws-a")).await?;
        let b = match App::start(&env("ws-b")).await {
            Ok(b) => b,
            Err(e) => return a.finish(&tmp, Err(e)).await,
        };
        let w = match App::start(&wall_env).await {
            Ok(w) => w,
            Err(e) => {
                let _ = b.finish(&tmp, Err(anyhow::anyhow!("see the wall"))).await;
                return a.finish(&tmp, Err(e)).await;
            }
        };
        let result = site_steps(&a.client, &b.client, &w.client).await;
        // Workstation A vanishes (SIGKILL: a closed WebDriver session does not always end the
        // app at once): its presence drops out of window B within the presence TTL.
        let result = match result {
            Ok(()) => {
                kill_app_with(&format!("CITYOPS_DB={}", tmp.join("ws-a.db").display()))?;
                let gone = Instant::now();
                wait_js(
                    &b.client,
                    "window A's presence gone from window B",
                    r#"return !document.querySelector("[data-testid=incident-looking]");"#,
                    Duration::from_secs(40),
                )
                .await
                .map(|_| {
                    println!(
                        "window A's presence left window B {} ms after A was killed",
                        gone.elapsed().as_millis()
                    )
                })
            }
            failed => failed,
        };
        let result = a.finish(&tmp, result).await;
        let failed = result.is_err();
        let others = |what: &str| {
            if failed {
                Err(anyhow::anyhow!("see window A ({what})"))
            } else {
                Ok(())
            }
        };
        let b_result = b.finish(&tmp, others("window B")).await;
        let w_result = w.finish(&tmp, others("the wall")).await;
        result.and(b_result).and(w_result)
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .context("the site end-to-end test took over 10 minutes")?
}

/// The site's dispatch worker for `site`, over the backends of `backends`.
fn dispatch_worker(url: &str, site: &str, backends: &Path, log: &Path) -> Result<Worker> {
    Ok(Worker(
        Command::new(target_dir().join("debug/cityops"))
            .args([
                "dispatch-worker",
                "--nats",
                url,
                "--site",
                site,
                "--name",
                "worker-1",
                "--backends",
            ])
            .arg(backends)
            .env("CITYOPS_NATS_USER", "dispatch")
            .env("CITYOPS_NATS_PASSWORD", "dispatch-test-pass")
            .env("CITYOPS_OPEN311_KEY", "k-test")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("starting the dispatch worker")?,
    ))
}

/// Training across machines: the trainer's window (`cityops-desktop --train`, its own process
/// and NATS user) holds the clock of an exercise site, and a trainee's window (another process,
/// another user) follows it. The trainer signs in with a PIN, the clock refuses anyone before;
/// the trainer seeks to the trip and the trainee's clock is there, plays fast and the clock
/// runs, pauses and it stops; the trainer's inject reaches the trainee's map; the trainee's crew
/// request is marked as an exercise and recorded by the site's dispatch worker, never sent; the
/// trainer ends the exercise and the trainee's window says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_training_site() -> Result<()> {
    let _turn = ONE_WINDOW.lock().await;
    let tmp = tempfile_dir("training")?;
    let port = free_port();
    let _nats = Peer::start("nats", &tmp, port, Duration::from_secs(300)).await?;
    let url = format!("nats://127.0.0.1:{port}");
    let site = "hel-ex1";
    site_admin_at(&url, site, &["site", "init", "--exercise"])?;
    site_admin_at(
        &url,
        site,
        &[
            "roster",
            "add",
            "Tia",
            "--role",
            "trainer",
            "--pin-env",
            "SITE_SUPERVISOR_PIN",
        ],
    )?;
    site_admin_at(&url, site, &["roster", "add", "Aino", "--role", "operator"])?;
    site_admin_at(&url, site, &["roster", "add", "Bo", "--role", "operator"])?;
    // Nobody listens on the backend's port: an exercise never gets that far anyway.
    let backends = live_backends(&tmp, free_port())?;
    let _worker = dispatch_worker(&url, site, &backends, &tmp.join("worker-1.log"))?;
    let at = |ws: &str, user: &str| {
        vec![
            ("CITYOPS_BACKENDS", backends.clone()),
            ("CITYOPS_NATS", PathBuf::from(&url)),
            ("CITYOPS_SITE", PathBuf::from(site)),
            ("CITYOPS_WORKSTATION", PathBuf::from(ws)),
            ("CITYOPS_DB", tmp.join(format!("{ws}.db"))),
            ("CITYOPS_MAPS", repo().join("maps")),
            ("CITYOPS_NATS_USER", PathBuf::from(user)),
            ("CITYOPS_NATS_PASSWORD", PathBuf::from("ws-test-pass")),
        ]
    };
    let mut trainer_env = at("trainer", "ws-c");
    trainer_env.push(("CITYOPS_TRAIN", repo().join("fixtures/scenarios/helsinki-storm")));
    let run = async {
        // The trainer's window comes first: it brings the exercise's configuration.
        let t = App::start(&trainer_env).await?;
        let a = match App::start(&at("ws-a", "ws-a")).await {
            Ok(a) => a,
            Err(e) => return t.finish(&tmp, Err(e)).await,
        };
        let result = training_steps(&t.client, &a.client).await;
        let result = a.finish(&tmp, result).await;
        t.finish(&tmp, result).await
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .context("the training end-to-end test took over 10 minutes")??;
    Ok(())
}

/// The window's clock.
const CLOCK: &str = r#"const e = document.querySelector("[data-testid=clock]"); return e ? e.textContent : null;"#;

/// The outage's number, as its queue entry shows it.
const OUTAGE_NUMBER: &str = r#"
    const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
    const n = e && e.querySelector("[data-testid=incident-number]");
    return n ? n.textContent : null;
"#;

/// The header's error, once shown.
const ERROR: &str = r#"const e = document.querySelector("[data-testid=error]"); return e ? e.textContent : null;"#;

/// The trainer's window (`t`) drives the trainee's (`a`).
async fn training_steps(t: &Client, a: &Client) -> Result<()> {
    // The trainer's machine shows only the trainer view; the operator's window stays hidden.
    let main = t.window().await?;
    let view = second_window(t, &main, "the trainer's").await?;
    t.switch_to_window(view).await?;
    t.wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("[data-testid=trainer-sign-in]"))
        .await?;
    wait_js(t, "the trainer's map idle", IDLE, Duration::from_secs(180)).await?;
    wait_js(a, "the trainee's map idle", IDLE, Duration::from_secs(180)).await?;
    // The bar says it is an exercise on the trainer's clock, not live.
    let mark = wait_js(
        a,
        "the exercise mark",
        r#"const e = document.querySelector("[data-testid=live-mark]"); return e && e.dataset.exercise === "true" ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(mark == "Exercise", "the bar's mark {mark}");

    // Nobody signed in: the clock is nobody's to move.
    t.find(Locator::Css("[data-testid=play-toggle]")).await?.click().await?;
    let said = wait_js(
        t,
        "the refusal of play before a sign-in",
        ERROR,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(
        said.as_str()
            .is_some_and(|s| s.contains("sign in as the exercise's trainer")),
        "{said}"
    );
    t.find(Locator::Css("[data-testid=error]")).await?.click().await?;
    t.find(Locator::Css("[data-testid=trainer-sign-in-name]"))
        .await?
        .send_keys("Tia")
        .await?;
    t.find(Locator::Css("[data-testid=trainer-sign-in-pin]"))
        .await?
        .send_keys(SITE_SUPERVISOR_PIN)
        .await?;
    t.find(Locator::Css("[data-testid=trainer-sign-in-submit]"))
        .await?
        .click()
        .await?;
    let who = wait_js(
        t,
        "the trainer signed in",
        r#"const e = document.querySelector("[data-testid=trainer-signed-in]"); return e ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(who == "Tia", "signed in as {who}");

    // The trainer seeks to 21:12:30 Helsinki time, 23 s after the substation tripped.
    let start = wait_js(
        t,
        "the seek slider",
        r#"const e = document.querySelector("[data-testid=seek]"); return e ? Number(e.min) : null;"#,
        Duration::from_secs(10),
    )
    .await?
    .as_i64()
    .context("the slider's start")?;
    choose(t, "seek", &(start + 750_000).to_string()).await?;
    wait_js(
        a,
        "the trainee's clock at the trainer's 21:12:30",
        r#"const e = document.querySelector("[data-testid=clock]"); return e && e.textContent === "21:12:30";"#,
        Duration::from_secs(30),
    )
    .await?;
    let outage = wait_js(
        a,
        "the outage in the trainee's queue",
        OUTAGE_ENTRY,
        Duration::from_secs(30),
    )
    .await?;
    ensure!(outage["status"] == "new", "{outage}");
    // The outage has one number in every window of the site, and the queue finds it by it.
    let number = wait_js(a, "the outage's number", OUTAGE_NUMBER, Duration::from_secs(10)).await?;
    let number = number.as_str().unwrap_or_default().to_owned();
    ensure!(
        number.len() == 15 && number.starts_with("HEL-2026-"),
        "the outage's number {number:?}"
    );
    let theirs = wait_js(
        t,
        "the outage's number in the trainer's queue",
        OUTAGE_NUMBER,
        Duration::from_secs(30),
    )
    .await?;
    ensure!(
        theirs == number.as_str(),
        "the trainer sees {theirs}, the trainee {number}"
    );
    a.find(Locator::Css("[data-testid=queue-search]"))
        .await?
        .send_keys(&number[9..])
        .await?;
    let found = wait_js(
        a,
        "the queue narrowed to the number",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")]; return e.length === 1 ? e[0].textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(found.as_str().is_some_and(|t| t.contains("Power outage")), "{found}");
    a.find(Locator::Css("[data-testid=queue-search]"))
        .await?
        .clear()
        .await?;
    wait_js(
        a,
        "the whole queue again",
        r#"return document.querySelectorAll("[data-testid=incident-entry]").length > 1 || null;"#,
        Duration::from_secs(10),
    )
    .await?;
    // Back is refused: the site's stream is the record of what the trainees did.
    choose(t, "seek", &(start + 60_000).to_string()).await?;
    let said = wait_js(t, "the refusal of a seek back", ERROR, Duration::from_secs(10)).await?;
    ensure!(said.as_str().is_some_and(|s| s.contains("cannot go back")), "{said}");
    t.find(Locator::Css("[data-testid=error]")).await?.click().await?;

    // Played at 60 times real time, the trainee's clock runs; paused, it stops.
    choose(t, "speed", "60").await?;
    t.find(Locator::Css("[data-testid=play-toggle]")).await?.click().await?;
    wait_js(
        a,
        "the trainee's clock running with the trainer's",
        r#"const e = document.querySelector("[data-testid=clock]"); return e && e.textContent >= "21:14:00" ? e.textContent : null;"#,
        Duration::from_secs(30),
    )
    .await?;
    t.find(Locator::Css("[data-testid=play-toggle]")).await?.click().await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = wait_js(a, "the trainee's clock", CLOCK, Duration::from_secs(5)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = wait_js(a, "the trainee's clock", CLOCK, Duration::from_secs(5)).await?;
    ensure!(
        first == second,
        "the clock ran on while the trainer paused: {first} then {second}"
    );
    let shown = wait_js(t, "the trainer's clock", CLOCK, Duration::from_secs(5)).await?;
    ensure!(
        shown == first,
        "the trainer's window shows {shown}, the trainee's {first}"
    );
    println!("the trainee's clock stopped with the trainer's at {first}");
    // Past 21:10, the storm warning's pre-alert (due ten minutes after it opened) is overdue
    // on the trainee's checklist, and both its steps are required.
    a.find(Locator::XPath(
        "//*[@data-testid='incident-entry'][contains(., 'Weather warning')]",
    ))
    .await?
    .click()
    .await?;
    let overdue = wait_js(
        a,
        "the overdue pre-alert",
        r#"const e = document.querySelector("[data-testid=sop-overdue]"); return e ? e.textContent : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    ensure!(overdue == "overdue since 21:10:00", "{overdue}");
    let required = wait_js(
        a,
        "the required steps",
        r#"return document.querySelectorAll("[data-testid=incident-sop] li[data-required=true]").length;"#,
        Duration::from_secs(5),
    )
    .await?;
    ensure!(required == 2, "{required} required steps");
    let shot = std::env::temp_dir().join(format!("cityops-e2e-{}-sop.png", std::process::id()));
    std::fs::write(&shot, a.screenshot().await?)?;
    println!("the warning's checklist: {}", shot.display());

    // The trainer places a citizen's report in Kaisaniemi park; it reaches the trainee's map.
    place_citizen_report(t, "by Tia").await?;
    let entity = wait_js(
        a,
        "the inject on the trainee's map",
        r#"const f = window.__cityopsMap.querySourceFeatures("obs-alerts").find(f => String((f.properties && f.properties.id) || f.id).startsWith("inject/"));
           return f ? String((f.properties && f.properties.id) || f.id) : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    println!("the trainee's map shows the trainer's inject {entity}");

    // Aino requests a crew: the preview says exercise, and the site's worker records it.
    sign_in(a, "Aino", None).await?;
    a.find(Locator::XPath(
        "//*[@data-testid='incident-entry'][contains(., 'Power outage')]",
    ))
    .await?
    .click()
    .await?;
    a.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=incident-detail]"))
        .await?;
    let reference = dispatch_crew(a, true).await?;
    ensure!(reference == "exercise: recorded, not sent", "reference {reference:?}");
    wait_js(a, "the trainee's map idle", IDLE, Duration::from_secs(60)).await?;
    let shot = std::env::temp_dir().join(format!("cityops-e2e-{}-trainee.png", std::process::id()));
    std::fs::write(&shot, a.screenshot().await?)?;
    println!("the trainee's window: {}", shot.display());
    wait_js(
        t,
        "the trainer's map idle for the screenshot",
        IDLE,
        Duration::from_secs(60),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(repo().join("assets/screenshot-trainer-site.png"), t.screenshot().await?)?;

    // The trainer ends the exercise: the report opens there, and the trainee's record closes.
    t.find(Locator::Css("[data-testid=trainer-end]")).await?.click().await?;
    t.find(Locator::Css("[data-testid=confirm-ok]")).await?.click().await?;
    // The trainer's report scores the trainees side by side: Aino sent the crew, Bo nothing.
    let report = wait_js(
        t,
        "the trainer's report",
        r#"const f = document.querySelector("[data-testid=report-frame]"); return f && f.getAttribute("srcdoc");"#,
        Duration::from_secs(30),
    )
    .await?;
    let report = report.as_str().unwrap_or_default();
    let points = |who: &str| {
        report
            .split(&format!("data-column=\"{who}\" data-points=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (aino, bo) = (points("Aino"), points("Bo"));
    println!("the trainer's report: Aino {aino:?} points, Bo {bo:?}");
    ensure!(
        matches!((aino, bo), (Some(a), Some(b)) if a > b),
        "the report does not score the trainees side by side by what each did: Aino {aino:?}, Bo {bo:?}"
    );
    wait_js(
        a,
        "the exercise ended in the trainee's window",
        r#"const e = document.querySelector("[data-testid=exercise-banner]"); return e && e.dataset.ended === "true" ? e.textContent : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    Ok(())
}

/// A process killed when dropped (the site's dispatch worker).
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The outage's queue entry: its status and text, once the queue shows it.
const OUTAGE_ENTRY: &str = r#"
    const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
    return e ? { status: e.dataset.status, text: e.textContent } : null;
"#;

/// Signs `name` in, as a plain operator or in `role` with its PIN.
async fn sign_in(c: &Client, name: &str, role: Option<(&str, &str)>) -> Result<()> {
    c.find(Locator::Css("[data-testid=sign-in]")).await?.click().await?;
    c.find(Locator::Css("[data-testid=sign-in-name]"))
        .await?
        .send_keys(name)
        .await?;
    if let Some((role, pin)) = role {
        choose(c, "sign-in-role", role).await?;
        c.find(Locator::Css("[data-testid=sign-in-pin]"))
            .await?
            .send_keys(pin)
            .await?;
    }
    c.find(Locator::Css("[data-testid=sign-in-submit]"))
        .await?
        .click()
        .await?;
    let who = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=operator]"))
        .await?
        .text()
        .await?;
    ensure!(who.contains(name), "signed in as {who:?}");
    Ok(())
}

/// Signs the operator out, until the window offers the sign-in again.
async fn sign_out(c: &Client) -> Result<()> {
    c.find(Locator::Css("[data-testid=sign-out]")).await?.click().await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=sign-in]"))
        .await?;
    Ok(())
}

/// Gives `name` a role in the open roster dialog (a supervisor's), with a PIN if given.
async fn name_in_roster(c: &Client, name: &str, role: &str, pin: Option<&str>) -> Result<()> {
    c.find(Locator::Css("[data-testid=roster-name]"))
        .await?
        .send_keys(name)
        .await?;
    choose(c, "roster-role", role).await?;
    if let Some(pin) = pin {
        c.find(Locator::Css("[data-testid=roster-pin]"))
            .await?
            .send_keys(pin)
            .await?;
    }
    c.find(Locator::Css("[data-testid=roster-save]")).await?.click().await?;
    Ok(())
}

async fn site_steps(a: &Client, b: &Client, w: &Client) -> Result<()> {
    // The wall display opens as its own fullscreen window, read only, the operator's hidden.
    let hidden = w.window().await?;
    let wall = second_window(w, &hidden, "the site's wall display").await?;
    w.switch_to_window(wall).await?;
    let banner = w
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("[data-testid=wall-banner]"))
        .await?
        .text()
        .await?;
    ensure!(banner.contains("READ ONLY"), "wall banner {banner:?}");

    // Both windows show the site's picture: the map, the link, the outage not yet acknowledged.
    for (c, w) in [(a, "A"), (b, "B")] {
        wait_js(c, &format!("window {w}'s map idle"), IDLE, Duration::from_secs(180)).await?;
        let header = wait_js(
            c,
            &format!("window {w} connected to the site"),
            r#"const e = document.querySelector("[data-testid=site-status]"); return e && e.dataset.connected === "true" ? e.textContent : null;"#,
            Duration::from_secs(30),
        )
        .await?;
        println!("window {w} header: {header}");
        let outage = wait_js(
            c,
            &format!("the outage in window {w}'s queue"),
            OUTAGE_ENTRY,
            Duration::from_secs(60),
        )
        .await?;
        ensure!(outage["status"] == "new", "window {w}: {outage}");
    }

    // Aino acknowledges the outage in window A, with the keyboard.
    sign_in(a, "Aino", None).await?;
    a.find(Locator::XPath(
        "//*[@data-testid='incident-entry'][contains(., 'Power outage')]",
    ))
    .await?
    .click()
    .await?;
    a.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=incident-detail]"))
        .await?;
    let acked_at = Instant::now();
    press(a, "a").await?;
    wait_js(
        a,
        "the outage acknowledged in window A",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           return !!e && e.dataset.status === "acknowledged";"#,
        Duration::from_secs(10),
    )
    .await?;
    let in_b = wait_js(
        b,
        "the outage acknowledged by Aino in window B",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           return e && e.dataset.status === "acknowledged" && e.textContent.includes("acknowledged by Aino") ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!(
        "window B shows the acknowledgement {} ms after the key press in A: {in_b}",
        acked_at.elapsed().as_millis()
    );

    // Bo, in window B, acknowledges it too: the site refuses, and says who was first.
    sign_in(b, "Bo", None).await?;
    b.find(Locator::XPath(
        "//*[@data-testid='incident-entry'][contains(., 'Power outage')]",
    ))
    .await?
    .click()
    .await?;
    b.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=incident-detail]"))
        .await?;
    press(b, "a").await?;
    let told = wait_js(
        b,
        "Bo told who acknowledged first",
        r#"const e = document.querySelector("[data-testid=error]"); return e && e.textContent.includes("already acknowledged by Aino at") ? e.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!("Bo is told: {told}");

    // Aino claims the outage in window A (key c): window B shows her on it.
    press(a, "c").await?;
    let on_it = wait_js(
        b,
        "Aino on the outage in window B",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           const o = e && e.querySelector("[data-testid=incident-owner]");
           return o && o.textContent.includes("Aino is on this") ? o.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    println!("window B shows: {on_it}");
    // Aino has the outage open in window A: window B's queue says so (the site's presence).
    let open_at_a = wait_js(
        b,
        "Aino's open incident in window B",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           const o = e && e.querySelector("[data-testid=incident-looking]");
           return o && o.textContent.includes("Aino has it open") ? o.textContent : null;"#,
        Duration::from_secs(15),
    )
    .await?;
    println!("window B shows: {open_at_a}");
    // Bo has the outage open in window B too: its detail says who else has it open.
    let in_detail = wait_js(
        b,
        "Aino's open incident in window B's detail",
        r#"const e = document.querySelector("[data-testid=incident-detail-looking]");
           return e && e.textContent.includes("Aino has it open") ? e.textContent : null;"#,
        Duration::from_secs(15),
    )
    .await?;
    println!("window B's detail shows: {in_detail}");
    // Aino writes down a caller's words in window A; the note is in the outage's log in B,
    // with her name, and stays text.
    a.find(Locator::Css("[data-testid=note-text]"))
        .await?
        .send_keys("Caller at Kaisaniemenkatu 3: <b>no power</b>, lift stuck")
        .await?;
    a.find(Locator::Css("[data-testid=note-add]")).await?.click().await?;
    let note = wait_js(
        b,
        "Aino's note in window B's log",
        r#"const e = document.querySelector("[data-testid=incident-timeline] li[data-kind=note]");
           return e && !e.querySelector("b") ? e.textContent : null;"#,
        Duration::from_secs(15),
    )
    .await?;
    let note = note.as_str().unwrap_or_default();
    ensure!(
        note.contains("Aino") && note.contains("<b>no power</b>, lift stuck"),
        "the note in window B: {note}"
    );
    let emptied = wait_js(
        a,
        "window A's note form emptied",
        r#"const e = document.querySelector("[data-testid=note-text]"); return e && e.value === "";"#,
        Duration::from_secs(10),
    )
    .await?;
    ensure!(emptied == true, "{emptied}");
    let on_wall = wait_js(
        w,
        "the claimed outage on the wall",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           return e && e.dataset.status === "acknowledged" && e.textContent.includes("Aino is on this") ? e.textContent : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    println!("the wall shows: {on_wall}");
    let looking_on_wall = wait_js(
        w,
        "who has the outage open, on the wall",
        r#"const e = [...document.querySelectorAll("[data-testid=incident-entry]")].find(e => e.textContent.includes("Power outage"));
           const o = e && e.querySelector("[data-testid=incident-looking]");
           return o && o.textContent.includes("Aino") && o.textContent.includes("Bo") ? o.textContent : null;"#,
        Duration::from_secs(20),
    )
    .await?;
    println!("the wall shows: {looking_on_wall}");
    wait_js(w, "the wall's map idle", IDLE, Duration::from_secs(60)).await?;
    std::fs::write(repo().join("assets/screenshot-site-wall.png"), w.screenshot().await?)?;

    for (c, w, file) in [(a, "A", "screenshot-site-a.png"), (b, "B", "screenshot-site-b.png")] {
        wait_js(
            c,
            &format!("window {w} idle for the screenshot"),
            IDLE,
            Duration::from_secs(60),
        )
        .await?;
        let out = repo().join("assets").join(file);
        std::fs::write(&out, c.screenshot().await?)?;
        println!("screenshot saved: {}", out.display());
    }

    // Aino requests a crew for the outage in window A: the site's dispatch worker sends it,
    // and window B shows it delivered with the city works' reference.
    let reference = dispatch_crew(a, false).await?;
    let in_b = wait_js(
        b,
        "the crew's request delivered in window B",
        r#"const e = document.querySelector("[data-testid=incident-actions] [data-testid^=incident-action-]");
           if (!e || e.querySelector("[data-status]")?.dataset.status !== "delivered") return null;
           return e.querySelector("[data-reference]").dataset.reference;"#,
        Duration::from_secs(30),
    )
    .await?;
    ensure!(
        in_b == reference.as_str(),
        "window B shows {in_b}, window A {reference}"
    );
    println!("the crew's request, sent by the site's worker: {reference} in both windows");
    let shot = std::env::temp_dir().join(format!("cityops-e2e-{}-site-b-dispatched.png", std::process::id()));
    std::fs::write(&shot, b.screenshot().await?)?;
    println!("window B after the dispatch: {}", shot.display());

    // The roster is the site's: Sari, a supervisor, names Cai an operator in window A, and
    // Cai signs in at window B.
    sign_out(a).await?;
    sign_in(a, "Sari", Some(("supervisor", SITE_SUPERVISOR_PIN))).await?;
    a.find(Locator::Css("[data-testid=roster-open]")).await?.click().await?;
    wait_js(
        a,
        "window A's roster listing the site's operators",
        r#"const l = document.querySelector("[data-testid=roster-list]");
           return l && ["Aino", "Bo", "Sari"].every(n => l.textContent.includes(n)) ? l.textContent : null;"#,
        Duration::from_secs(10),
    )
    .await?;
    name_in_roster(a, "Cai", "operator", None).await?;
    wait_js(
        a,
        "Cai on the site's roster in window A",
        r#"const l = document.querySelector("[data-testid=roster-list]"); return !!l && l.textContent.includes("Cai");"#,
        Duration::from_secs(10),
    )
    .await?;
    press(a, ESCAPE).await?;
    sign_out(b).await?;
    sign_in(b, "Cai", None).await?;
    println!("Cai, named in window A, signed in at window B");
    Ok(())
}
