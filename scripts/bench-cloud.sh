#!/usr/bin/env bash
# The CloudProvisioner's overhead from demand to Running replicas in a new cloud cluster
# (docs/benchmarks.md, issue 15): starts tests/testenv/fleet.cloud-bench.yaml (ports 285xx,
# simulated Cluster API with zero delays, state dir /tmp/mck8s-cloud-bench), runs
# host/cli/benches/cloud_burst.rs against it, tears it down.
#
#   bash scripts/bench-cloud.sh            # 3 runs
#   bash scripts/bench-cloud.sh --runs 5
set -euo pipefail
cd "$(dirname "$0")/.."
export MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MCK8S_CACHE/target}"
export MCK8S_WASM_DIR="${MCK8S_WASM_DIR:-$CARGO_TARGET_DIR/wasm32-wasip2/policy}"
export MCK8S_TESTENV_DIR="${MCK8S_TESTENV_DIR:-/tmp/mck8s-cloud-bench}"

bash scripts/testenv.sh provision >/dev/null
bash scripts/build-policies.sh >/dev/null
cargo bench -p mck8s-cli --bench cloud_burst --no-run
bash scripts/testenv.sh run tests/testenv/fleet.cloud-bench.yaml -- \
  cargo bench -p mck8s-cli --bench cloud_burst -- "$@"
