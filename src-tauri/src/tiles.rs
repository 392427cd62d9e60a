//! The `maptiles://` URI scheme: `maptiles://localhost/{archive}/{z}/{x}/{y}` on Linux and
//! macOS, `http://maptiles.localhost/...` on Windows. Tiles come from the engine's offline
//! archives; nothing is fetched from a network.

use cityops_engine::Engine;
use tauri::http::{header, Request, Response, StatusCode};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

/// Answers one tile request off the main thread.
pub fn handle<R: Runtime>(ctx: UriSchemeContext<'_, R>, request: Request<Vec<u8>>, responder: UriSchemeResponder) {
    let maps = ctx.app_handle().state::<Engine>().maps();
    let path = request.uri().path().to_owned();
    tauri::async_runtime::spawn_blocking(move || {
        let response = match parse(&path) {
            None => reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("bad tile path {path:?}").into_bytes(),
            ),
            Some((name, z, x, y)) => match maps.tile(name, z, x, y) {
                Ok(Some(tile)) => reply(StatusCode::OK, "application/x-protobuf", tile),
                // An empty 200 is what MapLibre expects for a tile outside the archive.
                Ok(None) => reply(StatusCode::OK, "application/x-protobuf", Vec::new()),
                Err(e) => {
                    tracing::warn!(error = %e, %path, "tile request failed");
                    reply(StatusCode::NOT_FOUND, "text/plain", e.to_string().into_bytes())
                }
            },
        };
        responder.respond(response);
    });
}

fn parse(path: &str) -> Option<(&str, u32, u32, u32)> {
    let mut parts = path.trim_start_matches('/').split('/');
    let name = parts.next()?;
    let z = parts.next()?.parse().ok()?;
    let x = parts.next()?.parse().ok()?;
    let y = parts
        .next()?
        .trim_end_matches(".pbf")
        .trim_end_matches(".mvt")
        .parse()
        .ok()?;
    parts.next().is_none().then_some((name, z, x, y))
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(body)
        .expect("a static response always builds")
}
