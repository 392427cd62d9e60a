//! Replays what fuzzing starts from and keeps, without a fuzzer, for every one of the nine
//! targets: the seed corpus `src-tauri/fuzz/run.sh` assembles (the committed `seeds/`, the real
//! samples of `fixtures/samples`, the demo tape's lines and bodies, the scenario manifests and
//! the rules file) and every input in `src-tauri/fuzz/regressions/` (findings, once fixed),
//! through the very function each fuzz target runs (`src-tauri/fuzz/src/lib.rs`, included
//! here), with the same invariants. A finding that comes back fails `cargo test`.

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz;

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Every file in `dir` whose name ends with `ext` (any, when `ext` is empty), sorted.
fn files(dir: &Path, ext: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The demo tape's lines, one in every `step`, as `run.sh` samples them.
fn tape_lines() -> Vec<String> {
    let tape = std::fs::read_to_string(repo().join("fixtures/scenarios/helsinki-storm/tape.ndjson")).unwrap();
    let lines: Vec<String> = tape.lines().map(str::to_owned).collect();
    let step = (lines.len() / 40).max(1);
    lines.into_iter().step_by(step).collect()
}

/// The seed corpus of `target`, as `run.sh` assembles it before fuzzing.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let root = repo();
    let samples = root.join("fixtures/samples");
    let mut out = files(&root.join("src-tauri/fuzz/seeds").join(target), "");
    match target {
        "gtfs_rt" => out.extend(files(&samples.join("gtfs-rt/miway"), ".pb")),
        "cap" => out.extend(files(&samples.join("cap"), ".xml")),
        "geojson" => out.extend(tape_lines().iter().filter_map(|line| {
            let body = serde_json::from_str::<serde_json::Value>(line)
                .ok()?
                .get("body")?
                .clone();
            Some(match body {
                serde_json::Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            })
        })),
        "tape_line" => out.extend(tape_lines().into_iter().map(String::into_bytes)),
        "manifest" => {
            for scenario in std::fs::read_dir(root.join("fixtures/scenarios")).unwrap() {
                out.extend(std::fs::read(scenario.unwrap().path().join("scenario.toml")));
            }
        }
        "rules" => out.extend(std::fs::read(root.join("fixtures/rules/default.toml"))),
        _ => {}
    }
    out
}

#[test]
fn every_target_passes_its_seeds_and_kept_findings() {
    let regressions = repo().join("src-tauri/fuzz/regressions");
    for target in fuzz::TARGETS {
        let inputs = seeds(target);
        assert!(!inputs.is_empty(), "{target} has no seed corpus in the repository");
        let mut all = inputs;
        all.extend(files(&regressions.join(target), ""));
        for (i, data) in all.iter().enumerate() {
            let outcome = std::panic::catch_unwind(|| fuzz::run(target, data));
            assert!(outcome.is_ok(), "{target} fails on input {i} of its corpus");
        }
    }
}
