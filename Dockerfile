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
#
# Build arguments, all optional:
#   BUILD_BASE, RUNTIME_BASE  the two base images, pinned by tag and digest. scripts/image.sh
#                             builds an equivalent of the runtime base from Debian packages and
#                             passes it here, for machines that cannot reach gcr.io.
#   VERSION, REVISION         the version and source revision the image's labels give.
#   SOURCE                    the repository URL for org.opencontainers.image.source.
#
# An eci-vk built on the host instead of in the `build` stage: a directory holding only that
# binary, given as a build context named like the stage, replaces the stage (BuildKit and
# buildah/podman ≥ 4.2 both skip it then, so the rust image is not even pulled):
#
#   mkdir -p target/image/binary && cp target/release/eci-vk target/image/binary/
#   docker buildx build --build-context build=target/image/binary -t eci-virtual-kubelet:0.1.0 .
#
# (scripts/image.sh does that with buildah.) The main context never holds target/.
#
# The digests are ones these tags pointed to in 2026, not re-checked against Docker Hub or
# gcr.io (the project's test machine reaches neither). Refresh one with
# `docker buildx imagetools inspect <image>:<tag>` and replace it here.
ARG BUILD_BASE=rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

# --- build -------------------------------------------------------------------------------
FROM ${BUILD_BASE} AS build
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
FROM ${RUNTIME_BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="eci-virtual-kubelet" \
      org.opencontainers.image.description="A Kubernetes virtual node for Alibaba Cloud Elastic Container Instance (ECI), with the ImageCache controller" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# Owned by root and not writable by the user it runs as.
COPY --from=build /eci-vk /usr/local/bin/eci-vk
USER 65532:65532
# 10250: the kubelet API (HTTPS: logs, exec, stats; VK_KUBELET_LISTEN).
# 10255: /metrics, /livez and /readyz (the chart sets VK_METRICS_ADDR=0.0.0.0:10255).
EXPOSE 10250 10255
ENTRYPOINT ["/usr/local/bin/eci-vk"]
CMD ["run"]
