# modelux-server image. Build: docker build -t modelux-server .
# Serve: docker run modelux-server   (= modelux serve; MODELUX_* settings as environment)
# Schema, once per release, before serve and worker start: docker run modelux-server migrate
# Background jobs: docker run -e MODELUX_WORKER_HEALTH_PORT=8081 modelux-server worker
#   (the HEALTHCHECK below asks serve's port; compose.yaml points the worker's at 8081)

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# only what the install needs (.dockerignore keeps everything else out of the context)
COPY pyproject.toml README.md ./
COPY src/ src/
COPY deploy/install.sh deploy/install.sh
# the same script tests/deploy/test_install_script.py runs in CI: runtime dependencies only
RUN sh deploy/install.sh /opt/modelux /build

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="modelux-server" \
      org.opencontainers.image.description="An LLM control plane: OpenAI-compatible proxy, plans, limits and billing." \
      org.opencontainers.image.licenses="Apache-2.0"
# a fixed UID/GID, so Kubernetes' runAsNonRoot can check it and volumes can be chowned to it
RUN groupadd --system --gid 10001 modelux \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /var/lib/modelux --shell /usr/sbin/nologin modelux \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/modelux
# the virtual environment alone: no compiler, no source tree, no pip cache
COPY --from=builder /opt/modelux /opt/modelux
ENV PATH=/opt/modelux/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELUX_HOST=0.0.0.0 \
    MODELUX_PORT=8080 \
    MODELUX_DATA_DIR=/var/lib/modelux
USER 10001:10001
WORKDIR /var/lib/modelux
EXPOSE 8080
# slim has no curl; the venv's Python asks /healthz (liveness) on the configured port
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MODELUX_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["modelux"]
CMD ["serve"]
