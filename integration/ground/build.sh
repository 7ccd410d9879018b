#!/usr/bin/env bash
# Builds the test ground's Go tools from their Go modules with the machine's Go:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, helm, and for the
# optional worker node (worker-up.sh) kubelet, kube-proxy, containerd, containerd-shim-runc-v2
# and ctr.
# Output: target/ground/tools/<stamp>/bin, where <stamp> hashes the pinned versions and the
# recipe version below, so a version change rebuilds and nothing else does. Prints the bin directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# GROUND_KUBERNETES_VERSION runs the ground on another Kubernetes (README, "Kubernetes
# versions"): its tools are built and cached beside the pinned ones.
KUBERNETES_VERSION="${GROUND_KUBERNETES_VERSION:-$KUBERNETES_VERSION}"

# Bump when the way the tools are built changes (flags, packages), not for cosmetic edits.
RECIPE_VERSION=3
stamp="$( (cat "$here/versions.env"; echo "kubernetes=$KUBERNETES_VERSION recipe=$RECIPE_VERSION") | sha256sum | cut -c1-12)"
out="$root/target/ground/tools/$stamp"
bin="$out/bin"
if [[ -f "$out/.complete" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
log() { echo "[ground/build] $*" >&2; }
# quiet CMD...: runs CMD with its chatter in $out/build.log, shown only if CMD fails.
quiet() {
  if ! "$@" >>"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    log "failed: $*"
    return 1
  fi
}
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0
# The machine's own Go build and module caches (`go env GOCACHE GOMODCACHE`): with them warm,
# the tools rebuild in a couple of minutes instead of twenty, and Go trims them itself. They
# hold about 6 GB after a build; `scripts/test.sh` prints the free disk before and after.

# One throwaway module per tool, so each keeps the dependency versions its own release chose.
new_module() {
  local dir="$out/src/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && go mod init "ground.local/$1" >/dev/null 2>&1)
  echo "$dir"
}

build_kubernetes() {
  local v="$KUBERNETES_VERSION" minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  local dir; dir="$(new_module kubernetes)"
  log "kubernetes $v: resolving modules"
  (cd "$dir" && go mod download -json "k8s.io/kubernetes@$v" >"$dir/k8s.json" 2>>"$out/build.log")
  local gomod
  gomod="$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' "$dir/k8s.json")"
  # k8s.io/kubernetes replaces its staging modules with local paths; point each at its
  # published twin v0.<minor>.<patch> instead.
  local staging_version="v0.${v#v1.}"
  {
    echo "require k8s.io/kubernetes $v"
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
    echo ")"
  } >>"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  (cd "$dir" && quiet go mod tidy)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    log "kubernetes $v: building $cmd"
    (cd "$dir" && quiet go build -tags tools -ldflags "$ld" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  done
}

build_simple() { # name module version package ldflags
  local dir; dir="$(new_module "$1")"
  log "$1 $3: building"
  (cd "$dir" && quiet go get "$2@$3" && printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$4" >tools.go \
    && quiet go mod tidy && quiet go build -tags tools -ldflags "-s -w $5" -o "$bin/$1" "$4")
}

# containerd 2 (Kubernetes 1.37 needs 2.3 or later; Debian 12's containerd is 1.6). Static, no
# cgo, as its release Makefile builds it: btrfs needs cgo, and devmapper and zfs snapshotters
# have nothing to work with here; the shim has no gRPC server (`no_grpc`, as upstream builds it).
build_containerd() {
  local v="$CONTAINERD_VERSION" module=github.com/containerd/containerd/v2
  local dir; dir="$(new_module containerd)"
  log "containerd $v: resolving modules"
  cat >"$dir/tools.go" <<GO
//go:build tools

package tools

import (
	_ "$module/cmd/containerd"
	_ "$module/cmd/containerd-shim-runc-v2"
	_ "$module/cmd/ctr"
)
GO
  (cd "$dir" && quiet go get "$module@$v" && quiet go mod tidy)
  local ld="-s -w -X $module/version.Version=$v -X $module/version.Package=$module"
  local tags="tools urfave_cli_no_docs no_btrfs no_devmapper no_zfs osusergo netgo static_build"
  for cmd in containerd ctr; do
    log "containerd $v: building $cmd"
    (cd "$dir" && quiet go build -tags "$tags" -ldflags "$ld" -o "$bin/$cmd" "$module/cmd/$cmd")
  done
  log "containerd $v: building containerd-shim-runc-v2"
  (cd "$dir" && quiet go build -tags "$tags no_grpc" -ldflags "$ld" -o "$bin/containerd-shim-runc-v2" \
    "$module/cmd/containerd-shim-runc-v2")
}

build_kubernetes
build_containerd
build_simple etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 ""
build_simple helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
rm -rf "$out/src"
touch "$out/.complete"
log "done: $bin"
echo "$bin"
