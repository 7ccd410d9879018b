#!/usr/bin/env bash
# Installs the Debian packages the test ground runs: the OCI distribution registry, runc,
# busybox-static (the payload of runnable test images), htpasswd and openssl. Idempotent.
set -euo pipefail
packages=(docker-registry runc busybox-static apache2-utils openssl curl iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "[ground] installing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
