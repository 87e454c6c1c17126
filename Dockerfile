# pg-console runtime image. Build the binary and site first (scripts/build
# --release), then: docker build --build-arg BASE_IMAGE=pgc-base:bookworm -t pg-console .
# (The full multi-stage build with a Rust toolchain image is a later issue: no
# registry can be reached on the development machines.)
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN useradd --system --home /var/lib/pg-console --create-home pgconsole
COPY target/release/pg-console /usr/local/bin/pg-console
COPY target/site /usr/share/pg-console/site
ENV PGC_SITE_ROOT=/usr/share/pg-console/site PGC_LISTEN=0.0.0.0:8080
USER pgconsole
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pg-console"]
CMD ["serve"]
