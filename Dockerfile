# syntax=docker/dockerfile:1
# storagenode-exporter image: `docker build -t storagenode-exporter .`
# The build context is whitelisted in .dockerignore (package sources and pyproject.toml only).

# Build stage: a compiler for the C hot path (exporter/_hotpath.c), wheels for everything.
FROM python:3.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The compiler only lives in this discarded stage; Debian's security updates move its
# exact versions, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN pip wheel --wheel-dir /wheels /src

FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGENODE_EXPORTER_STATE_FILE=/var/lib/storagenode-exporter/state.json \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
# One layer: install the wheels (and fail the build if the C hot path is missing), drop
# them, create the unprivileged user and the directory for --state-file (a named volume
# mounted there inherits its ownership).
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && python -c "import exporter._hotpath" \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /var/lib/storagenode-exporter --shell /usr/sbin/nologin exporter \
    && install -d -o exporter -g exporter -m 0750 /var/lib/storagenode-exporter

USER 10001:10001
WORKDIR /var/lib/storagenode-exporter
EXPOSE 9184
# No curl in the slim image: the health check uses the Python that is there anyway.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9184/healthz', timeout=4)"]
ENTRYPOINT ["storagenode-exporter"]
