//! Desktop end-to-end test: the real cityops app in a real WebKitGTK window (under Xvfb),
//! driven through tauri-driver and WebKitWebDriver.
//!
//! Run by the README's test command after `cargo build -p cityops-desktop`, inside
//! `xvfb-run`. It needs `tauri-driver` (cargo install) and `WebKitWebDriver`
//! (Debian webkit2gtk-driver). The window is 1600x1000, as a workstation would show it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::actions::{InputSource, KeyAction, KeyActions, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn tauri_driver() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    let installed = home.join("bin/tauri-driver");
    if installed.exists() { installed } else { PathBuf::from("tauri-driver") }
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
        let v = c.execute(script, vec![]).await.with_context(|| format!("while waiting for {what}"))?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_end_to_end() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(600), run()).await.context("the end-to-end test took over 10 minutes")?
}

async fn run() -> Result<()> {
    let app = target_dir().join("debug/cityops-desktop");
    ensure!(app.exists(), "{} is missing: run `cargo build -p cityops-desktop` first", app.display());
    let tmp = tempfile_dir()?;
    let (port, native_port) = (free_port(), free_port());
    let driver = Driver(
        Command::new(tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .env("CITYOPS_DB", tmp.join("e2e.db"))
            .env("CITYOPS_SCENARIO", repo().join("fixtures/scenarios/helsinki-storm"))
            .env("CITYOPS_MAPS", repo().join("maps"))
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
    let result = scenario(&client, started).await;
    if result.is_err() {
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(tmp.join("failure.png"), png);
            eprintln!("failure screenshot: {}", tmp.join("failure.png").display());
        }
    }
    let _ = client.close().await;
    drop(driver);
    result
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cityops-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn click_at(c: &Client, x: f64, y: f64) -> Result<()> {
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo { duration: None, x, y })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    c.perform_actions(mouse).await?;
    Ok(())
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
    let home = c.execute("const m = window.__cityopsMap; return [m.getCenter().lng, m.getCenter().lat, m.getZoom()];", vec![]).await?;
    let attribution = c.find(Locator::Css(".maplibregl-ctrl-attrib")).await?.text().await?;
    ensure!(attribution.contains("OpenStreetMap contributors"), "attribution shows {attribution:?}");

    // 2. Replay at max speed puts observations of all three layers on the map.
    c.find(Locator::Css("[data-testid=speed]")).await?.select_by_value("max").await?;
    c.find(Locator::Css("[data-testid=play-toggle]")).await?.click().await?;
    let counts = wait_js(
        c,
        "observations on the transport, security and utility layers",
        &COUNT_RENDERED.replace("return out;", "return (out.transport > 0 && out.security > 0 && out.utility > 0) ? out : null;"),
        Duration::from_secs(120),
    )
    .await?;
    println!("rendered observations per layer: {counts}");

    // 3. Toggling a layer removes its features and leaves the others.
    c.find(Locator::Css("[data-testid=layer-toggle-security]")).await?.click().await?;
    let after = wait_js(
        c,
        "security layer hidden",
        &COUNT_RENDERED.replace("return out;", "return (out.security === 0 && out.transport > 0) ? out : null;"),
        Duration::from_secs(30),
    )
    .await?;
    println!("after hiding security: {after}");
    c.find(Locator::Css("[data-testid=layer-toggle-security]")).await?.click().await?;
    wait_js(c, "security layer shown again", &COUNT_RENDERED.replace("return out;", "return out.security > 0;"), Duration::from_secs(30)).await?;

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
    let details = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("[data-testid=details]")).await?;
    let text = wait_for_text(&details, "onerror", Duration::from_secs(20)).await?;
    ensure!(text.contains("<img src=x onerror=alert(1)>"), "details panel shows {text:?}");
    ensure!(text.contains("<script>alert('x')</script>"), "payload field not shown literally: {text:?}");
    let injected = c.find_all(Locator::Css("[data-testid=details] img, [data-testid=details] script")).await?;
    ensure!(injected.is_empty(), "feed text became HTML elements");

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
    ensure!(dark_at_end == json!(0), "signals still dark at the end of the tape: {dark_at_end}");
    let slider = c
        .execute(r#"const r = document.querySelector("[data-testid=seek]").getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"#, vec![])
        .await?;
    let f = |i: usize| slider[i].as_f64().unwrap_or(0.0);
    // 40% of an hour from 21:00 is about 21:24, deep in the outage (21:12 to 21:45).
    click_at(c, f(0) + f(2) * 0.4, f(1) + f(3) / 2.0).await?;
    let dark = wait_js(c, "dark signals after seeking back", &dark_signals.replace(".length;", ".length || null;"), Duration::from_secs(30)).await?;
    let clock = c.find(Locator::Css("[data-testid=clock]")).await?.text().await?;
    println!("after seeking to {clock}: {dark} dark signals drawn");
    ensure!(clock.as_str() > "21:15" && clock.as_str() < "21:35", "seek landed at {clock}");

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
    wait_js(c, "observation details closed", r#"return !document.querySelector("[data-testid=details]");"#, Duration::from_secs(10)).await?;
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
    c.find(Locator::Css("[data-testid=sign-in-name]")).await?.send_keys("E2E Operator").await?;
    c.find(Locator::Css("[data-testid=sign-in-submit]")).await?.click().await?;
    let who = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("[data-testid=operator]")).await?.text().await?;
    ensure!(who.contains("E2E Operator"), "signed in as {who:?}");
    press(c, "a").await?;
    wait_js(
        c,
        "the outage acknowledged",
        r#"const e = document.querySelector("[data-testid=incident-entry]");
           return e && e.textContent.includes("Power outage") && e.dataset.status === "acknowledged";"#,
        Duration::from_secs(10),
    )
    .await?;
    press(c, ENTER).await?;
    let detail = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("[data-testid=incident-detail]")).await?;
    let text = wait_for_text(&detail, "it is fed by that substation", Duration::from_secs(20)).await?;
    ensure!(text.contains("Kaisankuja substation"), "the detail does not name the substation: {text:.300}");
    let explanation = c.find(Locator::Css("[data-testid=incident-group-transport] [data-testid=member-explanation]")).await?.text().await?;
    println!("a member's explanation: {explanation}");
    ensure!(explanation.contains("went dark") && explanation.contains("after substation"), "explanation {explanation:?}");
    ensure!(text.contains("Acknowledged by E2E Operator"), "the timeline lacks the acknowledgement");
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
    wait_js(c, "idle for the screenshot", IDLE, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let png = c.screenshot().await?;
    let out = repo().join("assets/screenshot.png");
    std::fs::write(&out, &png)?;
    println!("screenshot saved: {} ({} bytes)", out.display(), png.len());

    // 8. The keys are documented in the window: `?` opens the help, Esc closes it.
    press(c, "?").await?;
    let help = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("[data-testid=help]")).await?.text().await?;
    ensure!(help.contains("Acknowledge") && help.contains("Next / previous incident"), "help shows {help:?}");
    press(c, ESCAPE).await?;
    wait_js(c, "help closed", r#"return !document.querySelector("[data-testid=help]");"#, Duration::from_secs(10)).await?;
    Ok(())
}

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// Presses and releases one key (a character, or a WebDriver key code) on whatever has focus.
async fn press(c: &Client, key: &str) -> Result<()> {
    let ch = key.chars().next().context("a key")?;
    let keys = KeyActions::new("keyboard".into()).then(KeyAction::Down { value: ch }).then(KeyAction::Up { value: ch });
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
