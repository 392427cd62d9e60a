//! Replays what fuzzing keeps, without a fuzzer: every input in `src-tauri/fuzz/regressions/`
//! (findings, once fixed) and `src-tauri/fuzz/seeds/`, through the very function each fuzz
//! target runs (`src-tauri/fuzz/src/lib.rs`, included here), with the same invariants. A
//! finding that comes back fails `cargo test`.

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz;

use std::path::Path;

#[test]
fn kept_fuzz_inputs_still_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for kind in ["regressions", "seeds"] {
        for target in fuzz::TARGETS {
            let Ok(files) = std::fs::read_dir(root.join(kind).join(target)) else {
                continue;
            };
            for f in files {
                let path = f.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| fuzz::run(target, &data));
                assert!(outcome.is_ok(), "{target} fails on {}", path.display());
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= 5,
        "the seeds are where they should be ({replayed} inputs found)"
    );
}
