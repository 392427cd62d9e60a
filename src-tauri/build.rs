//! Makes, from the command declarations in `src/commands/<domain>.rs`, what must agree with
//! them: the permission list given to Tauri's access control (each command gets an
//! `allow-<command>` permission; a command missing there cannot be granted at all) and the
//! capability of every window (`capabilities/*.json`: a window may call only what its
//! capability grants), and the UI's typed client (`ui/src/ipc/gen/commands.ts`). The
//! declarations are `include!`d here with this file's own `commands!`,
//! which keeps names, docs, windows and types as text (so the types need not resolve here).
//! Generated files are written only when their content changes, and are committed: a stale
//! copy shows in `git diff`.

use std::collections::BTreeSet;
use std::path::Path;

/// One command as its domain declares it, its types as Rust text.
struct Declared {
    name: &'static str,
    docs: &'static [&'static str],
    windows: &'static [&'static str],
    args: &'static [(&'static str, &'static str)],
    returns: &'static str,
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
            docs: &[$($doc),*],
            windows: &[$(stringify!($window)),*],
            args: &[$($((stringify!($arg), stringify!($ty))),*)?],
            returns: stringify!($ret),
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
        "The trainer view's window: the clock, injects, the live score, the report, ending the exercise and closing the view, and signing the trainer in (an exercise site's clock is a signed-in trainer's). It may not dispatch nor work incidents (that is the trainee's).",
    ),
    ("wall", "wall", "The wall display's window: it reads the scenario and follows the picture and the incidents, and can do nothing else."),
];

/// The TypeScript client, beside the DTO types ts-rs generates there.
const CLIENT: &str = "../ui/src/ipc/gen/commands.ts";

fn main() {
    println!("cargo:rerun-if-changed=src/commands");
    // The client is checked against the DTO files there, and rewritten if edited by hand.
    println!("cargo:rerun-if-changed=../ui/src/ipc/gen");
    check_domains();
    let commands: Vec<&Declared> = DOMAINS.iter().flat_map(|(_, declared)| declared.iter()).collect();
    for c in &commands {
        if let Some(w) = c
            .windows
            .iter()
            .find(|w| !CAPABILITIES.iter().any(|(_, label, _)| label == *w))
        {
            panic!(
                "the command {} names the window {w:?}, which has no capability in build.rs",
                c.name
            );
        }
    }
    for (identifier, label, description) in CAPABILITIES {
        let granted: Vec<&str> = commands
            .iter()
            .filter(|c| c.windows.contains(label))
            .map(|c| c.name)
            .collect();
        write_if_changed(
            &Path::new("capabilities").join(format!("{identifier}.json")),
            &capability(identifier, label, description, &granted),
        );
    }
    write_if_changed(Path::new(CLIENT), &client(&commands));
    let names: &'static [&'static str] = commands.iter().map(|c| c.name).collect::<Vec<_>>().leak();
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(names)),
    )
    .expect("the Tauri build step failed");
}

/// Fails the build when the domain files, the list included above and the domain modules of
/// `src/commands/mod.rs` disagree: a domain left out of one of them would have commands that no
/// window may call, or that nothing handles.
fn check_domains() {
    let mut files: Vec<String> = std::fs::read_dir("src/commands")
        .expect("src/commands is readable")
        .map(|e| {
            e.expect("src/commands is readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_owned))
        .filter(|f| f != "mod")
        .collect();
    files.sort();
    let mut here: Vec<String> = DOMAINS.iter().map(|(d, _)| (*d).to_owned()).collect();
    here.sort();
    let module = std::fs::read_to_string("src/commands/mod.rs").expect("src/commands/mod.rs is readable");
    let list = module
        .split_once("\ndomains! {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map_or("", |(list, _)| list);
    let mut declared: Vec<String> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| l.trim_end_matches(',').to_owned())
        .collect();
    declared.sort();
    assert!(files == here && files == declared, "domain files {files:?}, included by build.rs {here:?}, declared in src/commands/mod.rs {declared:?}: they must be the same");
}

/// A capability file: the window's label and the permissions of the commands it may call.
fn capability(identifier: &str, label: &str, description: &str, granted: &[&str]) -> String {
    let permissions: Vec<String> = granted
        .iter()
        .map(|name| format!("    {}", json_string(&format!("allow-{}", name.replace('_', "-")))))
        .collect();
    format!(
        "{{\n  \"identifier\": {},\n  \"description\": {},\n  \"windows\": [{}],\n  \"permissions\": [\n{}\n  ]\n}}\n",
        json_string(identifier),
        json_string(description),
        json_string(label),
        permissions.join(",\n")
    )
}

/// A string as a JSON (and so a TypeScript) literal.
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

/// The TypeScript client: one typed `invoke` wrapper per command, named in camelCase, with
/// the command's docs. Argument keys are the camelCase of the Rust names, as Tauri expects.
fn client(commands: &[&Declared]) -> String {
    let mut dtos = BTreeSet::new();
    let mut channel = false;
    let mut functions = String::new();
    for c in commands {
        let params: Vec<(String, String)> = c
            .args
            .iter()
            .map(|(arg, ty)| (camel_case(arg), typescript(&parse_type(ty), &mut dtos, &mut channel)))
            .collect();
        let returns = match parse_type(c.returns) {
            Type::Unit => "void".to_owned(),
            t => typescript(&t, &mut dtos, &mut channel),
        };
        functions.push('\n');
        functions.push_str(&js_doc(c.docs));
        let signature: Vec<String> = params.iter().map(|(p, t)| format!("{p}: {t}")).collect();
        let keys: Vec<&str> = params.iter().map(|(p, _)| p.as_str()).collect();
        let args = if keys.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", keys.join(", "))
        };
        functions.push_str(&format!(
            "export function {}({}): Promise<{returns}> {{\n  return invoke<{returns}>({}{args});\n}}\n",
            camel_case(c.name),
            signature.join(", "),
            json_string(c.name)
        ));
    }
    let mut out = String::from(
        "// Generated by src-tauri/build.rs from the command declarations in src-tauri/src/commands. Do not edit.\n",
    );
    out.push_str(if channel {
        "import { invoke, type Channel } from \"@tauri-apps/api/core\";\n"
    } else {
        "import { invoke } from \"@tauri-apps/api/core\";\n"
    });
    for dto in &dtos {
        assert!(
            Path::new(CLIENT).with_file_name(format!("{dto}.ts")).exists(),
            "a command names {dto}, which has no TypeScript in ui/src/ipc/gen: add it to the engine's typescript_bindings and run `cargo test -p cityops-dto`"
        );
        out.push_str(&format!("import type {{ {dto} }} from \"./{dto}\";\n"));
    }
    out.push_str(&functions);
    out
}

/// A Rust type as a declaration writes it.
#[derive(Debug)]
enum Type {
    Unit,
    Path(String, Vec<Type>),
}

/// Parses the text `stringify!` gives of a declared type: paths with generic arguments, and `()`.
fn parse_type(text: &str) -> Type {
    let spaced = ["<", ">", ",", "(", ")"]
        .iter()
        .fold(text.to_owned(), |t, p| t.replace(p, &format!(" {p} ")));
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let ty = parse_at(&tokens, &mut at);
    assert_eq!(at, tokens.len(), "cannot read the type {text:?}");
    ty
}

fn parse_at(tokens: &[&str], at: &mut usize) -> Type {
    let token = *tokens
        .get(*at)
        .unwrap_or_else(|| panic!("a type ends early in {tokens:?}"));
    *at += 1;
    if token == "(" {
        assert_eq!(
            tokens.get(*at),
            Some(&")"),
            "tuples other than () have no TypeScript here"
        );
        *at += 1;
        return Type::Unit;
    }
    // A path keeps its last segment: `tauri::ipc::Channel` is a `Channel`.
    let name = token.rsplit("::").next().unwrap_or(token).to_owned();
    let mut args = Vec::new();
    if tokens.get(*at) == Some(&"<") {
        *at += 1;
        loop {
            args.push(parse_at(tokens, at));
            let next = tokens.get(*at).copied();
            *at += 1;
            match next {
                Some(",") => {}
                Some(">") => break,
                other => panic!("unexpected {other:?} in the type {tokens:?}"),
            }
        }
    }
    Type::Path(name, args)
}

/// The TypeScript of a Rust type, noting the DTOs it names and whether it takes a channel.
fn typescript(ty: &Type, dtos: &mut BTreeSet<String>, channel: &mut bool) -> String {
    let Type::Path(name, args) = ty else {
        return "null".to_owned();
    };
    let mut inner = |i: usize| {
        typescript(
            args.get(i).unwrap_or_else(|| panic!("{name} needs a type argument")),
            dtos,
            channel,
        )
    };
    match name.as_str() {
        "String" | "str" | "char" => "string".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" | "f32" | "f64" => {
            "number".to_owned()
        }
        "bool" => "boolean".to_owned(),
        "Option" => format!("{} | null", inner(0)),
        "Vec" => {
            let item = inner(0);
            if item.contains(' ') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        "Box" => inner(0),
        "Channel" => {
            let item = inner(0);
            *channel = true;
            format!("Channel<{item}>")
        }
        dto => {
            assert!(
                args.is_empty() && dto.starts_with(char::is_uppercase),
                "{dto} has no TypeScript here: use a DTO or a plain type"
            );
            dtos.insert(dto.to_owned());
            dto.to_owned()
        }
    }
}

fn camel_case(snake: &str) -> String {
    let mut parts = snake.split('_');
    let first = parts.next().unwrap_or_default().to_owned();
    parts.fold(first, |mut out, p| {
        let mut cs = p.chars();
        if let Some(c) = cs.next() {
            out.extend(c.to_uppercase());
            out.push_str(cs.as_str());
        }
        out
    })
}

/// A doc comment as JSDoc, one line or several.
fn js_doc(docs: &[&str]) -> String {
    let lines: Vec<String> = docs.iter().map(|d| d.trim().replace("*/", "*\\/")).collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => format!("/** {one} */\n"),
        many => format!(
            "/**\n{}\n */\n",
            many.iter().map(|l| format!(" * {l}")).collect::<Vec<_>>().join("\n")
        ),
    }
}

/// Writes a generated file unless it already holds `content`, so that an unchanged build does
/// not touch files that Tauri's build step and cargo watch.
fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        std::fs::write(path, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
