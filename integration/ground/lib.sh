# Shared by the test-ground scripts: where things live, which ports they use, and how a daemon
# is started, waited for and stopped. Sourced, never run.
# shellcheck shell=bash

GROUND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$GROUND_DIR/../.." && pwd)"
# Everything the ground writes lives here: certificates, data, logs, pid files, kubeconfig.
RUN_DIR="${GROUND_RUN_DIR:-$PROJECT_ROOT/target/ground/run}"

# Loopback ports, chosen away from the defaults so a ground never collides with a real cluster
# on the same machine; each can be overridden from the environment.
: "${GROUND_ETCD_PORT:=23790}"
: "${GROUND_ETCD_PEER_PORT:=23800}"
: "${GROUND_APISERVER_PORT:=16443}"
: "${GROUND_CONTROLLER_MANAGER_PORT:=16257}"
: "${GROUND_SCHEDULER_PORT:=16259}"
: "${GROUND_REGISTRY_PORT:=15000}"
: "${GROUND_AUTH_REGISTRY_PORT:=15001}"
# The ECI emulator that scripts/up.sh runs for the demo (tests start their own on free ports).
: "${GROUND_EMULATOR_PORT:=18080}"
# The address virtual nodes of the ground advertise as InternalIP, on an interface of its own
# on this host: kube-apiserver refuses to proxy (nodes/proxy, `kubectl get --raw …/proxy/…`) to a
# loopback or link-local address, and traffic to it still never leaves the machine.
: "${GROUND_NODE_LINK:=vk-ground0}"
: "${GROUND_NODE_IP:=10.255.254.1}"
# The optional worker node (worker-up.sh): a kubelet and containerd in a network namespace of
# the ground's own, joined to this host by a veth pair (the host's end GROUND_WORKER_LINK holds
# GROUND_WORKER_HOST_IP, the namespace's end the node's InternalIP GROUND_WORKER_IP). Its pods
# get addresses of GROUND_WORKER_POD_CIDR from a bridge inside that namespace, which the host
# routes over the veth; the namespace has no default route, so pod traffic goes nowhere else.
# The kubelet makes its cgroups under GROUND_WORKER_CGROUP in every cgroup v1 hierarchy.
: "${GROUND_WORKER_NAME:=ground-worker}"
: "${GROUND_WORKER_NETNS:=vk-ground-worker}"
: "${GROUND_WORKER_LINK:=vk-ground-w0}"
: "${GROUND_WORKER_HOST_IP:=10.255.253.1}"
: "${GROUND_WORKER_IP:=10.255.253.2}"
: "${GROUND_WORKER_POD_CIDR:=10.255.252.0/24}"
: "${GROUND_WORKER_CGROUP:=vk-ground-worker}"
# shellcheck disable=SC2034 # used by worker-up.sh and worker-down.sh
WORKER_DIR="$RUN_DIR/worker"
# The user and password of the authenticated registry (a test fixture, not a secret).
: "${GROUND_REGISTRY_USER:=eci-test}"
: "${GROUND_REGISTRY_PASSWORD:=eci-test-password}"

# The port variables each daemon listens on, checked before it starts: a port some other process
# holds (another ground, a run killed halfway) would otherwise let the readiness probe talk to
# that process instead, and the ground would fail later and far from the cause.
declare -A DAEMON_PORTS=(
  [etcd]="GROUND_ETCD_PORT GROUND_ETCD_PEER_PORT"
  [kube-apiserver]="GROUND_APISERVER_PORT"
  [kube-controller-manager]="GROUND_CONTROLLER_MANAGER_PORT"
  [kube-scheduler]="GROUND_SCHEDULER_PORT"
  [registry]="GROUND_REGISTRY_PORT"
  [registry-auth]="GROUND_AUTH_REGISTRY_PORT"
  [emulator]="GROUND_EMULATOR_PORT"
)

log() { echo "[ground] $*" >&2; }
die() { echo "[ground] error: $*" >&2; exit 1; }

# start_daemon NAME CMD...: runs CMD in its own session with output in RUN_DIR/logs/NAME.log,
# unless the process in RUN_DIR/pids/NAME.pid is still alive.
start_daemon() {
  local name="$1"; shift
  local pidfile="$RUN_DIR/pids/$name.pid"
  if is_running "$name"; then
    log "$name already running (pid $(cat "$pidfile"))"
    return 0
  fi
  local var
  for var in ${DAEMON_PORTS[$name]:-}; do
    if (exec 3<>"/dev/tcp/127.0.0.1/${!var}") 2>/dev/null; then
      die "$name: port ${!var} is taken by another process; stop it or choose another $var"
    fi
  done
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
  setsid "$@" >>"$RUN_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  log "$name started (pid $!, log $RUN_DIR/logs/$name.log)"
}

is_running() {
  local pidfile="$RUN_DIR/pids/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# wait_until DESCRIPTION SECONDS CMD...: polls CMD every half second until it succeeds.
wait_until() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$what not ready after ${seconds}s; see $RUN_DIR/logs/"
    fi
    sleep 0.5
  done
}

# stop_daemon NAME: TERM, then KILL after 10 s, for the process group started by start_daemon.
stop_daemon() {
  local name="$1" pidfile="$RUN_DIR/pids/$1.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    log "$name stopped"
  fi
  rm -f "$pidfile"
}
