#!/usr/bin/env bash
# Stops every process the test ground started (by their pid files), in reverse order, and the
# worker node of worker-up.sh with everything it made.
#   --purge   also delete the cluster's and registries' data (the PKI and built tools stay)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The worker node first (worker-up.sh), while the API server still takes its Node's deletion.
"$GROUND_DIR/worker-down.sh" || log "warning: the worker node was not cleaned up completely"
for name in virtual-kubelet emulator registry-auth registry kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_daemon "$name"
done
rm -f "$RUN_DIR/ground.env"
ip link delete "$GROUND_NODE_LINK" 2>/dev/null || true
if [[ "${1:-}" == "--purge" ]]; then
  rm -rf "$RUN_DIR/node" "$RUN_DIR/emulator" "$RUN_DIR/etcd" "$RUN_DIR/registry" "$RUN_DIR/registry-auth" "$RUN_DIR/logs" "$RUN_DIR/kube-cache"
  log "data purged"
fi
