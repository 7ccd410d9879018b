#!/usr/bin/env bash
# Installs Debian packages. Without arguments, the ones the test ground runs: the OCI
# distribution registry, runc, busybox-static (the payload of runnable test images), htpasswd
# and openssl, and for the worker node (worker-up.sh) the CNI plugins, socat, and iptables for its
# kube-proxy (conntrack, to look at its connection tracking: `ip netns exec … conntrack -L`). With
# arguments, those packages instead (scripts/image.sh asks for buildah, podman and mmdebstrap).
# Idempotent; waits for the dpkg/apt locks when another apt-get holds them.
set -euo pipefail
if (($# > 0)); then
  packages=("$@")
else
  packages=(docker-registry runc busybox-static apache2-utils openssl curl iproute2
    containernetworking-plugins socat iptables conntrack)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "[ground] installing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
# DPkg::Lock::Timeout makes `install` wait for the dpkg lock; `update` takes the lists lock,
# which that option does not cover, so it is retried for up to 10 minutes.
for attempt in $(seq 1 60); do
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq && break
  ((attempt < 60)) || exit 1
  echo "[ground] apt-get update failed (lock held by another apt-get?); retrying in 10 s" >&2
  sleep 10
done
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 \
  install -y -qq --no-install-recommends "${missing[@]}" >&2
