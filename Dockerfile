# storagenode-exporter image: `docker build -t storagenode-exporter .`
# The build context is whitelisted in .dockerignore (package sources and pyproject.toml only).
#
# PYTHON_IMAGE is the base of both stages. Any Debian-based image with python3 and its venv
# module works: CI builds on one made from Debian's packages (scripts/docker-base.sh), with
# BUILD_PACKAGES="gcc libc6-dev python3-dev" (the official image has the Python headers).
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_TRUSTED_HOST, when given as build arguments, are
# seen by pip in the build stage (a private index or mirror); they do not reach the image.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Build stage: a compiler for the C hot path (exporter/hotpath/*.c), the package and its
# dependencies in a virtual environment (Debian's own Python refuses a system-wide install).
FROM ${PYTHON_IMAGE} AS build
ARG BUILD_PACKAGES="gcc libc6-dev"
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The compiler only lives in this discarded stage; Debian's security updates move its
# exact versions, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${BUILD_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/storagenode-exporter
COPY . /src
# Fail the build if the C hot path did not compile (the install would go on without it).
RUN /opt/storagenode-exporter/bin/pip install /src \
    && /opt/storagenode-exporter/bin/python -c "import exporter._hotpath"

FROM ${PYTHON_IMAGE}

ENV PATH=/opt/storagenode-exporter/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGENODE_EXPORTER_STATE_FILE=/var/lib/storagenode-exporter/state.json

COPY --from=build /opt/storagenode-exporter /opt/storagenode-exporter
# The unprivileged user and the directory for --state-file (a named volume mounted there
# inherits its ownership).
RUN python -c "import exporter._hotpath" \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /var/lib/storagenode-exporter --shell /usr/sbin/nologin exporter \
    && install -d -o exporter -g exporter -m 0750 /var/lib/storagenode-exporter
# The commit the image is built from, for --version and storagenode_exporter_build_info:
# `docker build --build-arg REVISION="$(git rev-parse HEAD)" .` (compose passes
# EXPORTER_REVISION). Without it (a build from a tarball) the revision is "unknown". Last of
# the layers, so a new commit rebuilds only this one.
ARG REVISION=""
LABEL org.opencontainers.image.revision="${REVISION}"
RUN if [ -n "${REVISION}" ]; then \
        python -c 'import pathlib, sys, exporter; pathlib.Path(exporter.__file__).with_name("REVISION").write_text(sys.argv[1] + "\n")' "${REVISION}" \
        && test "$(python -c 'from exporter.revision import revision; print(revision())')" = "${REVISION}"; \
    fi

USER 10001:10001
WORKDIR /var/lib/storagenode-exporter
EXPOSE 9184
# /healthz on the address the exporter was given (--web.listen-address, or web.listen_address
# in --config; http or https), read from its command line: no port to keep in sync here, and
# /healthz needs no credentials when basic auth is on. No curl in the slim image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "exporter.healthcheck"]
ENTRYPOINT ["storagenode-exporter"]
