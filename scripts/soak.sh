#!/usr/bin/env bash
# The fault soak (tests/soak, docs/reliability.md): on the real test environment, a steady
# stream of MCD, MCS and MCJ operations for MINUTES while API servers are frozen and
# restarted, nodes lost, controllers and the leader killed and a policy broken, with the
# invariants checked every 5 s; then everything must converge within 3 minutes. Prints a
# table; exits non-zero on any violation. Not part of scripts/test.sh (it takes minutes).
#
# Usage: scripts/soak.sh [MINUTES (20)] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MCK8S_CACHE/target}"
export MCK8S_WASM_DIR="$CARGO_TARGET_DIR/wasm32-wasip2/policy"
minutes=${1:-20}
seed=${2:-24301}

bash scripts/testenv.sh provision
bash scripts/build-policies.sh
# Default members first (as scripts/test.sh builds them, so nothing is rebuilt), then the soak.
cargo build --release --quiet
cargo build --release --quiet -p mck8s-soak
export MCK8S_BIN="$CARGO_TARGET_DIR/release/mck8s"

bash scripts/testenv.sh down >/dev/null 2>&1 || true
trap 'bash scripts/testenv.sh down || true' EXIT
bash scripts/testenv.sh up
"$CARGO_TARGET_DIR/release/mck8s-soak" "$minutes" "$seed"
