# syntax=docker/dockerfile:1
# Verdict image: a static musl binary on distroless/static (no shell, no libc,
# runs as the distroless `nonroot` user 65532).
#
#   docker build -t registry.example.com/verdict:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ... --push .
#
# A static build is easy here: Verdict links no C libraries (its HTTP client
# is built without TLS, so there is no OpenSSL). Not built in CI yet; see
# docs/deploy.md.

ARG RUST_VERSION=1.89

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && rustup target add "$(cat /rust-target)"
# Cross-linking arm64 from an amd64 builder: rust-lld links musl targets
# without a C cross toolchain (no dependency compiles C on Linux). Untested:
# no Docker engine where this was written.
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
COPY Cargo.toml Cargo.lock ./
COPY judges judges
COPY analyzer analyzer
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p verdict --target "$(cat /rust-target)" \
 && cp "target/$(cat /rust-target)/release/verdict" /verdict

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /verdict /usr/local/bin/verdict
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/verdict"]
CMD ["serve", "--config", "/etc/verdict/verdict.yaml"]
