# syntax=docker/dockerfile:1
#
# The PDS as a container image.
#
#   docker build -t pds .
#   docker run -d --name pds -p 2583:2583 -v pds-data:/data --env-file pds.env pds
#
# The image runs production settings (dev mode off): give it the secrets and
# hostname through the environment, e.g. the reference distribution's pds.env.
# A pds.toml mounted at /app/pds.toml is read too; environment variables win.

# ---- build ----------------------------------------------------------------
# The toolchain must satisfy the workspace's rust-version (1.95).
FROM rust:1.95-slim-trixie AS builder
WORKDIR /src
COPY . .
# Cache mounts keep downloaded crates and build output between image builds.
# The target directory is a cache mount, so the binary is copied out of it in
# the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pds \
    && install -m 0755 target/release/pds /usr/local/bin/pds

# ---- run ------------------------------------------------------------------
# Same Debian release as the builder, so the binary finds the glibc it was linked against.
FROM debian:trixie-slim
# CA certificates: the server calls HTTPS services (PLC directory, AppView, relays).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged user; /data belongs to it so the volume is writable.
RUN groupadd --system --gid 10001 pds \
    && useradd --system --uid 10001 --gid pds --home-dir /data --shell /usr/sbin/nologin pds \
    && mkdir -p /data /app \
    && chown pds:pds /data
COPY --from=builder /usr/local/bin/pds /usr/local/bin/pds

ENV PDS_DATA_DIRECTORY=/data \
    PDS_BIND=0.0.0.0 \
    PDS_PORT=2583
VOLUME ["/data"]
EXPOSE 2583
USER pds
# Start-up looks for ./pds.toml; /app is empty unless one is mounted there.
WORKDIR /app

# `pds healthcheck` GETs /xrpc/_health on the configured port: no curl needed.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["pds", "healthcheck"]

# SIGTERM (docker stop) makes the server finish open requests and exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pds"]
CMD ["serve"]
