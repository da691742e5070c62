# ecomflow: one image for every service (producer, ingest, aggregator, batch).
# Built by docker-compose.yml; `docker build -t ecomflow .` works alone too.
FROM rust:1.90-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys (cmake-free, needs a C
# compiler, which the rust image has).
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY schemas ./schemas
COPY eventlog ./eventlog
COPY stores ./stores
COPY producer ./producer
COPY ingest ./ingest
COPY aggregator ./aggregator
COPY batch ./batch
COPY telemetry ./telemetry
COPY ecomflow ./ecomflow
RUN cargo build --release --locked -p ecomflow \
    && cp target/release/ecomflow /usr/local/bin/ecomflow

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/ecomflow /usr/local/bin/ecomflow
# Checkpoints, snapshots, the report and replay markers live here.
VOLUME /data
ENV ECOMFLOW_DATA_DIR=/data
ENTRYPOINT ["ecomflow"]
CMD ["--help"]
