#!/usr/bin/env bash
# The peer benchmark (issue #21, BENCHMARKS.md "Peer"): this node against virtual-kubelet (Go,
# github.com/virtual-kubelet/virtual-kubelet at a pinned tag) with its mock provider, one after
# the other, on the same test ground and with the same Deployment of 1,000 replicas. For each:
# the time from the Deployment's create to all pods Running, the time from its delete to all pods
# gone, the node process's API-server requests over create + idle minutes + delete (per pod), and
# its peak RSS (VmHWM) and CPU seconds. The pods (a nodeSelector on the node's hostname label, a
# toleration of its taint, an image nothing pulls) keep the default terminationGracePeriodSeconds
# of 30 s: with 0 the API server would remove each pod at once and the node would have no part
# in "all deleted".
#
#   benches/peer.sh [--replicas 1000] [--idle 300] [--sides ours,peer[,peer-queue-off]] [--eci-vk PATH]
#
# Results: a table on stdout and target/bench/peer.json (logs in target/bench/peer-run/).
#
# What each side runs with, and what was changed to turn client rate limits off:
# * ours: `eci-vk emulator --runtime simulated --no-throttle` (ECI's quotas off in the cloud)
#   and `eci-vk run` with its defaults but for its two client-side limits, both turned off:
#   `--kube-api-qps 0` (its pace of writes to the API server) and `--eci-client-budget false`
#   (its local copy of ECI's quotas: writes a burst of 100, then 20/s; reads 1,900/min).
# * the peer: built from the Go module proxy at $VK_TAG with one line added to
#   node/nodeutil/client.go, `config.QPS = -1` before `kubernetes.NewForConfig`: client-go's
#   token bucket (5 requests/s, burst 10 by default) is off. The peer's CLI has no flag for it.
#   The side `peer-queue-off` is a second build that also drops the overall bucket (10/s, burst
#   100) of its pod controller's work queues (node/podcontroller.go), keeping their per-item
#   backoff: that bucket paces every pod the peer creates, updates or deletes.
#
# How API-server requests are counted: each node authenticates as a ServiceAccount of its own
# (a token, bound to cluster-admin), and FlowSchemas of the bench's own match that account (one
# per kind of resource: pods/status, pods, events, leases, nodes, imagecaches, service-account
# tokens, configmaps, secrets, services, and the rest) and send it to the `exempt` priority level
# (no server-side queueing on either side, as for the ground's admin). kube-apiserver's own counter
# apiserver_flowcontrol_dispatched_requests_total{flow_schema=…} then counts every request of
# that node and of nothing else (watches included, one each), whatever the controller-manager
# and the scheduler do meanwhile. The bench itself reads as the ground's admin.
#
# The ground: integration/ground/up.sh's, in GROUND_RUN_DIR or target/ground/run; started with
# up.sh when it does not run (and then left running, like scripts/up.sh). Everything the bench
# makes on it (namespaces, accounts, bindings, flow schemas, nodes, leases, image caches) and
# every process it starts is removed at exit, on failure too. Heavy steps (builds, the measured
# runs) take the lock BENCH_LOCK (default /tmp/eci-bench.lock) so that they never overlap
# another bench or build on the machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VK_MODULE=github.com/virtual-kubelet/virtual-kubelet
# The latest tag the Go module proxy lists (`go list -m -versions $VK_MODULE`, 2026-12-07).
VK_TAG=v1.14.1
LOCK="${BENCH_LOCK:-/tmp/eci-bench.lock}"
RUN_DIR="${GROUND_RUN_DIR:-$ROOT/target/ground/run}"
OUT="$ROOT/target/bench"
WORK="$OUT/peer-run"

replicas=1000
idle=300
sides="ours,peer"
eci_vk=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --replicas) replicas="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    --sides) sides="$2"; shift 2 ;;
    --eci-vk) eci_vk="$2"; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "peer.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { echo "[peer] $*" >&2; }
die() { echo "[peer] error: $*" >&2; exit 1; }
mkdir -p "$OUT" "$WORK"

# --- the ground ------------------------------------------------------------------------------
ground_ready() {
  [[ -f "$RUN_DIR/ground.env" ]] || return 1
  local bin kc
  bin="$(sed -n 's/^GROUND_BIN=//p' "$RUN_DIR/ground.env")"
  kc="$(sed -n 's/^KUBECONFIG=//p' "$RUN_DIR/ground.env")"
  "$bin/kubectl" --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1
}
if ! ground_ready; then
  say "no running test ground in $RUN_DIR: starting it with integration/ground/up.sh"
  # -o: the ground's daemons must not inherit the lock.
  GROUND_RUN_DIR="$RUN_DIR" flock -o "$LOCK" "$ROOT/integration/ground/up.sh"
fi
GROUND_BIN="$(sed -n 's/^GROUND_BIN=//p' "$RUN_DIR/ground.env")"
ADMIN_KUBECONFIG="$(sed -n 's/^KUBECONFIG=//p' "$RUN_DIR/ground.env")"
GROUND_APISERVER="$(sed -n 's/^GROUND_APISERVER=//p' "$RUN_DIR/ground.env")"
GROUND_CA="$(sed -n 's/^GROUND_CA=//p' "$RUN_DIR/ground.env")"
export KUBECACHEDIR="$RUN_DIR/kube-cache"
kubectl() { "$GROUND_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# --- the peer: virtual-kubelet with its mock provider, from the Go module proxy --------------
# Two builds: `peer` (client-go's rate limiter off) and `peer-queue-off` (also without the overall
# bucket of the pod controller's work queues).
build_peer() { # VARIANT → sets VK_BIN
  local variant="$1" dir="$ROOT/target/tools/virtual-kubelet-$VK_TAG-$1" mod_dir client_go pc
  VK_BIN="$dir/virtual-kubelet"
  [[ -x "$VK_BIN" ]] && return 0
  command -v go >/dev/null || die "no go on PATH: the peer cannot be built"
  say "building virtual-kubelet $VK_TAG (mock provider, $variant) into $dir"
  mkdir -p "$dir"
  # The module's source as the proxy serves it (GOPROXY from the environment).
  mod_dir="$(GOFLAGS=-mod=mod go mod download -json "$VK_MODULE@$VK_TAG" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$mod_dir" ]] || die "go mod download -json $VK_MODULE@$VK_TAG gave no source directory"
  rm -rf "$dir/src"
  cp -r "$mod_dir" "$dir/src"
  chmod -R u+w "$dir/src"
  # Client-side rate limit off: client-go disables its token bucket for a negative QPS.
  client_go="$dir/src/node/nodeutil/client.go"
  grep -q $'^\treturn kubernetes.NewForConfig(config)$' "$client_go" ||
    die "$client_go no longer has the line the patch expects"
  sed -i $'s|^\treturn kubernetes.NewForConfig(config)$|\tconfig.QPS = -1 // benches/peer.sh: client-go rate limiter off\\n\treturn kubernetes.NewForConfig(config)|' "$client_go"
  if [[ "$variant" == qps-off-queue-off ]]; then
    # The work queues' default limiter is the max of a per-item exponential backoff (5 ms to
    # 1000 s) and an overall bucket of 10/s, burst 100; keep the first only.
    pc="$dir/src/node/podcontroller.go"
    grep -q 'workqueue.DefaultTypedControllerRateLimiter\[any\]()' "$pc" ||
      die "$pc no longer has the limiter the patch expects"
    sed -i 's|workqueue.DefaultTypedControllerRateLimiter\[any\]()|workqueue.NewTypedItemExponentialFailureRateLimiter[any](5*time.Millisecond, 1000*time.Second)|' "$pc"
  fi
  local build_cmd=(env GOFLAGS=-mod=mod go build -o "$VK_BIN" ./cmd/virtual-kubelet)
  if ! (cd "$dir/src" && flock -o "$LOCK" "${build_cmd[@]}") >"$dir/build.log" 2>&1; then
    tail -20 "$dir/build.log" >&2
    python3 - "$OUT/peer.json" "$dir" "${build_cmd[*]}" <<'PY'
import json, sys
out, d, cmd = sys.argv[1:4]
err = open(f"{d}/build.log").read()[-4000:]
json.dump({"peer": {"built": False, "command": f"cd {d}/src && {cmd}", "error": err}},
          open(out, "w"), indent=2)
PY
    die "the peer could not be built: cd $dir/src && ${build_cmd[*]} (log: $dir/build.log)"
  fi
}
VK_BIN=""
declare -A PEER_BINS=()
for side in ${sides//,/ }; do
  case "$side" in
    peer) build_peer qps-off; PEER_BINS[peer]="$VK_BIN" ;;
    peer-queue-off) build_peer qps-off-queue-off; PEER_BINS[peer-queue-off]="$VK_BIN" ;;
    ours) ;;
    *) die "unknown side $side (ours, peer, peer-queue-off)" ;;
  esac
done

# --- ours: eci-vk, release build of this checkout ---------------------------------------------
if [[ "$sides" == *ours* && -z "$eci_vk" ]]; then
  say "cargo build --release --bin eci-vk (a no-op when fresh)"
  (cd "$ROOT" && flock -o "$LOCK" cargo build --release --quiet --bin eci-vk)
  eci_vk="$ROOT/target/release/eci-vk"
fi
[[ "$sides" != *ours* || -x "$eci_vk" ]] || die "no eci-vk binary at $eci_vk"

# --- the measured runs, under the lock --------------------------------------------------------
exec 9>"$LOCK"
say "waiting for $LOCK"
flock 9

id="$(printf '%04x' $(($$ & 0xffff)))"
AUTH_NS="peer-bench-$id"
ADMIN_DIR="$WORK/admin"
mkdir -p "$ADMIN_DIR"
chmod 700 "$ADMIN_DIR"
# The bench's own reads go as the admin (its client certificate, for python's ssl).
sed -n 's/^ *client-certificate-data: //p' "$ADMIN_KUBECONFIG" | base64 -d >"$ADMIN_DIR/admin.crt"
sed -n 's/^ *client-key-data: //p' "$ADMIN_KUBECONFIG" | base64 -d >"$ADMIN_DIR/admin.key"
chmod 600 "$ADMIN_DIR/admin.key"

# Everything to undo, per side: pids, namespaces, nodes, cluster objects.
declare -a PIDS=()
declare -a NAMESPACES=()
declare -a NODES=()
declare -a CLUSTER_OBJECTS=()
declare -a LEASES=()
IMAGE_CACHE_CLASSES=()

stop_pid() { # PID: SIGTERM, then SIGKILL after 30 s
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  say "pid $pid did not stop within 30 s of SIGTERM: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? ns pid obj class lease node
  set +e
  say "cleaning up"
  # Pods and caches go through the nodes while they still run: delete, wait a little.
  for ns in "${NAMESPACES[@]}"; do
    kubectl delete deployment --all -n "$ns" --wait=false >/dev/null 2>&1
  done
  for class in "${IMAGE_CACHE_CLASSES[@]}"; do
    kubectl delete imagecaches -l "eci.alibabacloud.com/image-cache-class=$class" --wait=false >/dev/null 2>&1
  done
  for _ in $(seq 60); do
    local left=0
    for ns in "${NAMESPACES[@]}"; do
      left=$((left + $(kubectl get pods -n "$ns" --no-headers 2>/dev/null | wc -l)))
    done
    [[ $left -eq 0 ]] && break
    sleep 1
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  # What a stopped node left: pods and caches it can no longer finish.
  for ns in "${NAMESPACES[@]}"; do
    kubectl delete pods --all -n "$ns" --grace-period=0 --force >/dev/null 2>&1
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
  done
  for class in "${IMAGE_CACHE_CLASSES[@]}"; do
    for obj in $(kubectl get imagecaches -l "eci.alibabacloud.com/image-cache-class=$class" -o name 2>/dev/null); do
      kubectl patch "$obj" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
      kubectl delete "$obj" --wait=false >/dev/null 2>&1
    done
  done
  for node in "${NODES[@]}"; do kubectl delete node "$node" --ignore-not-found >/dev/null 2>&1; done
  for lease in "${LEASES[@]}"; do kubectl delete lease -n kube-system "$lease" --ignore-not-found >/dev/null 2>&1; done
  for obj in "${CLUSTER_OBJECTS[@]}"; do kubectl delete "$obj" --ignore-not-found >/dev/null 2>&1; done
  kubectl delete namespace "$AUTH_NS" --ignore-not-found --wait=false >/dev/null 2>&1
  rm -rf "$ADMIN_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One ServiceAccount per side, bound to cluster-admin, its requests counted by a FlowSchema.
kubectl create namespace "$AUTH_NS" >/dev/null
FS=""
# The node's requests by what they touch: one FlowSchema per kind (the first that matches
# counts a request; "other" takes the rest, non-resource URLs included).
KINDS=(pods-status:pods/status pods:pods events:events leases:leases nodes:nodes+nodes/status
  imagecaches:imagecaches+imagecaches/status tokens:serviceaccounts/token configmaps:configmaps
  secrets:secrets services:services)
identity() { # SIDE → writes $WORK/SIDE.kubeconfig; sets FS, the prefix of its flow schemas
  local side="$1" fs="peer-bench-$id-$1" token kind name resources precedence=40
  kubectl create serviceaccount -n "$AUTH_NS" "$side" >/dev/null
  CLUSTER_OBJECTS+=("clusterrolebinding/$fs")
  kubectl create clusterrolebinding "$fs" --clusterrole cluster-admin \
    --serviceaccount "$AUTH_NS:$side" >/dev/null
  for kind in "${KINDS[@]}" other:; do
    name="${kind%%:*}"
    resources="${kind#*:}"
    resources="${resources:-\"*\"}"
    precedence=$((precedence + 1))
    if [[ "$name" == other ]]; then precedence=60; fi
    CLUSTER_OBJECTS+=("flowschema/$fs-$name")
    kubectl apply -f - >/dev/null <<YAML
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: $fs-$name}
spec:
  matchingPrecedence: $precedence
  priorityLevelConfiguration: {name: exempt}
  rules:
  - subjects: [{kind: ServiceAccount, serviceAccount: {name: $side, namespace: $AUTH_NS}}]
    resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: [${resources//+/, }], clusterScope: true, namespaces: ["*"]}]
$(if [[ "$name" == other ]]; then echo '    nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]'; fi)
YAML
  done
  token="$(kubectl create token -n "$AUTH_NS" "$side" --duration 3h)"
  (
    umask 077
    cat >"$WORK/$side.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: ground
  cluster: {server: "$GROUND_APISERVER", certificate-authority: "$GROUND_CA"}
users:
- name: $side
  user: {token: "$token"}
contexts:
- name: $side
  context: {cluster: ground, user: $side}
current-context: $side
YAML
  )
  FS="$fs"
}

wait_node_ready() { # NODE PID
  local i
  for ((i = 0; i < 450; i++)); do
    kill -0 "$2" 2>/dev/null || die "the process of node $1 exited (see its log in $WORK)"
    if [[ "$(kubectl get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; then
      return 0
    fi
    sleep 0.2
  done
  die "node $1 not Ready within 90 s"
}

measure() { # SIDE NODE PID FLOWSCHEMA [METRICS_URL]
  local ns="peer-bench-$id-$1-pods"
  kubectl create namespace "$ns" >/dev/null
  NAMESPACES+=("$ns")
  python3 "$WORK/measure.py" --apiserver "$GROUND_APISERVER" --ca "$GROUND_CA" \
    --cert "$ADMIN_DIR/admin.crt" --key "$ADMIN_DIR/admin.key" \
    --side "$1" --node "$2" --pid "$3" --flowschema "$4" --namespace "$ns" \
    --replicas "$replicas" --idle "$idle" --metrics "${5:-}" --out "$WORK/$1.json"
}

# The measurement itself: create, wait, idle, delete, wait; requests, RSS and CPU at each step.
cat >"$WORK/measure.py" <<'PY'
import argparse, http.client, json, ssl, sys, time, urllib.parse

ap = argparse.ArgumentParser()
for a in ["apiserver", "ca", "cert", "key", "side", "node", "pid", "flowschema", "namespace",
          "replicas", "idle", "metrics", "out"]:
    ap.add_argument("--" + a)
args = ap.parse_args()
N, IDLE, PID = int(args.replicas), float(args.idle), int(args.pid)
host = urllib.parse.urlparse(args.apiserver)
ctx = ssl.create_default_context(cafile=args.ca)
ctx.load_cert_chain(args.cert, args.key)
conn = None

def call(method, path, body=None, accept="application/json"):
    global conn
    for attempt in range(5):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=60)
            headers = {"Accept": accept}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {text[:300]!r}")
            return text
        except (OSError, http.client.HTTPException):
            conn = None
            if attempt == 4:
                raise
            time.sleep(0.5)

META = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
ns = args.namespace
def count(selector=None):
    q = "?fieldSelector=" + urllib.parse.quote(selector) if selector else ""
    return len(json.loads(call("GET", f"/api/v1/namespaces/{ns}/pods{q}", accept=META)).get("items") or [])

def requests():
    """Requests the node made so far, by kind: the dispatched counts of its flow schemas."""
    prefix = f'apiserver_flowcontrol_dispatched_requests_total{{flow_schema="{args.flowschema}-'
    out = {}
    for line in call("GET", "/metrics", accept="text/plain").decode().splitlines():
        if line.startswith(prefix):
            kind = line[len(prefix):].split('"', 1)[0]
            out[kind] = out.get(kind, 0) + int(float(line.rsplit(" ", 1)[1]))
    return out

def sample():
    by_kind = requests()
    return {"requests": sum(by_kind.values()), "requests_by_kind": by_kind, **usage()}

def usage():
    status = open(f"/proc/{PID}/status").read()
    kib = lambda k: int(next(l for l in status.splitlines() if l.startswith(k)).split()[1])
    fields = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return {"rss_mib": round(kib("VmRSS:") / 1024, 1), "hwm_mib": round(kib("VmHWM:") / 1024, 1),
            "cpu_s": (int(fields[11]) + int(fields[12])) / 100}

def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])

def node_metrics():
    if not args.metrics:
        return None
    u = urllib.parse.urlparse(args.metrics)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(("eci_vk_api_calls_total", "eci_vk_api_budget_wait_seconds_total",
                            "eci_vk_api_throttles_total", "eci_vk_pod_writes_total",
                            "eci_vk_pod_creates_total")):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out

def log(msg):
    print(f"[peer] {args.side}: {msg}", file=sys.stderr, flush=True)

deployment = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "peer"},
    "spec": {
        "replicas": N,
        "selector": {"matchLabels": {"app": "peer"}},
        "template": {
            "metadata": {"labels": {"app": "peer"}},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": args.node},
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists",
                                 "effect": "NoSchedule"}],
                "containers": [{"name": "app", "image": "registry.example.com/peer/app:1.0",
                                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}],
            },
        },
    },
}

res = {"side": args.side, "node": args.node, "replicas": N, "idle_s": IDLE,
       "load_average_at_start": loadavg()}
points = {"ready": sample()}

# Create, then wait for every pod Running.
t0 = time.monotonic()
call("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)
timeline, all_created, all_bound, all_running = [], None, None, None
last_log = 0
while all_running is None:
    time.sleep(0.5)
    created = count()
    bound = count(f"spec.nodeName={args.node}")
    running = count("status.phase=Running")
    t = round(time.monotonic() - t0, 2)
    timeline.append([t, created, bound, running])
    if all_created is None and created >= N: all_created = t
    if all_bound is None and bound >= N: all_bound = t
    if running >= N: all_running = t
    if t - last_log >= 10:
        log(f"{t:.0f} s: {created} pods, {bound} bound, {running} Running"); last_log = t
    if t > 1800:
        raise SystemExit(f"{args.side}: not all Running after 1800 s ({running}/{N})")
log(f"all {N} Running after {all_running} s")
points["running"] = sample()
res["create"] = {"all_created_s": all_created, "all_bound_s": all_bound,
                 "all_running_s": all_running, "timeline": timeline}

# Idle: nothing changes.
time.sleep(IDLE)
points["idle_end"] = sample()

# Delete, then wait for every pod gone.
t1 = time.monotonic()
call("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/peer",
     {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
timeline, last_log = [], 0
while True:
    time.sleep(0.5)
    left = count()
    t = round(time.monotonic() - t1, 2)
    timeline.append([t, left])
    if left == 0: break
    if t - last_log >= 10:
        log(f"delete +{t:.0f} s: {left} pods left"); last_log = t
    if t > 1800:
        raise SystemExit(f"{args.side}: pods left after 1800 s ({left})")
log(f"all pods gone {t} s after the delete")
res["delete"] = {"all_gone_s": t, "timeline": timeline}
points["gone"] = sample()
res["points"] = points
r = {k: v["requests"] for k, v in points.items()}
window = r["gone"] - r["ready"]
res["apiserver_requests"] = {
    "start_to_ready": r["ready"],
    "create_to_running": r["running"] - r["ready"],
    "idle": r["idle_end"] - r["running"],
    "delete_to_gone": r["gone"] - r["idle_end"],
    "window": window,
    "per_pod": round(window / N, 3),
}
kinds = sorted(set().union(*(p["requests_by_kind"] for p in points.values())))
k = lambda point, kind: points[point]["requests_by_kind"].get(kind, 0)
res["apiserver_requests_by_kind"] = {
    kind: {"create_to_running": k("running", kind) - k("ready", kind),
           "idle": k("idle_end", kind) - k("running", kind),
           "delete_to_gone": k("gone", kind) - k("idle_end", kind),
           "window": k("gone", kind) - k("ready", kind)} for kind in kinds}
res["peak_rss_mib"] = points["gone"]["hwm_mib"]
res["cpu_s"] = {"start_to_ready": points["ready"]["cpu_s"],
                "window": round(points["gone"]["cpu_s"] - points["ready"]["cpu_s"], 2),
                "total": points["gone"]["cpu_s"]}
res["node_metrics"] = node_metrics()
json.dump(res, open(args.out, "w"), indent=1)
PY

run_ours() {
  local node="peer-bench-ours-$id" fs endpoint metrics pid emu i
  identity ours
  fs="$FS"
  # The node's cache controller needs the CRD from its start (as benches/scale.rs).
  "$eci_vk" crd | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=established crd/imagecaches.eci.alibabacloud.com --timeout=60s >/dev/null
  ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI-bench ALIBABA_CLOUD_ACCESS_KEY_SECRET=bench-secret RUST_LOG=warn \
    "$eci_vk" emulator --listen 127.0.0.1:0 --runtime simulated --no-throttle \
    >"$WORK/ours-emulator.out" 2>"$WORK/ours-emulator.log" 9>&- &
  emu=$!
  PIDS+=("$emu")
  for ((i = 0; i < 100; i++)); do
    endpoint="$(sed -n 's/^eci-vk emulator listening on //p' "$WORK/ours-emulator.out")"
    [[ -n "$endpoint" ]] && break
    kill -0 "$emu" 2>/dev/null || die "eci-vk emulator exited (log: $WORK/ours-emulator.log)"
    sleep 0.1
  done
  [[ -n "$endpoint" ]] || die "eci-vk emulator did not say where it listens"
  metrics="127.0.0.1:$(free_port)"
  NODES+=("$node")
  LEASES+=("eci-vk-node-$node" "eci-vk-imagecache-peer-$id-bench-$id")
  IMAGE_CACHE_CLASSES+=("bench-$id")
  OURS_CMD=(run --kubeconfig "$WORK/ours.kubeconfig" --eci-endpoint "$endpoint" --node-name "$node"
    --cluster-name "peer-$id" --image-cache-class "bench-$id" --metrics-addr "$metrics"
    --pods $((replicas + 100)) --kubelet-listen 127.0.0.1:0 --eci-client-budget false
    --kube-api-qps 0)
  ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI-bench ALIBABA_CLOUD_ACCESS_KEY_SECRET=bench-secret \
    VK_LEADER_ELECT_IDENTITY=peer-bench RUST_LOG=info NO_COLOR=1 \
    "$eci_vk" "${OURS_CMD[@]}" >/dev/null 2>"$WORK/ours-node.log" 9>&- &
  pid=$!
  PIDS+=("$pid")
  wait_node_ready "$node" "$pid"
  say "ours: node $node Ready (pid $pid)"
  echo "eci-vk ${OURS_CMD[*]}" >"$WORK/ours.cmd"
  measure ours "$node" "$pid" "$fs" "http://$metrics/metrics"
  EMULATOR_USAGE="$(python3 -c 'import sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); s=open(f"/proc/{sys.argv[1]}/status").read(); print((int(f[11])+int(f[12]))/100, int([l for l in s.splitlines() if l.startswith("VmHWM:")][0].split()[1])/1024)' "$emu")"
  stop_pid "$pid"
  stop_pid "$emu"
}

run_peer() { # SIDE (peer or peer-queue-off)
  local side="$1" node fs pid port
  node="peer-bench-vk-$id"
  if [[ "$side" == peer-queue-off ]]; then node="peer-bench-vkq-$id"; fi
  identity "$side"
  fs="$FS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$node" \
    -keyout "$WORK/$side-kubelet.key" -out "$WORK/$side-kubelet.crt" >/dev/null 2>&1
  cat >"$WORK/$side-provider.json" <<JSON
{"$node": {"cpu": "1000", "memory": "4Ti", "pods": "$((replicas + 100))"}}
JSON
  port="$(free_port)"
  NODES+=("$node")
  PEER_CMD=(--kubeconfig "$WORK/$side.kubeconfig" --nodename "$node" --provider mock
    --provider-config "$WORK/$side-provider.json" --metrics-addr "127.0.0.1:$(free_port)")
  KUBELET_PORT="$port" VKUBELET_POD_IP=127.0.0.1 \
    APISERVER_CERT_LOCATION="$WORK/$side-kubelet.crt" APISERVER_KEY_LOCATION="$WORK/$side-kubelet.key" \
    "${PEER_BINS[$side]}" "${PEER_CMD[@]}" >/dev/null 2>"$WORK/$side-node.log" 9>&- &
  pid=$!
  PIDS+=("$pid")
  wait_node_ready "$node" "$pid"
  say "$side: node $node Ready (pid $pid)"
  echo "virtual-kubelet ${PEER_CMD[*]}" >"$WORK/$side.cmd"
  measure "$side" "$node" "$pid" "$fs"
  stop_pid "$pid"
}

OURS_CMD=()
PEER_CMD=()
EMULATOR_USAGE=""
rm -f "$WORK"/ours.json "$WORK"/peer.json "$WORK"/peer-queue-off.json "$WORK"/*.cmd
first=true
for side in ${sides//,/ }; do
  # The ground settles between sides: the controller-manager's and scheduler's work of one is
  # over before the next starts.
  $first || sleep 20
  first=false
  case "$side" in
    ours) run_ours ;;
    peer | peer-queue-off) run_peer "$side" ;;
  esac
done

# --- the report --------------------------------------------------------------------------------
python3 - "$WORK" "$OUT/peer.json" "$VK_MODULE" "$VK_TAG" "$eci_vk" \
  "$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo +dirty)" \
  "$("$GROUND_BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}')" \
  "$EMULATOR_USAGE" <<'PY'
import datetime, json, os, sys
work, out, module, tag, eci_vk, commit, kube, emu = sys.argv[1:9]
sides = {}
for s in ("ours", "peer", "peer-queue-off"):
    p = os.path.join(work, f"{s}.json")
    if os.path.exists(p):
        sides[s] = json.load(open(p))
        sides[s]["command"] = open(os.path.join(work, f"{s}.cmd")).read().strip()
if emu and "ours" in sides:
    cpu, hwm = emu.split()
    sides["ours"]["emulator"] = {"cpu_s_total": float(cpu), "peak_rss_mib": round(float(hwm), 1)}
mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal:")).split()[1]
report = {
    "date": datetime.date.today().isoformat(),
    "machine": {"cores": os.cpu_count(), "kernel": open("/proc/sys/kernel/osrelease").read().strip(),
                "memory_gib": round(int(mem) / 1048576, 1)},
    "ground": {"kubernetes": kube},
    "ours": {"binary": eci_vk, "commit": commit,
             "emulator": "eci-vk emulator --runtime simulated --no-throttle",
             "env": "ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET (the emulator's fixture pair), "
                    "VK_LEADER_ELECT_IDENTITY=peer-bench, RUST_LOG=info",
             "rate_limits": "emulator quotas off (--no-throttle); the node's own API-server write "
                            "pace off (--kube-api-qps 0); the ECI client's own budget off "
                            "(--eci-client-budget false)"},
    "peer": {"module": module, "tag": tag, "built": True, "provider": "mock",
             "env": "KUBELET_PORT (a free port), VKUBELET_POD_IP=127.0.0.1, "
                    "APISERVER_CERT_LOCATION/APISERVER_KEY_LOCATION (a self-signed pair)",
             "rate_limits": {
                 "peer": "node/nodeutil/client.go: config.QPS = -1 before kubernetes.NewForConfig "
                         "(client-go's default 5/s, burst 10, off); the pod controller's work queues "
                         "keep their default limiter (per-item backoff and an overall 10/s, burst 100)",
                 "peer-queue-off": "the same, and node/podcontroller.go: the three work queues get "
                                   "workqueue.NewTypedItemExponentialFailureRateLimiter(5ms, 1000s) "
                                   "instead of DefaultTypedControllerRateLimiter (no overall 10/s bucket)"}},
    "counting": "apiserver_flowcontrol_dispatched_requests_total of FlowSchemas matching only the node's "
                "own ServiceAccount (priority level exempt), one per kind of resource",
    "sides": sides,
}
ratio = lambda a, b: round(a / b, 3) if b else None
report["ratios"], report["targets"] = {}, {}
for peer in [p for p in ("peer", "peer-queue-off") if p in sides and "ours" in sides]:
    o, p = sides["ours"], sides[peer]
    report["ratios"][peer] = r = {
        "all_running": ratio(o["create"]["all_running_s"], p["create"]["all_running_s"]),
        "all_deleted": ratio(o["delete"]["all_gone_s"], p["delete"]["all_gone_s"]),
        "requests_per_pod": ratio(o["apiserver_requests"]["per_pod"], p["apiserver_requests"]["per_pod"]),
        "peak_rss": ratio(o["peak_rss_mib"], p["peak_rss_mib"]),
        "cpu_window": ratio(o["cpu_s"]["window"], p["cpu_s"]["window"]),
    }
    report["targets"][peer] = {
        "all_running <= 0.15x": r["all_running"] <= 0.15,
        "all_deleted <= 0.15x": r["all_deleted"] <= 0.15,
        "requests_per_pod <= 0.5x": r["requests_per_pod"] <= 0.5,
        "peak_rss <= 0.5x": r["peak_rss"] <= 0.5,
    }
json.dump(report, open(out, "w"), indent=1)

kind = lambda s, k: s.get("apiserver_requests_by_kind", {}).get(k, {}).get("window", 0)
rows = [("create -> all Running (s)", lambda s: s["create"]["all_running_s"]),
        ("  all pods created / bound (s)", lambda s: f'{s["create"]["all_created_s"]} / {s["create"]["all_bound_s"]}'),
        ("delete -> all gone (s)", lambda s: s["delete"]["all_gone_s"]),
        ("API requests: create", lambda s: s["apiserver_requests"]["create_to_running"]),
        ("API requests: idle", lambda s: s["apiserver_requests"]["idle"]),
        ("API requests: delete", lambda s: s["apiserver_requests"]["delete_to_gone"]),
        ("API requests per pod", lambda s: s["apiserver_requests"]["per_pod"]),
        ("  (start -> Ready, not counted)", lambda s: s["apiserver_requests"]["start_to_ready"]),
        ("  by kind (window): pods/status", lambda s: kind(s, "pods-status")),
        ("    pods / events", lambda s: f'{kind(s, "pods")} / {kind(s, "events")}'),
        ("    leases / nodes", lambda s: f'{kind(s, "leases")} / {kind(s, "nodes")}'),
        ("    imagecaches / tokens", lambda s: f'{kind(s, "imagecaches")} / {kind(s, "tokens")}'),
        ("    configmaps / secrets", lambda s: f'{kind(s, "configmaps")} / {kind(s, "secrets")}'),
        ("    services / other", lambda s: f'{kind(s, "services")} / {kind(s, "other")}'),
        ("peak RSS, VmHWM (MiB)", lambda s: s["peak_rss_mib"]),
        ("CPU s, create..gone", lambda s: s["cpu_s"]["window"]),
        ("load average at start", lambda s: s["load_average_at_start"])]
names = list(sides)
peers = list(report["ratios"])
print(f'{"":34}' + "".join(f"{n:>18}" for n in names) + "".join(f"{'ours/' + p:>22}" for p in peers))
keys = ["all_running", "", "all_deleted", "", "", "", "requests_per_pod", "", "", "", "", "", "", "",
        "peak_rss", "cpu_window", ""]
for (label, f), k in zip(rows, keys):
    line = f"{label:34}" + "".join(f"{str(f(sides[n])):>18}" for n in names)
    if k:
        line += "".join(f'{report["ratios"][p][k]:>22}' for p in peers)
    print(line)
if "ours" in sides and sides["ours"].get("emulator"):
    e = sides["ours"]["emulator"]
    print(f'(ours: emulator CPU {e["cpu_s_total"]} s, peak RSS {e["peak_rss_mib"]} MiB, not in the figures above)')
print(f"wrote {out}")
PY
