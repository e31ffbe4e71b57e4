#!/usr/bin/env bash
# RUSTC_WRAPPER for scripts/fuzz.sh: sanitizer coverage (what libFuzzer steers by) for
# mck8s's own crates and the fuzz targets only. Dependencies (wasmtime, kube) are built
# plainly, which keeps a cold build short; their code is not what is being fuzzed.
# Build scripts stay plain too: they do not link libFuzzer.
rustc="$1"
shift
crate=""
prev=""
for a in "$@"; do
    if [ "$prev" = "--crate-name" ]; then crate="$a"; fi
    prev="$a"
done
case "${CARGO_PKG_NAME:-}:$crate" in
    mck8s-*:build_script_*) ;;
    mck8s-*:*)
        exec "$rustc" "$@" \
            -Cpasses=sancov-module \
            -Cllvm-args=-sanitizer-coverage-level=4 \
            -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
            -Cllvm-args=-sanitizer-coverage-pc-table \
            -Cllvm-args=-sanitizer-coverage-trace-compares
        ;;
esac
exec "$rustc" "$@"
