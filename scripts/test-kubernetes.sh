#!/usr/bin/env bash
# Runs the tests of the operator's path (the chart, leader election, two processes per node,
# helm install/upgrade/rollback on the real worker node) on another Kubernetes than the pinned
# one: the oldest minor the chart claims (Chart.yaml's kubeVersion) by default.
#
#   scripts/test-kubernetes.sh [VERSION]      (default: $GROUND_KUBERNETES_VERSION or v1.34.4)
#
# The ground's tools are built for VERSION beside the pinned ones (target/ground/tools/), and
# the ground runs in a directory, on ports and with a worker node of its own, so a ground of the
# pinned version may keep running meanwhile. Each part of the suite starts it and stops it
# again, also when a test fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export GROUND_KUBERNETES_VERSION="${1:-${GROUND_KUBERNETES_VERSION:-v1.34.4}}"
minor="${GROUND_KUBERNETES_VERSION#v}"
minor="${minor%.*}"
export GROUND_RUN_DIR="${GROUND_RUN_DIR:-$root/target/ground/run-k${minor/./}}"
# Ports, links and the worker's names apart from the pinned ground's (integration/ground/lib.sh).
export GROUND_ETCD_PORT=33790 GROUND_ETCD_PEER_PORT=33800 GROUND_APISERVER_PORT=26443 \
  GROUND_CONTROLLER_MANAGER_PORT=26257 GROUND_SCHEDULER_PORT=26259 \
  GROUND_REGISTRY_PORT=25000 GROUND_AUTH_REGISTRY_PORT=25001 GROUND_EMULATOR_PORT=28080 \
  GROUND_NODE_LINK=vk-ground1 GROUND_NODE_IP=10.255.254.2 \
  GROUND_WORKER_NETNS=vk-ground-worker1 GROUND_WORKER_LINK=vk-ground-w1 \
  GROUND_WORKER_HOST_IP=10.255.251.1 GROUND_WORKER_IP=10.255.251.2 \
  GROUND_WORKER_POD_CIDR=10.255.250.0/24 GROUND_WORKER_CGROUP=vk-ground-worker1

echo "== Kubernetes $GROUND_KUBERNETES_VERSION: building its tools"
integration/ground/install-packages.sh
integration/ground/build.sh >/dev/null
cargo build --quiet --tests --bin eci-vk
status=0
for part in chart:: election:: leadership:: in_cluster::; do
  echo "== Kubernetes $GROUND_KUBERNETES_VERSION: $part"
  cargo test --quiet --test integration -- "$part" || status=1
done
exit "$status"
