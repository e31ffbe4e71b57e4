#!/usr/bin/env bash
# The placement controller at scale (docs/benchmarks.md, issue 5): starts the bench fleet
# (tests/testenv/fleet.bench.yaml: ports 28xxx, state dir /tmp/mck8s-bench, so it runs beside
# another environment), runs host/cli/benches/controller_scale.rs against it, tears it down.
#
#   bash scripts/bench-controller.sh                 # 1,000 Deployments directly, then 1,000 MCDs
#   bash scripts/bench-controller.sh --count 50      # a quick check
#   bash scripts/bench-controller.sh --rate 10       # paced: 10 creates/s instead of a burst
#   bash scripts/bench-controller.sh --phases mck8s --concurrency 16
#   MCK8S_BENCH_FLEET=tests/testenv/fleet.bench-10k.yaml bash scripts/bench-controller.sh --count 10000 --phases mck8s
set -euo pipefail
cd "$(dirname "$0")/.."
export MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MCK8S_CACHE/target}"
export MCK8S_WASM_DIR="${MCK8S_WASM_DIR:-$CARGO_TARGET_DIR/wasm32-wasip2/policy}"
export MCK8S_TESTENV_DIR="${MCK8S_TESTENV_DIR:-/tmp/mck8s-bench}"

bash scripts/testenv.sh provision >/dev/null
bash scripts/build-policies.sh >/dev/null
# Build before the environment starts, so the fleet is not idling (or competing) meanwhile.
cargo bench -p mck8s-cli --bench controller_scale --no-run
bash scripts/testenv.sh run "${MCK8S_BENCH_FLEET:-tests/testenv/fleet.bench.yaml}" -- \
  cargo bench -p mck8s-cli --bench controller_scale -- "$@"
