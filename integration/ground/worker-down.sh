#!/usr/bin/env bash
# Stops the worker node of worker-up.sh and removes everything it made, whatever state it was
# left in (a test that failed halfway, a daemon that died): its processes, containers and shims,
# its mount namespace and so every mount in it, its network namespace and veth pair (and with it
# kube-proxy's iptables rules), its cgroups, the host directories it created, its Node object and
# the endpoint of default/kubernetes (while the API server answers), and its data.
# A no-op where no worker runs. down.sh runs it first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
W="$WORKER_DIR"
NS="$GROUND_WORKER_NETNS"
mntns="$W/ns/mnt"

# mounts_below: the mount points at or under RUN_DIR/worker, deepest first.
mounts_below() {
  findmnt -rn -o TARGET | awk -v w="$W" '$0 == w || index($0, w "/") == 1 {print length, $0}' \
    | sort -rn | cut -d' ' -f2-
}

# cgroup_dirs: the worker's cgroup root in each hierarchy that has one.
cgroup_dirs() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -d "$h$GROUND_WORKER_CGROUP" ]] && echo "$h$GROUND_WORKER_CGROUP"
  done
  return 0
}

# worker_pids: every process of the worker: in its cgroups (containers), in its network
# namespace (kubelet, containerd, shims, the relays' inner ends) or in its mount namespace.
worker_pids() {
  local d
  for d in $(cgroup_dirs); do
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  done
  if [[ -e "/run/netns/$NS" ]]; then ip netns pids "$NS" 2>/dev/null || true; fi
  if findmnt -rn --mountpoint "$mntns" >/dev/null 2>&1; then
    local ns pid
    ns="mnt:[$(stat -L -c %i "$mntns")]"
    for pid in /proc/[0-9]*; do
      [[ "$(readlink "$pid/ns/mnt" 2>/dev/null)" == "$ns" ]] && echo "${pid#/proc/}"
    done
  fi
  return 0
}

# kube-proxy and the kubelet first, so that they restart nothing; containerd then, gracefully where
# it can.
stop_daemon worker-kube-proxy
stop_daemon worker-kubelet
stop_daemon worker-containerd
# What is left: containers (their shims do not stop with containerd) and anything else there.
for attempt in $(seq 1 40); do
  pids="$(worker_pids | sort -u | grep -v "^$$\$" || true)"
  [[ -z "$pids" ]] && break
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  ((attempt < 40)) || log "warning: worker processes still alive: $(tr '\n' ' ' <<<"$pids")"
  sleep 0.25
done
stop_daemon worker-relay

# The mount namespace: once no process is in it, releasing its bind mount frees it and unmounts
# everything in it. Then anything under RUN_DIR/worker that still is a mount point (deepest first).
if findmnt -rn --mountpoint "$mntns" >/dev/null 2>&1; then umount "$mntns"; fi
if findmnt -rn --mountpoint "$W/ns" >/dev/null 2>&1; then umount "$W/ns"; fi
for attempt in $(seq 1 5); do
  mounts="$(mounts_below)"
  [[ -z "$mounts" ]] && break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<<"$mounts"
done

# The network: deleting the namespace deletes the pods' bridge and the veth pair with it.
if [[ -e "/run/netns/$NS" ]]; then ip netns delete "$NS"; fi
ip link delete "$GROUND_WORKER_LINK" 2>/dev/null || true

# The cgroups, children first (a cgroup is removable once its processes are gone).
for attempt in $(seq 1 20); do
  left=""
  for d in $(cgroup_dirs); do
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || left+=" $d"
  done
  [[ -z "$left" ]] && break
  ((attempt < 20)) || log "warning: cgroups left:$left"
  sleep 0.25
done

# The host directories worker-up.sh created: mount points of its private tmpfs, and /run/netns
# (itself a mount) when no other network namespace is left in it.
if [[ -f "$W/created-dirs" ]]; then
  while read -r d; do
    if [[ "$d" == /run/netns ]]; then
      [[ -z "$(ls -A /run/netns 2>/dev/null)" ]] || continue
      while findmnt -rn --mountpoint /run/netns >/dev/null 2>&1; do umount /run/netns || break; done
    fi
    rmdir "$d" 2>/dev/null || true
  done <"$W/created-dirs"
fi

# The Node object and the pods bound to it, so that the cluster keeps neither a NotReady node
# nor pods that a worker started later under the same name would find as its own; and the
# EndpointSlice of default/kubernetes and the API server's kubelet binding worker-up.sh made.
if [[ -f "$RUN_DIR/ground.env" ]]; then
  sed -i '/^GROUND_WORKER_/d' "$RUN_DIR/ground.env"
  kubectl="$(sed -n 's/^GROUND_BIN=//p' "$RUN_DIR/ground.env")/kubectl"
  if [[ -x "$kubectl" ]]; then
    k() { "$kubectl" --kubeconfig "$RUN_DIR/admin.kubeconfig" --cache-dir "$RUN_DIR/kube-cache" \
      --request-timeout 10s "$@" >/dev/null 2>&1 || true; }
    k delete pods --all-namespaces --field-selector "spec.nodeName=$GROUND_WORKER_NAME" \
      --force --grace-period 0 --wait=false
    k delete node "$GROUND_WORKER_NAME" --ignore-not-found --wait=false
    k delete endpointslices -n default -l endpointslice.kubernetes.io/managed-by=eci-vk-ground-worker \
      --wait=false
    k delete clusterrolebinding "ground:apiserver-kubelet-client" --ignore-not-found
  fi
fi

# The worker's data: only once nothing is mounted below it, and never across file systems.
if [[ -d "$W" ]]; then
  if [[ -n "$(mounts_below)" ]]; then
    die "mounts left under $W, not deleting it: $(mounts_below | tr '\n' ' ')"
  fi
  rm -rf --one-file-system "$W"
  log "worker stopped and removed"
fi
