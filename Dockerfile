# syntax=docker/dockerfile:1
#
# The eci-vk image: `eci-vk run`, the virtual node, as the Helm chart in
# charts/eci-virtual-kubelet deploys it.
#
#   docker build -t eci-virtual-kubelet:0.1.0 .
#
# In a cluster the node only talks to the API server and to Alibaba Cloud's ECI OpenAPI over
# HTTPS, so it runs as a non-root user with no capabilities and a read-only root filesystem.
# (`eci-vk emulator`/`eci-vk agent` with the runc runtime — the local stand-in for ECI used by
# scripts/up.sh and the tests — need root, runc and network namespaces; this image is not
# meant for them.)

# --- build -------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# zstd-sys and ring compile C; the protobuf compiler is protox (pure Rust), so no protoc.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin eci-vk \
    && cp target/release/eci-vk /eci-vk

# --- runtime -----------------------------------------------------------------------------
# distroless/cc: glibc, libgcc and the CA certificates rustls-platform-verifier needs for
# eci.<region>.aliyuncs.com; no shell, no package manager. `nonroot` is uid/gid 65532, the
# user the chart's securityContext asks for.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /eci-vk /usr/local/bin/eci-vk
USER 65532:65532
# 10255: /metrics and /healthz (the chart sets VK_METRICS_ADDR=0.0.0.0:10255).
EXPOSE 10255
ENTRYPOINT ["/usr/local/bin/eci-vk"]
CMD ["run"]
