#!/usr/bin/env bash
# Pushes a runnable busybox image, built from Debian's static busybox, to a plain-HTTP registry
# of the ground: `push-busybox.sh HOST:PORT REPOSITORY TAG [FILLER_MIB]`. With FILLER_MIB a
# second layer of that many MiB of random bytes makes the image heavy, like a real application.
# IMAGE_CMD, a JSON array, replaces the image's command (`["sh"]`); worker-up.sh builds the
# worker's pod sandbox ("pause") image this way.
# The demo (scripts/up.sh) uses it; the Rust tests build their images in
# integration/support/image.rs.
set -euo pipefail
registry="$1" repository="$2" tag="$3" filler_mib="${4:-0}"
cmd_json="${IMAGE_CMD:-[\"sh\"]}"
busybox=/bin/busybox
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Layer 1: busybox and one symlink per applet, plus the files a shell expects.
root="$work/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,var,proc,sys,dev,tmp}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
"$busybox" --list-full | while read -r applet; do
  [[ -z "$applet" || "$applet" == bin/busybox ]] && continue
  ln -sf /bin/busybox "$root/$applet"
done
layers=()
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer0.tar" .
layers+=("$work/layer0.tar")
if (( filler_mib > 0 )); then
  mkdir -p "$work/filler/filler"
  head -c "$((filler_mib * 1024 * 1024))" /dev/urandom >"$work/filler/filler/data.bin"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/filler" -cf "$work/layer1.tar" .
  layers+=("$work/layer1.tar")
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
upload() { # file → digest (monolithic upload)
  local file="$1" digest location
  digest="sha256:$(sha "$file")"
  if ! curl -fsS -o /dev/null -I "http://$registry/v2/$repository/blobs/$digest" 2>/dev/null; then
    location="$(curl -fsS -X POST -D - -o /dev/null "http://$registry/v2/$repository/blobs/uploads/" \
      | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')"
    [[ "$location" == http* ]] || location="http://$registry$location"
    [[ "$location" == *\?* ]] && sep='&' || sep='?'
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" \
      "$location${sep}digest=$digest" -o /dev/null
  fi
  echo "$digest"
}

diff_ids=() layer_json=()
for layer in "${layers[@]}"; do
  diff_ids+=("\"sha256:$(sha "$layer")\"")
  gzip -n -1 -c "$layer" >"$layer.gz"
  digest="$(upload "$layer.gz")"
  layer_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$digest\",\"size\":$(stat -c %s "$layer.gz")}")
done
join() { local IFS=,; echo "$*"; }
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$cmd_json" "$(join "${diff_ids[@]}")" >"$work/config.json"
config_digest="$(upload "$work/config.json")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
  "$config_digest" "$(stat -c %s "$work/config.json")" "$(join "${layer_json[@]}")" >"$work/manifest.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary "@$work/manifest.json" "http://$registry/v2/$repository/manifests/$tag" -o /dev/null
echo "$registry/$repository:$tag"
