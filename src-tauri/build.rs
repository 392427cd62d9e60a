//! Makes, from the command declarations in `src/commands/<domain>.rs`, what must agree with
//! them: the permission list given to Tauri's access control (each command gets an
//! `allow-<command>` permission; a command missing there cannot be granted at all) and the
//! capability of every window (`capabilities/*.json`: a window may call only what its
//! capability grants). The declarations are `include!`d here with this file's own `commands!`,
//! which keeps names, docs, windows and types as text (so the types need not resolve here).
//! Generated files are written only when their content changes, and are committed: a stale
//! copy shows in `git diff`.

use std::path::Path;

/// One command as its domain declares it.
struct Declared {
    name: &'static str,
    windows: &'static [&'static str],
}

/// Keeps what the build needs of one domain's declarations (the grammar is the one
/// `src/commands/mod.rs` expands into commands).
macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        #[windows($($window:ident),* $(,)?)]
        $(async)? fn $name:ident($engine:ident $(, $app:ident)? $(; $($arg:ident : $ty:ty),* $(,)?)?) -> $ret:ty $body:block
    )*) => {
        pub const DECLARED: &[crate::Declared] = &[$(crate::Declared {
            name: stringify!($name),
            windows: &[$(stringify!($window)),*],
        }),*];
    };
}

/// Includes every domain file; its order is the order of the permission lists.
macro_rules! domains {
    ($($domain:ident),* $(,)?) => {
        $(mod $domain {
            include!(concat!("src/commands/", stringify!($domain), ".rs"));
        })*
        const DOMAINS: &[(&str, &[Declared])] = &[$((stringify!($domain), $domain::DECLARED)),*];
    };
}

domains!(scenario, replay, feeds, incidents, dispatch, training, wall);

/// Each window's capability: its identifier (the file `capabilities/<identifier>.json`), the
/// label of its window, and what the window is for.
const CAPABILITIES: &[(&str, &str, &str)] = &[
    (
        "operator",
        "main",
        "The operator's main window: the map, incidents and their workflow, dispatch through the outbox, the clock while no trainer view holds it, reports, and opening the trainer view and the wall display. It may not inject (that is the trainer's).",
    ),
    (
        "trainer",
        "trainer",
        "The trainer view's window: the clock, injects, the live score, the report, ending the exercise and closing the view. It may not dispatch nor work incidents (that is the trainee's).",
    ),
    ("wall", "wall", "The wall display's window: it reads the scenario and follows the picture and the incidents, and can do nothing else."),
];

fn main() {
    println!("cargo:rerun-if-changed=src/commands");
    check_domains();
    let commands: Vec<&Declared> = DOMAINS.iter().flat_map(|(_, declared)| declared.iter()).collect();
    for c in &commands {
        if let Some(w) = c.windows.iter().find(|w| !CAPABILITIES.iter().any(|(_, label, _)| label == *w)) {
            panic!("the command {} names the window {w:?}, which has no capability in build.rs", c.name);
        }
    }
    for (identifier, label, description) in CAPABILITIES {
        let granted: Vec<&str> = commands.iter().filter(|c| c.windows.contains(label)).map(|c| c.name).collect();
        write_if_changed(&Path::new("capabilities").join(format!("{identifier}.json")), &capability(identifier, label, description, &granted));
    }
    let names: &'static [&'static str] = commands.iter().map(|c| c.name).collect::<Vec<_>>().leak();
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(names)))
        .expect("the Tauri build step failed");
}

/// Fails the build when the domain files, the list included above and the domain modules of
/// `src/commands/mod.rs` disagree: a domain left out of one of them would have commands that no
/// window may call, or that nothing handles.
fn check_domains() {
    let mut files: Vec<String> = std::fs::read_dir("src/commands")
        .expect("src/commands is readable")
        .map(|e| e.expect("src/commands is readable").file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_owned))
        .filter(|f| f != "mod")
        .collect();
    files.sort();
    let mut here: Vec<String> = DOMAINS.iter().map(|(d, _)| (*d).to_owned()).collect();
    here.sort();
    let module = std::fs::read_to_string("src/commands/mod.rs").expect("src/commands/mod.rs is readable");
    let list = module.split_once("\ndomains! {").and_then(|(_, rest)| rest.split_once("\n}")).map_or("", |(list, _)| list);
    let mut declared: Vec<String> = list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).map(|l| l.trim_end_matches(',').to_owned()).collect();
    declared.sort();
    assert!(files == here && files == declared, "domain files {files:?}, included by build.rs {here:?}, declared in src/commands/mod.rs {declared:?}: they must be the same");
}

/// A capability file: the window's label and the permissions of the commands it may call.
fn capability(identifier: &str, label: &str, description: &str, granted: &[&str]) -> String {
    let permissions: Vec<String> = granted.iter().map(|name| format!("    {}", json_string(&format!("allow-{}", name.replace('_', "-"))))).collect();
    format!(
        "{{\n  \"identifier\": {},\n  \"description\": {},\n  \"windows\": [{}],\n  \"permissions\": [\n{}\n  ]\n}}\n",
        json_string(identifier),
        json_string(description),
        json_string(label),
        permissions.join(",\n")
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes a generated file unless it already holds `content`, so that an unchanged build does
/// not touch files that Tauri's build step and cargo watch.
fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        std::fs::write(path, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
