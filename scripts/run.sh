#!/usr/bin/env bash
# The README's first command: from a fresh machine, builds what is needed (the wasm32-wasip2
# target, the built-in policy components, the mck8s CLI) and runs `mck8s simulate` on its
# embedded default: five fog clusters and an autoscaled cloud, a workload larger than the fog,
# every mck8s placement policy (real Wasm components, through the controllers' decision code)
# against a KubeFed-like even split. Extra arguments go to `mck8s simulate`
# (e.g. my-scenario.yaml, --policy mine.wasm, --charts DIR, --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
export MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MCK8S_CACHE/target}"
bash scripts/build-policies.sh >/dev/null
# --bin from the workspace root (not -p): the default members' feature set, which
# scripts/test.sh builds too, so its build reuses every crate compiled here.
cargo build --release --quiet --bin mck8s
exec "$CARGO_TARGET_DIR/release/mck8s" simulate --policies "$CARGO_TARGET_DIR/wasm32-wasip2/policy/builtin" "$@"
