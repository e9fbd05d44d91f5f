# Hookfleet image: both binaries on Debian slim. The default command runs the
# API; run `hookfleet-worker` in the same image for a delivery worker.
#
#   docker build -t hookfleet .
#   docker run -e HOOKFLEET_REDIS_URL=redis://HOST:6379 -e HOOKFLEET_ADMIN_KEY=... -p 8080:8080 hookfleet

# --- build ---------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and build artefacts between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/hookfleet-api target/release/hookfleet-worker /out/

# --- run -----------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /nonexistent \
    --no-create-home --shell /usr/sbin/nologin hookfleet
COPY --from=builder /out/hookfleet-api /out/hookfleet-worker /usr/local/bin/
USER hookfleet
# Inside a container the API must listen on all interfaces to be reachable.
ENV HOOKFLEET_LISTEN=0.0.0.0:8080
EXPOSE 8080
# Checks the API; docker-compose.yml gives workers their own check (/metrics).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["hookfleet-api"]
