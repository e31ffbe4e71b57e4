#!/usr/bin/env bash
# Packages the Helm chart with the built-in policies as ConfigMaps.
#
#   scripts/package-chart.sh [OUT_DIR]      (default: $CARGO_TARGET_DIR/chart)
#
# A chart can only read files inside its own directory, and the policy components are build
# outputs (scripts/build-policies.sh), so this copies deploy/helm/mck8s to OUT_DIR/mck8s, puts
# the built-in placement policies in its policies/ (one ConfigMap each), checks that the
# chart's crds/ are the generated deploy/crds, and runs `helm package` (OUT_DIR/mck8s-<version>.tgz)
# when helm is on PATH or in ~/.cache/mck8s/bin. Install the directory or the .tgz.
#
# MCK8S_CHART_POLICIES (space-separated names) overrides the packaged set. Helm keeps every
# release revision in one Secret (max 1 MiB) holding the chart and the rendered manifest, i.e.
# each component twice. The four ranking policies (~515 KiB since WIT 0.1.2 added
# explanations) fit with room for a user policy; the five with divided (~630 KiB) no longer
# do (a `helm upgrade --set-file` of one user policy failed: "Secret ... Too long"). The image
# carries all seven anyway (/usr/share/mck8s/policies, policies.imageDir).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mck8s/target}"
out="${1:-$CARGO_TARGET_DIR/chart}"
builtin="${MCK8S_WASM_DIR:-$CARGO_TARGET_DIR/wasm32-wasip2/policy}/builtin"
policies=(${MCK8S_CHART_POLICIES:-worst-fit best-fit most-traffic preferred})

if ! diff -r deploy/crds deploy/helm/mck8s/crds >/dev/null; then
  echo "deploy/helm/mck8s/crds differs from deploy/crds: cp deploy/crds/*.yaml deploy/helm/mck8s/crds/" >&2
  exit 1
fi
for p in "${policies[@]}"; do
  [[ -f "$builtin/$p.wasm" ]] || { echo "$builtin/$p.wasm is missing: run scripts/build-policies.sh" >&2; exit 1; }
done

mkdir -p "$out"
rm -rf "$out/mck8s.tmp"
cp -r deploy/helm/mck8s "$out/mck8s.tmp"
rm -f "$out/mck8s.tmp/policies/"*.wasm
for p in "${policies[@]}"; do cp "$builtin/$p.wasm" "$out/mck8s.tmp/policies/$p.wasm"; done
rm -rf "$out/mck8s"
mv "$out/mck8s.tmp" "$out/mck8s"

helm=$(command -v helm || true)
[[ -z "$helm" && -x "$HOME/.cache/mck8s/bin/helm" ]] && helm="$HOME/.cache/mck8s/bin/helm"
if [[ -n "$helm" ]]; then
  "$helm" package "$out/mck8s" -d "$out" >&2
fi
echo "$out/mck8s"
