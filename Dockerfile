# syntax=docker/dockerfile:1
# Octet model server image.
#   docker build -t octet:dev .
#   docker run --rm --read-only --tmpfs /tmp -p 8500:8500 -p 8502:8502 octet:dev
# Build stage: Debian bookworm with the toolchain and -dev packages (deploy/setup.sh --build-only).
# Runtime stage: bookworm-slim with only the shared libraries in deploy/runtime-packages.txt,
# installed by deploy/docker/install-runtime.sh -- the same script deploy/check_runtime_image.sh
# runs in a debootstrapped bookworm to prove the stage is complete without a Docker engine.

FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/setup.sh deploy/setup.sh
RUN bash deploy/setup.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
# Tests are built and run by CI (deploy/test.sh), not in the image build.
RUN cmake --preset release -DOCTET_BUILD_TESTS=OFF \
 && cmake --build --preset release --target octet-server octet octet-bench \
 && mkdir -p /out \
 && cp build/release/server/octet-server build/release/core/octet \
       build/release/deploy/bench/octet-bench /out/ \
 && strip --strip-debug /out/*

FROM debian:bookworm-slim AS runtime
COPY deploy/runtime-packages.txt deploy/docker/install-runtime.sh /tmp/octet-install/
RUN sh /tmp/octet-install/install-runtime.sh /tmp/octet-install/runtime-packages.txt 10001 \
 && rm -rf /tmp/octet-install
COPY --from=build /out/ /usr/local/bin/
# The demo model repository is the default; mount a volume over /models to serve others.
COPY --chown=0:0 deploy/models /models
# Configuration through OCTET_<FLAG> environment variables (a command-line flag wins).
# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning on shared cores.
ENV OCTET_MODEL_REPOSITORY=/models \
    OMP_WAIT_POLICY=PASSIVE \
    TMPDIR=/tmp
# Nothing is written outside /tmp, so the container runs with a read-only root filesystem.
USER 10001:10001
WORKDIR /tmp
# 8500: gRPC (Predict, model status, grpc.health.v1.Health); 8502: Prometheus /metrics.
EXPOSE 8500 8502
# Exec form: octet-server is PID 1 and receives SIGTERM directly, so it drains before exiting.
ENTRYPOINT ["/usr/local/bin/octet-server"]
CMD []
