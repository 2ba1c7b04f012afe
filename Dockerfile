# syntax=docker/dockerfile:1
# The keysmith operator image: one static binary (musl) on distroless/static, running as a
# non-root user with nothing else in the image (no shell, no package manager).
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t ghcr.io/keysmith-dev/keysmith:0.1.0 .
#
# For people with Docker. The project builds its image without a container engine:
# `hack/image.sh` (`make image`) makes the same image (user, entrypoint, args, exposed ports,
# labels; tests/node/image.rs compares them) reproducibly, as an OCI archive.
#
# The chart's pod runs it with a read-only root file system, no capabilities and the
# RuntimeDefault seccomp profile; the binary writes nothing to disk.

FROM rust:1.95-alpine AS build
# aws-lc-rs builds AWS-LC from C sources: a C toolchain, cmake and perl; musl-dev for the
# static C library.
RUN apk add --no-cache build-base cmake perl musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin keysmith \
 && install -D -m 0755 target/release/keysmith /out/keysmith
# Static: no shared library needed (distroless/static has none).
RUN if readelf -d /out/keysmith | grep -q NEEDED; then \
      echo "keysmith needs shared libraries:" >&2; readelf -d /out/keysmith >&2; exit 1; \
    fi

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="keysmith" \
      org.opencontainers.image.description="Kubernetes operator that generates and manages secret material" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/keysmith-dev/keysmith" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/keysmith /usr/local/bin/keysmith
# The "nonroot" user of distroless (65532), the same the chart's securityContext sets.
USER 65532:65532
# /metrics and /healthz, /readyz (the chart's metrics.port and healthPort).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/keysmith"]
CMD ["run"]
