#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input for a time budget each (libFuzzer through cargo fuzz).
#
#   bash src-tauri/fuzz/run.sh [seconds per target, default 20] [target...]
#
# Each target starts from a seed corpus assembled here from real samples: the demo tape's
# GeoJSON bodies and lines, the scenario manifest, the rules file, the small CoT, SensorThings
# and MQTT samples in seeds/, and the real CAP alerts and MiWay GTFS-Realtime capture of
# fixtures/samples. The corpus grows in corpus/<target> (kept between runs, not committed). A
# crash leaves its input in artifacts/<target>/ and fails the run; a fixed finding is copied to
# regressions/<target>/. `cargo test` replays the same seeds and every kept finding of all nine
# targets (src-tauri/crates/decoders/tests/fuzz_regressions.rs).
#
# cargo fuzz needs a nightly compiler's -Z flags: the stable compiler with RUSTC_BOOTSTRAP=1
# accepts them, and is what CI has; FUZZ_TOOLCHAIN=nightly uses a nightly toolchain instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
samples="$repo/fixtures/samples"
budget="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(gtfs_rt cap cot sensorthings geojson mqtt_json tape_line manifest rules)

if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    fuzz=(cargo "+$FUZZ_TOOLCHAIN" fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
# Safe Rust has no memory errors for AddressSanitizer to find, and the sanitizer build is slow
# here (13 minutes), so by default the targets are built without one: libFuzzer still catches
# every panic, abort, timeout and out-of-memory. FUZZ_SANITIZER=address brings it back.
san=(-s "${FUZZ_SANITIZER:-none}")
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --version 0.13.2 --locked" >&2; exit 1; }

seeds() {
    local t="$1" out="$here/corpus/$1"
    mkdir -p "$out"
    case "$t" in
        geojson) python3 - "$repo/fixtures/scenarios/helsinki-storm/tape.ndjson" "$out" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
for i, line in enumerate(lines[:: max(1, len(lines) // 40)]):
    body = json.loads(line).get("body")
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        open(f"{sys.argv[2]}/tape-{i:03d}.json", "w", encoding="utf-8").write(body)
PY
        ;;
        tape_line) python3 - "$repo/fixtures/scenarios/helsinki-storm/tape.ndjson" "$out" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
for i, line in enumerate(lines[:: max(1, len(lines) // 40)]):
    open(f"{sys.argv[2]}/line-{i:03d}.ndjson", "w", encoding="utf-8").write(line)
PY
                  # Hand-made tapes of damaged bytes (Latin-1, NUL, a cut character, CRLF).
                  cp "$here/seeds/tape_line"/* "$out/" ;;
        manifest) cp "$repo"/fixtures/scenarios/*/scenario.toml "$out/" 2>/dev/null || true
                  for f in "$repo"/fixtures/scenarios/*/scenario.toml; do cp "$f" "$out/$(basename "$(dirname "$f")").toml"; done ;;
        rules) cp "$repo/fixtures/rules/default.toml" "$out/" ;;
        cap) cp "$samples"/cap/*.xml "$out/" ;;
        gtfs_rt) find "$samples/gtfs-rt" -name '*.pb' -size -64k -exec cp {} "$out/" \; ;;
        *) [ -d "$here/seeds/$t" ] && cp "$here/seeds/$t"/* "$out/" ;;
    esac
    # Findings fixed earlier stay in the corpus.
    [ -d "$here/regressions/$t" ] && cp "$here/regressions/$t"/* "$out/" 2>/dev/null
    return 0
}

cd "$here"
echo "== building the fuzz targets (slow the first time)"
"${fuzz[@]}" build --fuzz-dir "$here" -O "${san[@]}"
log="$here/target/fuzz.log"
for t in "${targets[@]}"; do
    seeds "$t"
    echo "== fuzz $t for ${budget}s ($(ls "$here/corpus/$t" | wc -l) inputs in the corpus)"
    status=0
    "${fuzz[@]}" run --fuzz-dir "$here" -O "${san[@]}" "$t" "$here/corpus/$t" -- \
        -max_total_time="$budget" -max_len=262144 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)" "$log" | tr '\n' ' '
    echo
    if [ "$status" -ne 0 ] || [ -n "$(ls -A "$here/artifacts/$t" 2>/dev/null)" ]; then
        grep -E "panicked|==[0-9]+==|SUMMARY|Test unit written|deadly signal" "$log" | head -20 >&2 || tail -30 "$log" >&2
        echo "fuzz $t failed (exit $status); inputs: $(ls "$here/artifacts/$t" 2>/dev/null)" >&2
        exit 1
    fi
done
echo "== fuzzing done: ${#targets[@]} targets, ${budget}s each"
