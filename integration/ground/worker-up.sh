#!/usr/bin/env bash
# Adds a real worker node to the running test ground, or leaves it be where it already runs:
# containerd, a kubelet and kube-proxy (all built by build.sh) in a network namespace of their
# own, so that pods the virtual nodes must not take run on a real node. Start the ground first
# (up.sh); stop the worker with worker-down.sh (down.sh does it too). Most tests do not need it.
#
#   host netns        127.0.0.1: kube-apiserver, registries      10.255.253.1 (GROUND_WORKER_LINK)
#                         ^ unix sockets, RUN_DIR/worker/relay     :APISERVER_PORT socat → 127.0.0.1
#                         |                                          | veth
#   worker netns      127.0.0.1: socat relays (apiserver,          10.255.253.2 eth0: kubelet :10250
#   (GROUND_WORKER_     registries) ← kubelet, containerd,         cni0 10.255.252.1/24 ← pods
#    NETNS)             kube-proxy                                 kube-proxy's iptables rules
#
# The kubelet, containerd and kube-proxy see the API server and the registries at their usual
# loopback addresses through socat relays, so every certificate and image name stays as on the
# host; the API server reaches the kubelet (logs, exec) at the node's InternalIP over the veth
# pair. They run in a mount namespace of the worker's own as well: every mount they make
# (overlays, shm, secrets' tmpfs, network namespaces of pods) goes away with it, and the few host
# directories they insist on writing (/run/containerd, /var/lib/cni, /var/log/containers,
# /var/lib/kubelet) are private tmpfs there.
# Pods reach Services as in a real cluster, through kube-proxy's rules in the worker's network
# namespace (never the host's), and the API server as in-cluster clients do, at default/kubernetes
# (10.96.0.1:443): its endpoint is the host's end of the veth, where one more relay hands the
# connection to the API server.
# What this machine asks for besides: cgroup v1 (failCgroupV1: false, the cgroupfs driver, a
# cgroup root of the worker's own), no CAP_SYS_RESOURCE (containerd's restrict_oom_score_adj,
# kube-proxy's oomScoreAdj), no swap check, and kernel-wide sysctls the kubelet and kube-proxy
# would set that stay untouched (see below).
# Logs: RUN_DIR/logs/worker-{relay,containerd,kubelet,kube-proxy}.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f "$RUN_DIR/ground.env" ]] || die "no test ground runs in $RUN_DIR; start it with $GROUND_DIR/up.sh first"

"$GROUND_DIR/install-packages.sh"
bin="$("$GROUND_DIR/build.sh")"
"$GROUND_DIR/pki.sh"
pki="$RUN_DIR/pki"
W="$WORKER_DIR"
NS="$GROUND_WORKER_NETNS"
mntns="$W/ns/mnt"
kubectl_admin() {
  "$bin/kubectl" --kubeconfig "$RUN_DIR/admin.kubeconfig" --cache-dir "$RUN_DIR/kube-cache" "$@"
}
in_worker_net() { nsenter --net="/run/netns/$NS" -- "$@"; }
# The prefix that runs a command in the worker's network and mount namespaces.
in_worker=(nsenter --mount="$mntns" --net="/run/netns/$NS" --)
mkdir -p "$W"/{containerd/certs.d,cni/net.d,cni/ipam,kubelet,pod-logs,relay,ns,sysctl}
wait_until kube-apiserver 60 kubectl_admin get --raw /readyz

# --- network: a namespace, a veth pair to the host ----------------------------------------------
# (`ip netns add` makes /run/netns, a mount of its own, where it is missing: worker-down.sh
# removes it again, when empty, if it was made here.)
[[ -d /run/netns ]] || echo /run/netns >>"$W/created-dirs"
# (A test of the file, not of `ip netns list | grep -q`: under pipefail grep's early exit can
# make the pipeline fail and the add run twice.)
[[ -e "/run/netns/$NS" ]] || ip netns add "$NS"
if ! ip link show "$GROUND_WORKER_LINK" >/dev/null 2>&1; then
  ip link add "$GROUND_WORKER_LINK" type veth peer name eth0 netns "$NS"
fi
# Point-to-point addresses: each end routes only the other, and the namespace has no default
# route, so nothing in it reaches past the host. The host routes the pods' addresses to the
# node: the API server's connections to pods (pods/proxy) and the host's answers to them stay
# on the veth instead of following the host's default route out.
ip addr replace "$GROUND_WORKER_HOST_IP" peer "$GROUND_WORKER_IP" dev "$GROUND_WORKER_LINK"
ip link set "$GROUND_WORKER_LINK" up
ip -n "$NS" link set lo up
ip -n "$NS" addr replace "$GROUND_WORKER_IP" peer "$GROUND_WORKER_HOST_IP" dev eth0
ip -n "$NS" link set eth0 up
ip route replace "$GROUND_WORKER_POD_CIDR" via "$GROUND_WORKER_IP" dev "$GROUND_WORKER_LINK"

# --- relays: the namespace's 127.0.0.1:PORT → a unix socket → the host's 127.0.0.1:PORT ------------
# And one for the pods: the host's end of the veth, GROUND_WORKER_HOST_IP:APISERVER_PORT → the
# API server, the endpoint of default/kubernetes below (pods cannot use the namespace's loopback).
relay_ports=("$GROUND_APISERVER_PORT" "$GROUND_REGISTRY_PORT" "$GROUND_AUTH_REGISTRY_PORT")
# shellcheck disable=SC2016 # expanded by the inner bash
start_daemon worker-relay bash -c '
  w="$1" ns="$2" host_ip="$3" api_port="$4"; shift 4
  for port in "$@"; do
    socat "UNIX-LISTEN:$w/relay/$port.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port" &
    nsenter --net="/run/netns/$ns" -- socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
      "UNIX-CONNECT:$w/relay/$port.sock" &
  done
  socat "TCP-LISTEN:$api_port,bind=$host_ip,fork,reuseaddr" "TCP:127.0.0.1:$api_port" &
  wait' worker-relay "$W" "$NS" "$GROUND_WORKER_HOST_IP" "$GROUND_APISERVER_PORT" "${relay_ports[@]}"
wait_until "worker relay" 30 in_worker_net curl -sf "http://127.0.0.1:$GROUND_REGISTRY_PORT/v2/"
wait_until "worker relay" 30 in_worker_net curl -sfk "https://127.0.0.1:$GROUND_APISERVER_PORT/livez"
wait_until "worker relay" 30 in_worker_net curl -sfk "https://$GROUND_WORKER_HOST_IP:$GROUND_APISERVER_PORT/livez"

# --- the pod sandbox ("pause") image, from the ground's registry ------------------------------------
# Nothing outside this machine is reachable, so the sandbox image is busybox whose shell sleeps
# and exits on TERM, pushed where the worker's containerd finds it.
pause_image="127.0.0.1:$GROUND_REGISTRY_PORT/pause:3.10"
if ! curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:$GROUND_REGISTRY_PORT/v2/pause/manifests/3.10"; then
  IMAGE_CMD='["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]' \
    "$GROUND_DIR/push-busybox.sh" "127.0.0.1:$GROUND_REGISTRY_PORT" pause 3.10 >/dev/null
fi

# --- cgroups: the kubelet's --cgroup-root in every cgroup v1 hierarchy ---------------------------
# (This machine runs cgroup v1; the hierarchies are /sys/fs/cgroup/<controller>. The kubelet
# checks that its cgroup root exists in each before it starts; cpuset needs its CPUs and memory
# nodes copied from the parent, which a new v1 cpuset does not inherit.)
for h in /sys/fs/cgroup/*/; do
  h="${h%/}"
  [[ "$(stat -f -c %T "$h")" == cgroupfs ]] || continue
  mkdir -p "$h/$GROUND_WORKER_CGROUP"
  if [[ -f "$h/cpuset.cpus" ]]; then
    for f in cpuset.cpus cpuset.mems; do
      [[ -n "$(cat "$h/$GROUND_WORKER_CGROUP/$f")" ]] || cat "$h/$f" >"$h/$GROUND_WORKER_CGROUP/$f"
    done
  fi
done

# --- the mount namespace --------------------------------------------------------------------------
# Kept alive by a bind mount of it on RUN_DIR/worker/ns/mnt, which must sit on a private mount.
if ! findmnt -rn --mountpoint "$W/ns" >/dev/null; then
  mount --bind "$W/ns" "$W/ns"
  mount --make-private "$W/ns"
fi
if ! findmnt -rn --mountpoint "$mntns" >/dev/null; then
  # Host directories the daemons write to whatever their configuration says: containerd's shim
  # sockets (/run/containerd/s), libcni's result cache (/var/lib/cni), the kubelet's log
  # symlinks (/var/log/containers) and device plugin socket (/var/lib/kubelet/device-plugins).
  # Each becomes a private tmpfs; the ones made here for that are listed so that
  # worker-down.sh removes them again.
  private_dirs=(/run/containerd /var/lib/cni /var/log/containers /var/lib/kubelet)
  for d in "${private_dirs[@]}"; do
    if [[ ! -d "$d" ]]; then
      mkdir -p "$d" && echo "$d" >>"$W/created-dirs"
    fi
  done
  # The kubelet sets six kernel-wide sysctls at start (vm.overcommit_memory=1, kernel.panic=10,
  # kernel.panic_on_oops=1, ...): they would change this whole machine, the sandbox it runs in
  # included. In its mount namespace, those not already at its values read as set, read-only.
  declare -A kubelet_sysctls=([vm/overcommit_memory]=1 [vm/panic_on_oom]=0 [kernel/panic]=10
    [kernel/panic_on_oops]=1 [kernel/keys/root_maxkeys]=1000000 [kernel/keys/root_maxbytes]=25000000)
  masks=()
  for key in "${!kubelet_sysctls[@]}"; do
    if [[ "$(cat "/proc/sys/$key")" != "${kubelet_sysctls[$key]}" ]]; then
      echo "${kubelet_sysctls[$key]}" >"$W/sysctl/${key//\//.}"
      masks+=("$key")
    fi
  done
  touch "$mntns"
  # shellcheck disable=SC2016 # expanded by the inner bash
  unshare --mount="$mntns" --propagation private -- bash -c '
    set -e
    sysctl_dir="$1" private_dirs="$2"; shift 2
    for d in $private_dirs; do mount -t tmpfs -o mode=755 tmpfs "$d"; done
    for key in "$@"; do
      mount --bind "$sysctl_dir/${key//\//.}" "/proc/sys/$key"
      mount -o remount,bind,ro "/proc/sys/$key"
    done' worker-mntns "$W/sysctl" "${private_dirs[*]}" "${masks[@]}"
fi

# --- containerd --------------------------------------------------------------------------------------
# Images keep their loopback names (127.0.0.1:PORT/…): the relays bring the registries there.
# restrict_oom_score_adj: no container's oom_score_adj goes below containerd's own, because
# lowering it takes CAP_SYS_RESOURCE, which this machine's sandbox does not grant (runc's
# "failed to update /proc/self/oom_score_adj: Permission denied" for every pod sandbox, at -998).
mkdir -p "$W/containerd/certs.d/127.0.0.1:$GROUND_REGISTRY_PORT" \
  "$W/containerd/certs.d/127.0.0.1:$GROUND_AUTH_REGISTRY_PORT"
cat >"$W/containerd/certs.d/127.0.0.1:$GROUND_REGISTRY_PORT/hosts.toml" <<TOML
server = "http://127.0.0.1:$GROUND_REGISTRY_PORT"
[host."http://127.0.0.1:$GROUND_REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
TOML
cat >"$W/containerd/certs.d/127.0.0.1:$GROUND_AUTH_REGISTRY_PORT/hosts.toml" <<TOML
server = "https://127.0.0.1:$GROUND_AUTH_REGISTRY_PORT"
[host."https://127.0.0.1:$GROUND_AUTH_REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
  ca = "$pki/ca.crt"
TOML
cat >"$W/containerd/config.toml" <<TOML
version = 4
root = "$W/containerd/root"
state = "$W/containerd/state"
[plugins.'io.containerd.server.v1.grpc']
  address = "$W/containerd/containerd.sock"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$W/containerd/containerd.sock.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$W/containerd/opt"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$pause_image"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$W/containerd/certs.d"
[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$W/containerd/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$W/cni/net.d"
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
# The pods' network: a bridge in the worker's namespace, addresses from host-local.
cat >"$W/cni/net.d/10-ground-worker.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "ground-worker",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$GROUND_WORKER_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$W/cni/ipam"
      }
    }
  ]
}
JSON
# containerd starts its shims (containerd-shim-runc-v2, beside it in bin/) from PATH.
start_daemon worker-containerd "${in_worker[@]}" env PATH="$bin:$PATH" "$bin/containerd" \
  --config "$W/containerd/config.toml"
wait_until worker-containerd 60 "$bin/ctr" --address "$W/containerd/containerd.sock" version

# --- kubelet ------------------------------------------------------------------------------------------
# This machine's cgroups are v1, which the kubelet refuses since 1.35 unless failCgroupV1 is
# false. cgroupfs driver (no systemd), the API over x509 with webhook authorization, its serving
# certificate from the ground's CA.
cat >"$W/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GROUND_WORKER_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/worker-kubelet.crt
tlsPrivateKeyFile: $pki/worker-kubelet.key
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$W/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$GROUND_WORKER_CGROUP
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failCgroupV1: false
failSwapOn: false
podLogsDir: $W/pod-logs
volumePluginDir: $W/kubelet/volume-plugins
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 95
YAML
# The API server's kubelet client may use the kubelet API (logs, exec, port-forward).
kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "ground:apiserver-kubelet-client"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kubelet-api-admin"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}
YAML
start_daemon worker-kubelet "${in_worker[@]}" "$bin/kubelet" --config "$W/kubelet/config.yaml" \
  --kubeconfig "$RUN_DIR/worker-kubelet-client.kubeconfig" --root-dir "$W/kubelet" \
  --cert-dir "$W/kubelet/pki" --hostname-override "$GROUND_WORKER_NAME" --node-ip "$GROUND_WORKER_IP"
node_ready() {
  [[ "$(kubectl_admin get node "$GROUND_WORKER_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
wait_until "worker node $GROUND_WORKER_NAME" 120 node_ready

# --- Services: kube-proxy, and an endpoint for default/kubernetes ----------------------------------
# kube-proxy in iptables mode (iptables-nft, as on this host) in the worker's network namespace:
# its rules live and die there, the host's tables stay untouched. Its client certificate is
# system:kube-proxy's (pki.sh). Conntrack: a zero max per core and zero timeouts leave the
# sysctls as they are (nf_conntrack_max is kernel-wide, writable only from the host's namespace).
# --oom-score-adj 0: its default -999 takes CAP_SYS_RESOURCE, as for containerd above. NodePorts
# on the node's address only, so it sets no route_localnet either. The pods' bridge hands their
# traffic to iptables (net.bridge.bridge-nf-call-iptables is 1 in a new namespace), so a Service
# in front of a pod on the same bridge needs no masquerading. Flags, not a configuration file:
# kube-proxy exits when its file is written, as a second run of this script would do.
start_daemon worker-kube-proxy "${in_worker[@]}" "$bin/kube-proxy" \
  --kubeconfig "$RUN_DIR/kube-proxy.kubeconfig" --hostname-override "$GROUND_WORKER_NAME" \
  --proxy-mode iptables --cluster-cidr "$GROUND_WORKER_POD_CIDR" --detect-local-mode ClusterCIDR \
  --nodeport-addresses primary --healthz-bind-address 127.0.0.1:10256 \
  --metrics-bind-address 127.0.0.1:10249 --oom-score-adj 0 \
  --conntrack-max-per-core 0 --conntrack-min 0 \
  --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0
# Its health check answers 200 once it has programmed the Services and endpoints it was given.
wait_until worker-kube-proxy 60 in_worker_net curl -sf http://127.0.0.1:10256/healthz

# The ground's API server listens on the host's loopback and keeps no endpoints of its own
# (--endpoint-reconciler-type none), so default/kubernetes, the 10.96.0.1:443 of every pod's
# in-cluster configuration, has none. This EndpointSlice gives it the relay on the host's end of
# the veth; its managed-by label keeps the EndpointSlice controllers off it and tells
# worker-down.sh which one to delete. The API server's certificate names 10.96.0.1.
kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-ground-worker
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: eci-vk-ground-worker
addressType: IPv4
endpoints:
- addresses: ["$GROUND_WORKER_HOST_IP"]
  conditions: {ready: true}
ports:
- {name: https, port: $GROUND_APISERVER_PORT, protocol: TCP}
YAML

# Clients find the worker in ground.env.
sed -i '/^GROUND_WORKER_/d' "$RUN_DIR/ground.env"
cat >>"$RUN_DIR/ground.env" <<ENV
GROUND_WORKER_NAME=$GROUND_WORKER_NAME
GROUND_WORKER_IP=$GROUND_WORKER_IP
GROUND_WORKER_HOST_IP=$GROUND_WORKER_HOST_IP
ENV
log "worker ready: node $GROUND_WORKER_NAME at $GROUND_WORKER_IP, logs in $RUN_DIR/logs/worker-*.log"
