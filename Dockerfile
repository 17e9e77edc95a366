# WebhookProcessor image: a release build of `webhook-processor` on a minimal glibc runtime.
#
#   docker build -t webhook-processor:latest .
#
# The build stage and the runtime share Debian 12 (bookworm), so the binary runs against the
# same glibc it was linked with. SQLite is compiled into the binary (rusqlite "bundled"), so
# the runtime needs nothing but libc and libgcc, which is what distroless/cc ships.
# For production, pin both base images by digest as well as by tag.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /build

# Dependencies first, in their own layer, so editing the service does not recompile them.
# Cargo needs a target to build, so a throwaway lib and main stand in for src/. If the manifest
# names targets whose files are not copied yet (for example a [[bench]]), cargo refuses to read
# it: this warm-up is then skipped and the build below does all the work, still correctly.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && { cargo build --release --locked \
         || echo "dependency warm-up skipped; the full build below compiles everything"; } \
    && rm -rf src target/release/.fingerprint/webhook-processor-*

# The service itself. .dockerignore lets in only the build inputs (Cargo.toml, Cargo.lock,
# schema.sql, src/, and benches/ and assets/ when they exist), so a new input folder is one
# line there. Deleting the stand-ins' fingerprints above makes cargo rebuild this crate even
# when the copied sources carry older timestamps than the warm-up build.
COPY . ./
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/webhook-processor /out/webhook-processor \
    && install -d -m 0755 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

COPY --from=build /out/webhook-processor /usr/local/bin/webhook-processor
# /data belongs to the service user so a fresh named volume is writable out of the box.
COPY --from=build --chown=10001:10001 /out/data /data

# A fixed, non-root UID/GID: Kubernetes' runAsUser/fsGroup and host bind mounts can rely on it.
USER 10001:10001

# WEBHOOK_SECRET is deliberately absent: pass it at run time (--env-file .env, a Secret, ...).
ENV DATABASE_URL=sqlite:////data/app.db \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_LEVEL=INFO

VOLUME ["/data"]
EXPOSE 8000

# The binary probes its own /health/ready, so the image needs no shell and no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["webhook-processor", "healthcheck"]

# Exec form: the service is PID 1 and receives SIGTERM itself, drains in-flight requests
# (SHUTDOWN_TIMEOUT_SECS, default 20 s), commits and exits 0. Give `docker stop` more than
# that, e.g. `docker stop -t 30`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["webhook-processor"]
CMD ["serve"]
