# pg-console, built from source: `scripts/image` (or, with the builder image
# and vendored crates it prepares, `docker build .`). A release build of the
# server and of the hydrate WASM (split at its lazy routes by tools/wasm-split,
# hashed names, precompressed), on the local Debian base.
#
# No registry can be reached, and containers cannot fetch over HTTPS here, so:
# - BUILDER_IMAGE (pgc-rust:…) holds the Rust toolchain, the wasm32 target and
#   the pinned wasm-bindgen and wasm-opt (infra/build/rust, from the host's
#   toolchain and the npm registry);
# - .build/vendor holds every crate of Cargo.lock and of the toolchain's std
#   sources (`cargo vendor` on the host; the WASM's release build compiles std,
#   scripts/lib/wasm-release.sh); the build is offline.
# Layers: the dependency manifests first, built with empty crates, so a change
# to the sources alone rebuilds only the console's own crates.
ARG BUILDER_IMAGE=pgc-rust:latest
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
ENV CARGO_HOME=/cargo CARGO_TARGET_DIR=/src/target CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
COPY .build/vendor /vendor
RUN mkdir -p /cargo \
 && printf '[source.crates-io]\nreplace-with = "vendored"\n\n[source.vendored]\ndirectory = "/vendor"\n\n[net]\noffline = true\n' \
    > /cargo/config.toml
COPY Cargo.toml Cargo.lock ./
COPY .cargo/config.toml .cargo/config.toml
COPY model/Cargo.toml model/Cargo.toml
COPY domain/Cargo.toml domain/Cargo.toml
COPY app/Cargo.toml app/Cargo.toml
COPY frontend/Cargo.toml frontend/Cargo.toml
COPY server/Cargo.toml server/Cargo.toml
COPY tools/wasm-split/Cargo.toml tools/wasm-split/Cargo.toml
COPY scripts/lib/wasm-release.sh scripts/lib/wasm-release.sh
RUN for c in model domain app frontend; do mkdir -p $c/src && touch $c/src/lib.rs; done \
 && for c in server tools/wasm-split; do mkdir -p $c/src && echo 'fn main() {}' > $c/src/main.rs; done \
 && cargo build --locked --release -p server -p wasm-split \
 && . scripts/lib/wasm-release.sh && wasm_release_build --locked -p frontend --lib \
 && rm -rf model domain app frontend server tools
# Only what the build reads (so a change elsewhere keeps this layer cached).
COPY rustfmt.toml ./
COPY model model
COPY domain domain
COPY app app
COPY frontend frontend
COPY server server
COPY tools tools
COPY style style
COPY public public
COPY scripts/build scripts/build
COPY scripts/lib scripts/lib
# COPY keeps the files' own times, which may be older than the empty crates
# built above: touch them so cargo rebuilds the console's crates. (The git
# revision is not an input here: it is set in the runtime stage, so a new
# revision with the same sources reuses this layer.)
RUN find model domain app frontend server tools -name '*.rs' -exec touch {} + \
 && PGC_GIT_REVISION=unknown scripts/build --release

FROM ${BASE_IMAGE}
# The image's default user is the node image's postgres user (uid 100, gid
# 102), enough to back up replicas. The compose deployment runs it as root
# with only CHOWN, DAC_OVERRIDE and FOWNER, which restoring and reinitializing
# the cluster need (etcd's data is root's). It also needs the Docker socket:
# the compose file adds the socket's group. That socket is root-equivalent on
# the host (README: deployment).
ARG APP_UID=100
ARG APP_GID=102
COPY --from=build /src/target/release/pg-console /src/target/release/hash.txt /usr/local/bin/
COPY --from=build /src/target/site /usr/share/pg-console/site
RUN mkdir -p /var/lib/pg-console && chown ${APP_UID}:${APP_GID} /var/lib/pg-console
# Declared only now: every layer above is the same for any revision.
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="pg-console" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.source="pg-console"
# PGC_GIT_REVISION: what /healthz and --version show (read at run time).
ENV PGC_SITE_ROOT=/usr/share/pg-console/site PGC_DATA_DIR=/var/lib/pg-console PGC_LISTEN=127.0.0.1:8080 \
    HOME=/var/lib/pg-console PGC_GIT_REVISION=${GIT_REVISION}
USER ${APP_UID}:${APP_GID}
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/pg-console", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pg-console"]
CMD ["serve"]
