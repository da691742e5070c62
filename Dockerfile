# ecomflow: one image for every service (producer, ingest, aggregator, batch).
# Built by docker-compose.yml; `docker build -t ecomflow .` works alone too.
#
# The Rust image must be at least the highest `rust-version` in the resolved
# dependency graph (Cargo.toml's `rust-version` is that minimum;
# tests/check_compose.py checks both against `cargo metadata`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys: a C compiler (in the rust
# image), OpenSSL's headers for TLS and SASL SCRAM, zlib for gzip.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY schemas ./schemas
COPY eventlog ./eventlog
COPY stores ./stores
COPY producer ./producer
COPY ingest ./ingest
COPY aggregator ./aggregator
COPY batch ./batch
COPY engine ./engine
COPY telemetry ./telemetry
COPY measures ./measures
COPY stage ./stage
COPY ecomflow ./ecomflow
COPY docs/openapi.json ./docs/openapi.json
# The release profile carries no debug info (Cargo.toml). `distributed`
# builds the Kafka, MongoDB and HBase clients in (the default build has the
# embedded engines only).
RUN cargo build --release --locked -p ecomflow --features distributed \
    && cp target/release/ecomflow /usr/local/bin/ecomflow

FROM debian:bookworm-slim
# libssl3: librdkafka's TLS; curl: the compose health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ecomflow \
    && mkdir -p /data && chown ecomflow:ecomflow /data
COPY --from=build /usr/local/bin/ecomflow /usr/local/bin/ecomflow
# Checkpoints, snapshots, the report and replay markers live here.
VOLUME /data
ENV ECOMFLOW_DATA_DIR=/data
USER ecomflow
ENTRYPOINT ["ecomflow"]
CMD ["--help"]
