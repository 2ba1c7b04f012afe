# syntax=docker/dockerfile:1
# The keysmith operator image: one static binary (musl) on distroless/static, running as a
# non-root user with nothing else in the image (no shell, no package manager).
#
#   docker build -t ghcr.io/keysmith-dev/keysmith:0.1.0 .
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
COPY --from=build /out/keysmith /usr/local/bin/keysmith
# The "nonroot" user of distroless (65532), the same the chart's securityContext sets.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/keysmith"]
CMD ["run"]
