#!/usr/bin/env bash
# The README's first command: from a fresh machine, builds what is needed (the wasm32-wasip2
# target, the built-in policy components, the mck8s CLI) and places the embedded default
# workload on the embedded default fog/cloud fleet with every built-in placement policy.
# Extra arguments go to `mck8s policy compare` (e.g. --input my-fleet.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
export MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MCK8S_CACHE/target}"
bash scripts/build-policies.sh >/dev/null
cargo build --release --quiet -p mck8s-cli
exec "$CARGO_TARGET_DIR/release/mck8s" policy compare --policies "$CARGO_TARGET_DIR/wasm32-wasip2/policy/builtin" "$@"
