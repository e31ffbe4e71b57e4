#!/usr/bin/env bash
# Coverage-guided fuzzing of what mck8s parses from users and policies (fuzz/):
#   quantity           Kubernetes quantities
#   specs              MultiClusterDeployment, MultiClusterJob and MultiClusterService objects
#   kubeconfig_secret  kubeconfig Secrets (credentials never in an error)
#   decision           a policy's decision turned back into host types
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (60)] [TARGET...]
# Stable Rust with libFuzzer (libfuzzer-sys); no cargo-fuzz, no nightly. Each run starts from
# the committed seeds and regressions (fuzz/corpus/TARGET, every input run first) plus the
# corpus grown by earlier runs (~/.cache/mck8s/fuzz-corpus). A crash fails the run and is
# written to fuzz/artifacts/TARGET/: commit it into fuzz/corpus/TARGET/ as regression-NAME
# once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(quantity specs kubeconfig_secret decision)
cache=${MCK8S_CACHE:-$HOME/.cache/mck8s}
export CARGO_TARGET_DIR="$cache/fuzz-target"
export RUSTC_WRAPPER="$root/scripts/fuzz-rustc.sh"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

started=$(date +%s)
cargo build --release --locked --manifest-path fuzz/Cargo.toml --bins
echo "fuzz targets built in $(( $(date +%s) - started )) s"

status=0
for t in "${targets[@]}"; do
    corpus="$cache/fuzz-corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    echo "== $t: $seconds s"
    if ! "$CARGO_TARGET_DIR/release/$t" "$corpus" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2> "$cache/fuzz-$t.log"; then
        status=1
        tail -n 40 "$cache/fuzz-$t.log"
        echo "FAILED: $t (inputs in fuzz/artifacts/$t/)"
    else
        grep -E "^stat::(number_of_executed_units|new_units_added)|^Done" "$cache/fuzz-$t.log" | tr '\n' ' '
        echo
    fi
done
exit $status
