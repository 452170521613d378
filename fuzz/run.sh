#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10), one after another,
# on nightly with cargo-fuzz: `fuzz/run.sh [--quick] [SECONDS] [TARGET...]`.
# --quick (CI) builds the targets unoptimized and without AddressSanitizer,
# in a few minutes instead of up to half an hour; the coverage guidance,
# debug assertions and overflow checks are the same. The long runs of
# RELIABILITY.md use the default: optimized, with AddressSanitizer.
# Each run starts from the committed seeds (seeds/TARGET, read only) and
# the local corpus (corpus/TARGET, git-ignored, grows); a crash stops the
# script with the input under artifacts/TARGET/. CI runs it with 10 s each
# after `cargo test --workspace`; RELIABILITY.md has the longer runs.
set -euo pipefail
cd "$(dirname "$0")"
build=(-a)
if [ "${1:-}" = "--quick" ]; then
    build=(--dev -s none)
    # No debug info: the build is what CI waits for; a crash's input is
    # kept and replays with full backtraces in server/tests/it/fuzz.rs.
    export CARGO_PROFILE_DEV_DEBUG=0
    shift
fi
seconds="${1:-10}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(record_decode money_parse wal_read engine_ops http_request)
fi
# Debug assertions (and overflow checks) on: an overflow is a finding.
cargo +nightly fuzz build "${build[@]}"
# The targets make throwaway stores: in memory where there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
for target in "${targets[@]}"; do
    # Inputs up to max_len bytes from the start (-len_control=0): the
    # structured targets need a few hundred bytes to say anything.
    case "$target" in
        money_parse) max_len=64 ;;
        engine_ops) max_len=1024 ;;
        http_request) max_len=2048 ;;
        *) max_len=4096 ;;
    esac
    mkdir -p "corpus/$target" "seeds/$target"
    echo "fuzz: $target for ${seconds}s"
    # -malloc_limit_mb: one allocation over 512 MiB is a crash (the record
    # decoders must never allocate by a length they read).
    cargo +nightly fuzz run "${build[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -len_control=0 \
        -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=30 -print_final_stats=1
done
