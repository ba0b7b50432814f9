# syntax=docker/dockerfile:1
# One build, three small runtime images: `--target web`, `--target worker`, `--target sim`.
# Dependencies are compiled in their own layer (cargo-chef), so a code change rebuilds only
# our crates. The base images are build arguments (where no registry can be reached,
# scripts/compose-smoke.sh builds them from Debian's packages and reuses the runtime stages
# below over binaries built on the host).
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p sentinel-web -p sentinel-worker -p sentinel-sim \
    && cp target/release/sentinel-web target/release/sentinel-worker target/release/sentinel-sim /usr/local/bin/

# The runtime: Debian slim with CA roots (Graph and Entra are https) and curl for healthchecks,
# running as an unprivileged user.
FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sentinel
USER 10001
ENV LOG_FORMAT=json

FROM runtime AS web
COPY --from=builder /usr/local/bin/sentinel-web /usr/local/bin/sentinel-web
ENV WEB_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/usr/local/bin/sentinel-web"]

FROM runtime AS worker
COPY --from=builder /usr/local/bin/sentinel-worker /usr/local/bin/sentinel-worker
ENV WORKER_API_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8081/health"]
ENTRYPOINT ["/usr/local/bin/sentinel-worker"]
CMD ["serve"]

# The simulated tenant, for the demo overlay (docker-compose.demo.yml) only.
FROM runtime AS sim
COPY --from=builder /usr/local/bin/sentinel-sim /usr/local/bin/sentinel-sim
EXPOSE 8089
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8089/_sim/health"]
ENTRYPOINT ["/usr/local/bin/sentinel-sim"]
