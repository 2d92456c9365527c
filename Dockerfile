# syntax=docker/dockerfile:1
# storagenode-exporter image: `docker build -t storagenode-exporter .`
# The build context is whitelisted in .dockerignore (package sources and pyproject.toml only).
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGENODE_EXPORTER_STATE_FILE=/var/lib/storagenode-exporter/state.json \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY . /src
# One layer: install the package, drop the sources, create the unprivileged user and the
# directory for --state-file (a named volume mounted there inherits its ownership).
RUN pip install --no-cache-dir /src \
    && rm -rf /src \
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
