#!/usr/bin/env bash
# Builds the built-in policies and the test guests as wasm32-wasip2 components into
# $MCK8S_WASM_DIR (default: <target dir>/wasm32-wasip2/policy). Incremental: seconds when
# nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mck8s/target}"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
policies=(worst-fit best-fit most-traffic preferred divided mchpa mchpa-traffic)
guests=(hostile wasi-fs broken future-wit wit-0-1-0)
args=()
for p in "${policies[@]}"; do args+=(-p "mck8s-policy-$p"); done
for g in "${guests[@]}"; do args+=(-p "mck8s-guest-$g"); done
cargo build --quiet --profile policy --target wasm32-wasip2 "${args[@]}"
out="$CARGO_TARGET_DIR/wasm32-wasip2/policy"
# Publish the built-ins under their policy names (the registry name is the file stem).
mkdir -p "$out/builtin"
for p in "${policies[@]}"; do
  cp -f "$out/mck8s_policy_${p//-/_}.wasm" "$out/builtin/$p.wasm.tmp"
  mv -f "$out/builtin/$p.wasm.tmp" "$out/builtin/$p.wasm"
done
echo "$out"
