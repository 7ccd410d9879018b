#!/usr/bin/env bash
# Generates the ground's PKI once into RUN_DIR/pki: a cluster CA, the API server's serving
# certificate, client certificates for the admin, controller-manager, scheduler and the API
# server's kubelet client, the service-account signing key, and the registry's TLS certificate.
# Kubeconfigs for each client are written next to them. The worker node's kubelet and kube-proxy
# (worker-up.sh) get their certificates here too, added to an existing PKI when missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pki="$RUN_DIR/pki"

openssl_quiet() { openssl "$@" 2>/dev/null; }

# cert NAME SUBJECT [SAN]: a key and a CA-signed certificate (serving if SAN is given).
cert() {
  local name="$1" subject="$2" san="${3:-}"
  openssl_quiet req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject"
  local ext="$name.ext"
  if [[ -n "$san" ]]; then
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
  else
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$ext"
  fi
  openssl_quiet x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
    -days 3650 -extfile "$ext"
  rm -f "$name.csr" "$ext"
}

# kubeconfig NAME USER: a kubeconfig for a client certificate, embedding everything.
kubeconfig() {
  local name="$1" user="$2"
  cat >"$RUN_DIR/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: eci-vk-ground
  cluster:
    server: https://127.0.0.1:$GROUND_APISERVER_PORT
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$name.crt")
    client-key-data: $(base64 -w0 "$name.key")
contexts:
- name: $user@eci-vk-ground
  context: {cluster: eci-vk-ground, user: $user}
current-context: $user@eci-vk-ground
KC
  chmod 600 "$RUN_DIR/$name.kubeconfig"
}

# The worker's kubelet: a client certificate in system:nodes (the Node authorizer and the
# NodeRestriction admission know it by that name) and a serving certificate for its API at the
# node's address, signed by the ground's CA. Made again when the name or the address changes.
# The worker's kube-proxy: a client certificate for system:kube-proxy, the user the default
# ClusterRoleBinding system:node-proxier lets read Services, EndpointSlices and Nodes.
worker_certs() {
  local want="$GROUND_WORKER_NAME $GROUND_WORKER_IP"
  if [[ ! -f .worker-complete || "$(cat .worker-complete)" != "$want" ]]; then
    cert worker-kubelet-client "/O=system:nodes/CN=system:node:$GROUND_WORKER_NAME"
    cert worker-kubelet "/CN=$GROUND_WORKER_NAME" "DNS:$GROUND_WORKER_NAME,IP:$GROUND_WORKER_IP"
    kubeconfig worker-kubelet-client "system:node:$GROUND_WORKER_NAME"
    echo "$want" >.worker-complete
  fi
  if [[ ! -f kube-proxy.crt || ! -f "$RUN_DIR/kube-proxy.kubeconfig" ]]; then
    cert kube-proxy "/CN=system:kube-proxy"
    kubeconfig kube-proxy system:kube-proxy
  fi
}

if [[ -f "$pki/.complete" ]]; then
  cd "$pki" && worker_certs
  exit 0
fi
rm -rf "$pki" && mkdir -p "$pki" && cd "$pki"

openssl_quiet req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
  -subj "/CN=eci-vk-ground-ca"

cert apiserver "/CN=kube-apiserver" \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
cert registry "/CN=localhost" "DNS:localhost,IP:127.0.0.1"
cert admin "/O=system:masters/CN=kubernetes-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert apiserver-kubelet-client "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client"
openssl_quiet genrsa -out sa.key 2048
openssl_quiet rsa -in sa.key -pubout -out sa.pub

kubeconfig admin kubernetes-admin
kubeconfig controller-manager system:kube-controller-manager
kubeconfig scheduler system:kube-scheduler

# The authenticated registry's password file (bcrypt, as the distribution registry requires).
htpasswd -Bbn "$GROUND_REGISTRY_USER" "$GROUND_REGISTRY_PASSWORD" >registry.htpasswd
worker_certs
touch .complete
