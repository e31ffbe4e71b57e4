#!/usr/bin/env bash
# The one test command (README, .ci/run): sets everything up on a fresh machine, starts the
# real test environment (kube-apiservers, simulated kubelets, serf, Prometheus), runs every
# test, and tears the environment down even when something fails.
#
# Caches live outside the clone ($MCK8S_CACHE, default ~/.cache/mck8s): the cargo target
# dir, the Kubernetes binaries, Helm and kubectl, compiled policies. The first run on a
# fresh machine takes about 30 minutes (wasmtime and Kubernetes builds); later runs minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MCK8S_CACHE/target}"
export MCK8S_WASM_DIR="$CARGO_TARGET_DIR/wasm32-wasip2/policy"
step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

# Style first: seconds, and a formatting slip should not cost a whole run.
step "style: rustfmt"
cargo fmt --all --check

step "provisioning (idempotent)"
bash scripts/testenv.sh provision

step "building the policy components (wasm32-wasip2)"
bash scripts/build-policies.sh

step "building the example policies: Rust, C, Python, JS (toolchains cached)"
bash scripts/build-examples.sh

step "building the workspace"
cargo build --release --quiet

# Clippy's own (check-mode) build of the dependencies: about 2 minutes cold on 2 cores.
step "lints: clippy on every target, warnings are errors"
cargo clippy --release --all-targets --quiet -- -D warnings

# Coverage-guided fuzzing, 30 s per target (fuzz/; a crash fails the run). Its own build
# (instrumented, deps unoptimised) costs about 9 minutes cold, 1.5 minutes warm.
step "fuzzing: quantities, specs, kubeconfig Secrets, policy decisions"
bash scripts/fuzz.sh "${MCK8S_FUZZ_SECONDS:-30}"

step "starting the test environment"
bash scripts/testenv.sh down >/dev/null 2>&1 || true
trap 'step "tearing down"; bash scripts/testenv.sh down || true' EXIT
# MCK8S_TESTENV_FLEET / MCK8S_TESTENV_DIR run a second environment beside another one
# (another base port and state dir); CI uses the defaults.
bash scripts/testenv.sh up --serf --prometheus ${MCK8S_TESTENV_FLEET:+"$MCK8S_TESTENV_FLEET"}

# Two groups, one environment. The hermetic tests (unit tests, the hermetic integration
# binaries, doc tests) need no cluster. The real-environment suites are one binary per crate,
# `realenv`, left out of a bare `cargo test` (`test = false`). Both run even when the first
# fails, and the script fails if either did.
status=0
step "running the hermetic tests (cargo test)"
cargo test --release --no-fail-fast || status=1
step "running the real-environment suites (cargo test --test realenv)"
cargo test --release --no-fail-fast --test realenv || status=1
exit $status
