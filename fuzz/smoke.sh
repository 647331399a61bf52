#!/usr/bin/env bash
# Fuzz smoke test (CI): build every cargo-fuzz target and run each one for a bounded time,
# starting from the committed corpus plus the regression inputs, copied to a temp dir so the
# repository is not modified. Exits non-zero if any target crashes, hangs or runs out of memory;
# the crashing input is left in fuzz/artifacts/<target>/ (git-ignored).
#
#   fuzz/smoke.sh                    # 20 s per target
#   FUZZ_SECONDS=120 fuzz/smoke.sh   # longer
#   fuzz/smoke.sh frame config       # some targets only
#
# No nightly toolchain needed: cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation)
# to rustc, which the stable toolchain accepts with RUSTC_BOOTSTRAP=1. On a machine that has a
# nightly toolchain, `cargo +nightly fuzz ...` works as well (then drop RUSTC_BOOTSTRAP).
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
ALL_TARGETS=(frame server_connection client_connection config http cron upstream)
if (($#)); then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
# libFuzzer options of every run: bounded time, bounded memory, a hang is a failure.
LIBFUZZER_OPTS=(-max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1)
# Same build flags for `build` and `run`, so `run` does not rebuild: release + ASan (the
# default) + debug assertions, which also turns on integer overflow checks.
BUILD_OPTS=(--release --debug-assertions)

export RUSTC_BOOTSTRAP=1
start=$SECONDS

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
echo "== $(cargo fuzz --version), $(rustc --version) with RUSTC_BOOTSTRAP=1 ($((SECONDS - start)) s)"

cargo fuzz build "${BUILD_OPTS[@]}"
echo "== targets built ($((SECONDS - start)) s)"

work=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-fuzz-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
for t in "${TARGETS[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus"
    n=$(find "corpus/$t" -type f | wc -l)
    ((n > 0)) || { echo "fuzz/corpus/$t is empty" >&2; exit 1; }
    cp "corpus/$t"/* "$corpus/"
    if [[ -d "regressions/$t" ]]; then
        find "regressions/$t" -type f ! -name 'README*' -exec cp {} "$corpus/" \;
    fi
    log="$work/$t.log"
    t0=$SECONDS
    if cargo fuzz run "${BUILD_OPTS[@]}" "$t" "$corpus" -- "${LIBFUZZER_OPTS[@]}" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "== $t: ok, ${runs:-?} runs in $((SECONDS - t0)) s (~$(( ${runs:-0} / (SECONDS - t0 > 0 ? SECONDS - t0 : 1) )) exec/s), ${cov:-cov: ?}, $n seeds"
    else
        failed+=("$t")
        echo "== $t: FAILED (log tail below; input in fuzz/artifacts/$t/)"
        tail -n 80 "$log"
    fi
done

echo "== total $((SECONDS - start)) s"
if ((${#failed[@]})); then
    echo "fuzz smoke failed: ${failed[*]}" >&2
    echo "Reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>; once fixed, copy the" >&2
    echo "(minimized: cargo fuzz tmin <target> <file>) input to fuzz/regressions/<target>/." >&2
    exit 1
fi
