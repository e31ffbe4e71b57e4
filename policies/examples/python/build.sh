#!/usr/bin/env bash
# Builds this Python policy as a component with componentize-py (CPython inside the
# component). --stub-wasi: the component imports no WASI at all, as the host requires.
#   bash build.sh OUT.wasm
# Needs componentize-py on PATH (pip install componentize-py). WIT: the directory holding
# types.wit (default: ./wit).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/policy.wasm}")"
wit="$(realpath "${WIT:-$here/wit}")"
cd "$here"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
componentize-py -d "$wit" -w placement componentize --stub-wasi policy -o "$out.tmp" >/dev/null
mv -f "$out.tmp" "$out"
