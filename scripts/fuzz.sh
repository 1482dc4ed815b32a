#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input for a short while each, with `cargo fuzz` (libFuzzer, coverage-guided) on
# the stable toolchain: `--sanitizer none`, because `-Zsanitizer` needs nightly and the code under test is safe
# Rust; the targets are built with debug assertions and overflow checks, as cargo fuzz does by default.
#   scripts/fuzz.sh                       # every target, FUZZ_SECONDS (30) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh flow # one target, longer
# Seeds: fuzz/corpus/<target>/ (in the repository; read, never written: what a run finds goes to a temporary
# directory). A crash stops the run with the input saved under fuzz/artifacts/<target>/; reproduce it with
# `cargo fuzz run --sanitizer none <target> <file>`, fix it, and add the input to the corpus and a unit test.
# Installs cargo-fuzz (crates.io) under ${ZCC_TOOLS_DIR:-<repo>/.tools} on first use, and a C++ compiler (Debian's
# g++, for libFuzzer itself) if there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
CARGO_FUZZ_VERSION=0.13.2
TARGETS=(webhook_envelope flow genesys range_header app_context)
[ $# -gt 0 ] && TARGETS=("$@")

tools="${ZCC_TOOLS_DIR:-$PWD/.tools}"
if ! "$tools/cargo-fuzz/bin/cargo-fuzz" --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools/cargo-fuzz" >&2
    cargo install --quiet --locked --root "$tools/cargo-fuzz" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi
export PATH="$tools/cargo-fuzz/bin:$PATH"
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz.sh: installing g++ (libFuzzer is C++)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq g++ >&2
fi

# The same flags for build and run (others would rebuild). 16 codegen units: a faster build for a slightly slower
# fuzzer, the better trade for short runs.
flags=(--sanitizer none --codegen-units 16)
started=$(date +%s)
cargo fuzz build "${flags[@]}"
echo "fuzz.sh: targets built in $(( $(date +%s) - started )) s" >&2
for target in "${TARGETS[@]}"; do
    found=$(mktemp -d)
    echo "fuzz.sh: $target for ${FUZZ_SECONDS} s" >&2
    # -timeout: an input taking 10 s is a failure too (a hang); -max_len: room for realistic JSON bodies.
    if ! cargo fuzz run "${flags[@]}" "$target" "$found" "fuzz/corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$found.log" 2>&1; then
        tail -n 60 "$found.log" >&2
        echo "fuzz.sh: $target FAILED (input saved under fuzz/artifacts/$target/)" >&2
        rm -rf "$found"
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^Done ' "$found.log" | sed "s/^/fuzz.sh: $target: /" >&2 || true
    echo "fuzz.sh: $target: $(ls "$found" | wc -l) new inputs this run (not kept)" >&2
    rm -rf "$found" "$found.log"
done
echo "fuzz.sh: done in $(( $(date +%s) - started )) s" >&2
