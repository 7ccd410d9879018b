#!/usr/bin/env bash
# Builds the node's container image without a Docker daemon, pushes it to the test ground's
# plain-HTTP registry, checks that it runs as uid 65532 on a read-only root filesystem, and
# prints where it went and its size:
#
#   scripts/image.sh [--profile release|debug] [--binary PATH] [--tag TAG]
#                    [--registry HOST:PORT] [--no-push] [--no-check] [--rebuild-base]
#
#   --profile P      build eci-vk on the host with `cargo build --locked --bin eci-vk` in profile
#                    P (default release, or $IMAGE_PROFILE; debug is quick to rebuild but
#                    makes the image ~2.5 times larger) and put target/<P>/eci-vk in the image
#   --binary PATH    put this eci-vk in the image as it is; cargo does not run
#   --tag TAG        the image's tag (default: the version in Cargo.toml)
#   --registry H:P   where to push (default: GROUND_REGISTRY of the running test ground,
#                    from target/ground/run/ground.env; start it with scripts/up.sh)
#   --no-push        only build, into the local store (target/image/containers)
#   --no-check       skip running the image (`podman run --read-only … --version`)
#   --rebuild-base   make the runtime base again from today's Debian packages
#
# The image is the Dockerfile's, built by buildah with the binary from the host: a build context
# named `build` (target/image/binary/, holding only eci-vk) replaces the Dockerfile's `build`
# stage, which would need the rust image from Docker Hub and ~10 minutes of 2 cores.
#
# Its runtime base stands in for gcr.io/distroless/cc-debian12:nonroot, which this machine
# cannot pull: the same Debian 12 packages (libc6, libgcc-s1, ca-certificates, base-files,
# netbase) extracted by mmdebstrap, with no shell, no package manager and a `nonroot` user
# 65532. It is pushed as <registry>/eci-vk-base/cc-debian12:nonroot and made again only when
# neither the registry nor the local store has it, or with --rebuild-base (for Debian's
# security updates).
#
# Timestamps are $SOURCE_DATE_EPOCH (default 0, like distroless), so the same binary gives the
# same image digest and a second run changes nothing.
#
# buildah, podman and mmdebstrap are Debian packages, installed here when missing. Their
# configuration and storage live under target/image/containers, passed to them by
# CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF; nothing under /etc is
# changed. Runs as root (like the test ground): rootless buildah needs subuid ranges and
# mmdebstrap's unshare mode, which this script does not set up.
#
# Quiet on success: the image's reference, size and check on stdout. Everything the tools say
# is in target/image/logs/ and shown when a step fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
caller_dir="$PWD"
cd "$root"

log() { echo "[image] $*" >&2; }
die() { echo "[image] error: $*" >&2; exit 1; }
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$root/scripts/image.sh" | sed -n '1,18p' >&2; exit "${1:-2}"; }

profile="${IMAGE_PROFILE:-release}" binary="" tag="" registry="${IMAGE_REGISTRY:-}"
push=true check=true rebuild_base=false
while (($#)); do
  case "$1" in
    --profile) profile="${2:?--profile needs release or debug}"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --binary=*) binary="${1#*=}"; shift ;;
    --tag) tag="${2:?--tag needs a tag}"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --registry) registry="${2:?--registry needs HOST:PORT}"; shift 2 ;;
    --registry=*) registry="${1#*=}"; shift ;;
    --no-push) push=false; shift ;;
    --no-check) check=false; shift ;;
    --rebuild-base) rebuild_base=true; shift ;;
    -h | --help) usage 0 ;;
    *) echo "[image] unknown option: $1" >&2; usage ;;
  esac
done
case "$profile" in
  release) profile_dir=release cargo_profile=(--release) ;;
  debug | dev) profile_dir=debug cargo_profile=() ;;
  *) die "--profile: release or debug, not $profile" ;;
esac
[[ $(id -u) -eq 0 ]] || die "run as root (see the comment at the top of scripts/image.sh)"
# A relative --binary is relative to where the script was started.
[[ -z "$binary" || "$binary" == /* ]] || binary="$caller_dir/$binary"

version="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)"
[[ -n "$version" ]] || die "no package version in Cargo.toml"
tag="${tag:-$version}"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
source_url="${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || true)}"
epoch="${SOURCE_DATE_EPOCH:-0}"

# --- where things live ---------------------------------------------------------------------
work="$root/target/image"
conf="$work/containers"
logs="$work/logs"
mkdir -p "$conf" "$logs"
# One run at a time: two would race on the store and the staged binary.
exec 9>"$work/.lock"
flock 9

# run LOG CMD...: CMD's output goes to logs/LOG.log, and to stderr only when it fails.
run() {
  local log="$logs/$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "failed: $1 … (full log: $log)"
  fi
}

# --- tools and their configuration ---------------------------------------------------------
# jq reads the pushed manifest for the compressed size.
integration/ground/install-packages.sh buildah podman mmdebstrap jq

if [[ -z "$registry" ]] && $push; then
  registry="${GROUND_REGISTRY:-}"
  ground_env="${GROUND_RUN_DIR:-$root/target/ground/run}/ground.env"
  if [[ -z "$registry" && -f "$ground_env" ]]; then
    registry="$(sed -n 's/^GROUND_REGISTRY=//p' "$ground_env")"
  fi
  [[ -n "$registry" ]] || die "no registry: start the test ground (scripts/up.sh), or pass --registry HOST:PORT or --no-push"
fi
if $push; then
  curl -fsS -o /dev/null "http://$registry/v2/" ||
    die "the registry http://$registry/v2/ does not answer (is the test ground up? scripts/up.sh)"
fi
repo_prefix="${registry:-localhost}"

# write FILE: stdin into FILE, leaving it untouched when it already says that.
write() {
  local content; content="$(cat)"
  [[ -f "$1" && "$(cat "$1")" == "$content" ]] || printf '%s\n' "$content" >"$1"
}
# The store: overlayfs (the kernel's, as root on ext4) under target/; IMAGE_STORAGE_DRIVER=vfs
# for a filesystem overlayfs cannot sit on (delete target/image/containers/storage first: a
# store keeps the driver it was created with).
write "$conf/storage.conf" <<EOF
[storage]
driver = "${IMAGE_STORAGE_DRIVER:-overlay}"
graphroot = "$conf/storage"
runroot = "$conf/run"
EOF
# No systemd here (and cgroup v1): cgroups through cgroupfs, events to a file, Debian's runc
# (crun is not installed), and podman's state and CNI configuration kept under target/ too.
# Podman gives containers 1048576 open files and processes unless told otherwise, and runc then
# fails ("error setting rlimit type 7: operation not permitted") where root lacks
# CAP_SYS_RESOURCE, as on this VM: the limits are at most this shell's hard limits instead, and
# at most 32768 processes, podman's own limit (runc, its child, cannot raise it either).
limit() { local l; l="$(ulimit -H "$1")"; [[ "$l" == unlimited ]] || ((l > $2)) && l=$2; echo "$l"; }
nofile="$(limit -n 1048576)" nproc="$(limit -u 32768)"
write "$conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "$conf/run/libpod"

[network]
network_config_dir = "$conf/networks"
EOF
# The ground's registry speaks plain HTTP. Short names resolve on Docker Hub, as with docker.
{
  echo 'unqualified-search-registries = ["docker.io"]'
  echo 'short-name-mode = "permissive"'
  if [[ -n "$registry" ]]; then
    printf '\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry"
  fi
} | write "$conf/registries.conf"
export CONTAINERS_STORAGE_CONF="$conf/storage.conf"
export CONTAINERS_CONF="$conf/containers.conf"
export CONTAINERS_REGISTRIES_CONF="$conf/registries.conf"

# --- the runtime base ----------------------------------------------------------------------
base_repo="eci-vk-base/cc-debian12" base_tag="nonroot"
base_ref="$repo_prefix/$base_repo:$base_tag"

base_in_registry() {
  curl -fsS -o /dev/null -I \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/$base_repo/manifests/$base_tag" 2>/dev/null
}
base_in_store() { buildah inspect --type image "$base_ref" >/dev/null 2>&1; }

# The files distroless/cc-debian12:nonroot has, from the same Debian packages: libc6 and
# libgcc-s1 with their dependencies; base-files, netbase and ca-certificates without theirs
# (awk, openssl, debconf and perl are only for their maintainer scripts, which are not run
# here: the CA bundle their postinst would write is concatenated below instead). No shell, no
# dpkg or apt; the packages' control files go to /var/lib/dpkg/status.d/ as in distroless, so
# scanners see their versions.
build_base() {
  local dir="$work/base"
  rm -rf "$dir"
  mkdir -p "$dir"
  local hook
  hook="$(cat <<'EOF'
set -eu
cd "$1/var/cache/apt/archives"
APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get download -qq base-files ca-certificates
for deb in base-files_*.deb ca-certificates_*.deb; do dpkg-deb --extract "$deb" "$1"; done
mkdir -p "$1/var/lib/dpkg/status.d"
for deb in *.deb; do
  { dpkg-deb --field "$deb"; echo "Status: install ok installed"; } \
    >"$1/var/lib/dpkg/status.d/$(dpkg-deb --field "$deb" Package)"
done
EOF
)"
  run base-mmdebstrap mmdebstrap --mode=root --variant=extract --format=directory \
    --include=libc6,libgcc-s1,netbase --extract-hook="$hook" bookworm "$dir/rootfs"

  local r="$dir/rootfs"
  # What mmdebstrap and apt leave for a system that installs packages, and host-specific files
  # the runtime provides (/dev, /etc/hosts, /etc/resolv.conf, /etc/hostname).
  rm -rf "${r:?}"/dev/* "$r"/etc/{apt,dpkg,hostname,resolv.conf,fstab} "$r"/var/cache/apt \
    "$r"/var/lib/apt "$r"/var/log/apt "$r"/usr/share/{lintian,man,info}
  # update-ca-certificates is a shell script, for a system with a shell.
  rm -rf "$r"/usr/sbin/update-ca-certificates "$r"/etc/ca-certificates \
    "$r"/usr/share/doc/ca-certificates/examples
  find "$r/var/lib/dpkg" -mindepth 1 -maxdepth 1 ! -name status.d -exec rm -rf {} +
  # Of the packages' documentation, only the licences.
  find "$r/usr/share/doc" -type f ! -name copyright -delete
  find "$r/usr/share/doc" -depth -mindepth 1 -type d -empty -delete
  # The CA bundle rustls-platform-verifier (like OpenSSL) reads.
  mkdir -p "$r/etc/ssl/certs"
  cat "$r"/usr/share/ca-certificates/mozilla/*.crt >"$r/etc/ssl/certs/ca-certificates.crt"
  # The users and groups of distroless, with nonroot = 65532.
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
tty:x:5:
staff:x:50:
nogroup:x:65534:
nonroot:x:65532:
EOF
  # /etc/hosts (which Kubernetes writes) before DNS; glibc's default without this file asks DNS
  # first.
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
    >"$r/etc/nsswitch.conf"
  mkdir -p "$r"/{dev,proc,sys,root,home/nonroot,tmp}
  chmod 0700 "$r/root" "$r/home/nonroot"
  chown 65532:65532 "$r/home/nonroot"
  chmod 1777 "$r/tmp"
  tar --sort=name --numeric-owner --mtime="@$epoch" --clamp-mtime -C "$r" -cf "$dir/rootfs.tar" .

  local packages="" f
  for f in "$r"/var/lib/dpkg/status.d/*; do
    packages+="${f##*/}=$(sed -n 's/^Version: //p' "$f") "
  done
  cat >"$dir/Containerfile" <<EOF
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
LABEL org.opencontainers.image.title="cc-debian12 (nonroot), from Debian packages" \\
      org.opencontainers.image.description="Stand-in for gcr.io/distroless/cc-debian12:nonroot made by scripts/image.sh from Debian 12 packages: ${packages% }"
EOF
  run base-build buildah bud --quiet --timestamp "$epoch" --identity-label=false \
    -t "$base_ref" -f "$dir/Containerfile" "$dir"
  rm -rf "$r"
}

if $rebuild_base || { ! base_in_store && ! { $push && base_in_registry; }; }; then
  log "making the runtime base $base_ref from Debian packages"
  build_base
  $push && run base-push buildah push --quiet --tls-verify=false "$base_ref" "docker://$base_ref"
elif $push && ! base_in_registry; then
  run base-push buildah push --quiet --tls-verify=false "$base_ref" "docker://$base_ref"
fi

# --- the binary ------------------------------------------------------------------------------
if [[ -z "$binary" ]]; then
  binary="target/$profile_dir/eci-vk"
  # Cargo says nothing when the binary is fresh; a line when it has something to compile.
  if [[ ! -x "$binary" ]] || [[ -n "$(find src proto build.rs Cargo.toml Cargo.lock -newer "$binary" -print -quit 2>/dev/null)" ]]; then
    log "compiling eci-vk in the $profile_dir profile (a first release build takes ~10 min on 2 cores)"
  fi
  cargo build --quiet "${cargo_profile[@]}" --locked --bin eci-vk
fi
[[ -x "$binary" ]] || die "no executable at $binary"
# The `build` context: this one file, left alone when it is the same.
mkdir -p "$work/binary"
cmp -s "$binary" "$work/binary/eci-vk" || install -m 0755 "$binary" "$work/binary/eci-vk"

# --- the image -------------------------------------------------------------------------------
image_ref="$repo_prefix/eci-virtual-kubelet:$tag"
run image-build buildah bud --quiet --pull=false --timestamp "$epoch" --identity-label=false \
  --build-context build="$work/binary" --build-arg RUNTIME_BASE="$base_ref" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$source_url" \
  -t "$image_ref" -f Dockerfile .
# The image this tag named before, when it changed: untagged now, and of no further use (the
# store is this script's own).
run image-prune buildah rmi --prune

user="$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$image_ref")"
[[ "$user" == "65532:65532" ]] || die "the image runs as '$user', not 65532:65532"
if $check; then
  # As the chart runs it: the image's own user, read-only root filesystem, no capabilities.
  run image-check podman run --rm --read-only --read-only-tmpfs=false --cap-drop=all \
    --security-opt=no-new-privileges --network=none "$image_ref" --version
  grep -q '^eci-vk ' "$logs/image-check.log" || die "unexpected output of eci-vk --version: $(cat "$logs/image-check.log")"
fi

# --- push and report ---------------------------------------------------------------------------
mib() { numfmt --to=iec-i --suffix=B --format=%.1f "$1"; }
uncompressed="$(podman image inspect --format '{{.Size}}' "$image_ref")"
if $push; then
  run image-push buildah push --quiet --tls-verify=false --digestfile "$work/digest" \
    "$image_ref" "docker://$image_ref"
  digest="$(cat "$work/digest")"
  manifest="$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$registry/v2/eci-virtual-kubelet/manifests/$digest")"
  compressed="$(jq '.config.size + ([.layers[].size] | add)' <<<"$manifest")"
  top="$(jq '.layers[-1].size' <<<"$manifest")"
  echo "$image_ref@$digest"
  echo "  size: $(mib "$compressed") compressed as pushed (runtime base $(mib $((compressed - top))), eci-vk layer $(mib "$top")), $(mib "$uncompressed") uncompressed"
else
  echo "$image_ref (not pushed)"
  echo "  size: $(mib "$uncompressed") uncompressed"
fi
if $check; then
  echo "  ran as 65532:65532 on a read-only root filesystem: $(head -n 1 "$logs/image-check.log")"
fi
