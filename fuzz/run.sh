#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60):
#
#   fuzz/run.sh              # a minute each
#   fuzz/run.sh --dev 5      # CI: a debug build, a few seconds each
#   fuzz/run.sh 600 href     # one target, ten minutes
#
# --dev builds without optimisation: about 3 minutes instead of 10 on two
# cores (the config target links the host, wasmtime included), and about a
# hundredth of the speed, enough to replay the corpus and find panics near
# it; fuzzing for real wants the default optimised build.
#
# Needs a nightly toolchain (libFuzzer's coverage instrumentation) and
# cargo-fuzz; installs them when missing. A crash stops the run with
# libFuzzer's report and exit code; the input is in fuzz/artifacts/<target>/.
# Reproduce from fuzz/ with
#   cargo +nightly fuzz run --sanitizer none <target> artifacts/<target>/<file>
# then keep it as a unit test of the crate it broke (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

profile=()
if [ "${1:-}" = "--dev" ]; then
    profile=(--dev)
    shift
fi
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(propfind activity href config)
fi

# libFuzzer's coverage instrumentation wants a nightly compiler. Where none
# is installed and none can be fetched (only crates.io is reachable from some
# machines), the installed toolchain is told to accept nightly flags.
toolchain=(+nightly)
if ! rustup run nightly rustc --version >/dev/null 2>&1 &&
    ! rustup toolchain install nightly --profile minimal; then
    echo "no nightly toolchain: using $(rustc --version) with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    toolchain=()
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The code under test is safe Rust: what fuzzing finds is panics (debug
# assertions and overflow checks are on), hangs and runaway memory, which need
# no sanitizer; without one builds and runs are several times faster.
sanitizer=(--sanitizer none)

# One build of all targets first, so the time limit is spent fuzzing.
cargo "${toolchain[@]}" fuzz build "${profile[@]}" "${sanitizer[@]}"

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== fuzzing $target for ${seconds}s"
    cargo "${toolchain[@]}" fuzz run "${profile[@]}" "${sanitizer[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
