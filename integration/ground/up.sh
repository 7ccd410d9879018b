#!/usr/bin/env bash
# Starts the test ground, or leaves it be where it already runs: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler on loopback, a plain OCI registry and an
# authenticated (htpasswd + TLS) one. Writes RUN_DIR/ground.env, which tells clients
# (the test harness, scripts, a person) where everything is.
#   --fresh   wipe the cluster's and registries' data first (the PKI and tools stay)
# With GROUND_WORKER=1 it also starts the worker node (worker-up.sh: a real kubelet and
# containerd), which most tests do not need; down.sh stops it either way.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ "${1:-}" == "--fresh" ]]; then "$GROUND_DIR/down.sh" --purge; fi

"$GROUND_DIR/install-packages.sh"
bin="$("$GROUND_DIR/build.sh")"
"$GROUND_DIR/pki.sh"
pki="$RUN_DIR/pki"
mkdir -p "$RUN_DIR"

# --- the virtual nodes' address ------------------------------------------------------------------
if ! ip -4 addr show dev "$GROUND_NODE_LINK" 2>/dev/null | grep -q "inet $GROUND_NODE_IP/"; then
  # A bridge with no ports, not a dummy link: some kernels (this project's CI among them) have
  # no dummy driver, and every kernel that runs the agent has bridges.
  ip link add "$GROUND_NODE_LINK" type bridge 2>/dev/null || true
  ip addr add "$GROUND_NODE_IP/32" dev "$GROUND_NODE_LINK"
  ip link set "$GROUND_NODE_LINK" up
fi

# --- etcd ------------------------------------------------------------------------------------
start_daemon etcd "$bin/etcd" --name ground --data-dir "$RUN_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$GROUND_ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$GROUND_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$GROUND_ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$GROUND_ETCD_PEER_PORT" \
  --initial-cluster "ground=http://127.0.0.1:$GROUND_ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
wait_until etcd 60 curl -sf "http://127.0.0.1:$GROUND_ETCD_PORT/health"

# --- kube-apiserver (kubeadm's defaults: Node,RBAC authorization, NodeRestriction) ------------
start_daemon kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$GROUND_ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$GROUND_APISERVER_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP,Hostname \
  --endpoint-reconciler-type none
kubectl_admin() { "$bin/kubectl" --kubeconfig "$RUN_DIR/admin.kubeconfig" "$@"; }
wait_until kube-apiserver 120 kubectl_admin get --raw /readyz

# --- kube-controller-manager and kube-scheduler ----------------------------------------------
# Client rates: the ground must not be slower than a production control plane at creating and
# binding pods, because the scale bench measures the node against ECI's create quota (a burst
# of 100, then 20/s). At the defaults (controller-manager 20 requests/s, scheduler 50/s) the
# ReplicaSet alone needs 50 s to create 1,000 pods, longer than the quota allows. One
# ReplicaSet is synced by one worker, so --concurrent-replicaset-syncs (5) does not limit it.
# (The scheduler's client flags, like its --kubeconfig, are deprecated in favour of a config
# file but still honoured without one.)
start_daemon kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$RUN_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$RUN_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$RUN_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$GROUND_CONTROLLER_MANAGER_PORT" \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=true --leader-elect=false \
  --kube-api-qps 200 --kube-api-burst 400
start_daemon kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$RUN_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$RUN_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$RUN_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$GROUND_SCHEDULER_PORT" --leader-elect=false \
  --kube-api-qps 200 --kube-api-burst 400
wait_until kube-controller-manager 60 curl -sfk "https://127.0.0.1:$GROUND_CONTROLLER_MANAGER_PORT/healthz"
wait_until kube-scheduler 60 curl -sfk "https://127.0.0.1:$GROUND_SCHEDULER_PORT/healthz"
# Pods need the default service account, which the controller-manager creates.
wait_until "default service account" 60 kubectl_admin get serviceaccount default -n default

# --- OCI registries ----------------------------------------------------------------------------
write_registry_config() { # NAME PORT EXTRA-YAML
  mkdir -p "$RUN_DIR/$1/data"
  cat >"$RUN_DIR/$1/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $RUN_DIR/$1/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$2
  secret: ground-$1
health:
  storagedriver: {enabled: false}
$3
YAML
}
write_registry_config registry "$GROUND_REGISTRY_PORT" ""
write_registry_config registry-auth "$GROUND_AUTH_REGISTRY_PORT" "  tls: {certificate: $pki/registry.crt, key: $pki/registry.key}
auth:
  htpasswd: {realm: eci-vk-ground, path: $pki/registry.htpasswd}"
# The TLS block above belongs to http:, so move it there (YAML keys must stay unique).
python3 - "$RUN_DIR/registry-auth/config.yml" <<'PY'
import sys
path = sys.argv[1]
lines = open(path).read().splitlines()
tls = [l for l in lines if l.startswith("  tls:")]
rest = [l for l in lines if not l.startswith("  tls:")]
out = []
for l in rest:
    out.append(l)
    if l.startswith("  secret:"):
        out.extend(tls)
open(path, "w").write("\n".join(out) + "\n")
PY
start_daemon registry docker-registry serve "$RUN_DIR/registry/config.yml"
start_daemon registry-auth docker-registry serve "$RUN_DIR/registry-auth/config.yml"
wait_until registry 30 curl -sf "http://127.0.0.1:$GROUND_REGISTRY_PORT/v2/"
# 401 without credentials is the sign of life here.
wait_until registry-auth 30 bash -c "curl -s -o /dev/null -w '%{http_code}' --cacert '$pki/ca.crt' 'https://127.0.0.1:$GROUND_AUTH_REGISTRY_PORT/v2/' | grep -q 401"

# The worker's lines, which worker-up.sh appends, stay while the worker runs.
worker_env="$(grep '^GROUND_WORKER_' "$RUN_DIR/ground.env" 2>/dev/null || true)"
# kubectl's discovery cache is per ground (KUBECACHEDIR), not the user's ~/.kube/cache: that one
# is keyed by address alone, and a fresh cluster on the same port is not the one it describes.
cat >"$RUN_DIR/ground.env" <<ENV
GROUND_BIN=$bin
KUBECONFIG=$RUN_DIR/admin.kubeconfig
KUBECACHEDIR=$RUN_DIR/kube-cache
GROUND_APISERVER=https://127.0.0.1:$GROUND_APISERVER_PORT
GROUND_CA=$pki/ca.crt
GROUND_REGISTRY=127.0.0.1:$GROUND_REGISTRY_PORT
GROUND_AUTH_REGISTRY=127.0.0.1:$GROUND_AUTH_REGISTRY_PORT
GROUND_REGISTRY_USER=$GROUND_REGISTRY_USER
GROUND_REGISTRY_PASSWORD=$GROUND_REGISTRY_PASSWORD
GROUND_NODE_IP=$GROUND_NODE_IP
ENV
if [[ -n "$worker_env" ]] && is_running worker-kubelet; then echo "$worker_env" >>"$RUN_DIR/ground.env"; fi
log "ready: source $RUN_DIR/ground.env (kubectl is $bin/kubectl)"
if [[ "${GROUND_WORKER:-0}" == 1 ]]; then "$GROUND_DIR/worker-up.sh"; fi
