# syntax=docker/dockerfile:1
#
# One Dockerfile for the six programs. Pick one with `--target`:
#
#   docker build --target auth-service -t wallet-platform/auth-service .
#
# docker-compose.yml does this for every program. The builder stage compiles all six
# binaries in one cargo invocation, so building several targets (as `docker compose build`
# does) compiles the workspace once. BuildKit is required (the default since Docker 23).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- builder ------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src

# No database is needed at build time: the SQL is checked at run time, not by sqlx macros,
# and protobuf is compiled by protox in proto/build.rs (no protoc).
COPY . .

# The cargo registry and the target directory are BuildKit cache mounts: a rebuild after a
# source change downloads nothing and recompiles only the workspace crates. A cache mount is
# not part of the image, so the binaries are copied out of it into /out (a normal layer).
# `sharing=locked` serialises concurrent builds that would otherwise share one target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p gateway -p auth-service -p wallet-service -p statement-service -p order-service -p web \
    && mkdir -p /out \
    && cp target/release/gateway target/release/auth-service target/release/wallet-service \
          target/release/statement-service target/release/order-service target/release/web /out/

# --- runtime base -------------------------------------------------------------------------
# Shared by every program: CA certificates (for TLS to SMTP or a managed broker/database)
# and an unprivileged user. Nothing else: the binaries link only against glibc.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Unpinned on purpose: CA certificates should be the release's current ones.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
# Numeric, so that orchestrators enforcing "run as non-root" can verify it.
USER 10001:10001

# --- one image per program ----------------------------------------------------------------
# Each answers its own health check through the `healthcheck` subcommand (the image has no
# curl): the gateway calls GET /healthz on GATEWAY_ADDR's port, a gRPC service runs the gRPC
# health check on its *_GRPC_ADDR port with INTERNAL_API_TOKEN. The generous start period
# covers creating the database and applying migrations at the first start.

FROM runtime AS auth-service
COPY --from=builder /out/auth-service /usr/local/bin/auth-service
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/auth-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/auth-service"]

FROM runtime AS wallet-service
COPY --from=builder /out/wallet-service /usr/local/bin/wallet-service
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/wallet-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/wallet-service"]

FROM runtime AS statement-service
COPY --from=builder /out/statement-service /usr/local/bin/statement-service
EXPOSE 50053
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/statement-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/statement-service"]

FROM runtime AS order-service
COPY --from=builder /out/order-service /usr/local/bin/order-service
EXPOSE 50054
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/order-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/order-service"]

# The web app for people: pages over the gateway's HTTP API (GATEWAY_URL). It checks
# itself with GET /healthz on WEB_ADDR's port. MIMALLOC_PURGE_DELAY=0: the allocator returns
# what a page freed at once, not 1 s later at a next allocation that an idle program may
# never make. After the 10,000-line statement page the web app settles at 10 MB instead of
# 21 to 37, for about 6 ms more on that page (docs/benchmarks.md). The gateway sets it too;
# the services keep the default: set for every program, it cost 15% more CPU per deposit.
FROM runtime AS web
ENV MIMALLOC_PURGE_DELAY=0
COPY --from=builder /out/web /usr/local/bin/web
EXPOSE 3000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/web", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/web"]

# Last, so that a plain `docker build .` produces the gateway. MIMALLOC_PURGE_DELAY=0 as for
# the web app: after the 10,000-line statement it passes on, 16 MB instead of 24 to 37, with
# no CPU per deposit measurably added (docs/benchmarks.md).
FROM runtime AS gateway
ENV MIMALLOC_PURGE_DELAY=0
COPY --from=builder /out/gateway /usr/local/bin/gateway
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
