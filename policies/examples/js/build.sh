#!/usr/bin/env bash
# Builds this JavaScript policy as a component with componentize-js (SpiderMonkey inside
# the component).
#   bash build.sh OUT.wasm
# Needs node and `npm install @bytecodealliance/componentize-js` in NODE_MODULES's parent
# (default: ./node_modules). WIT: the directory holding types.wit (default: ./wit).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/policy.wasm}")"
wit="$(realpath "${WIT:-$here/wit}")"
modules="$(realpath "${NODE_MODULES:-$here/node_modules}")"
node "$here/build.mjs" "$out" "$wit" "$modules"
