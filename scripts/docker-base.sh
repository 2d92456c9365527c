#!/usr/bin/env bash
# A stand-in for python:3.12-slim-bookworm made from Debian packages, for machines that can
# run a Docker engine but cannot pull from a registry (CI here):
#
#   scripts/docker-base.sh [TAG]          # prints the image tag on stdout
#   docker build --build-arg PYTHON_IMAGE="$(scripts/docker-base.sh)" \
#       --build-arg BUILD_PACKAGES="gcc libc6-dev python3-dev" -t storagenode-exporter .
#
# debootstrap --variant=minbase bookworm, plus Debian's python3 and python3-venv, imported with
# `docker import`. The host's CA bundle goes in too: where the package registries are reached
# through a TLS-intercepting proxy, apt and pip inside the build need its certificate authority.
# The tag carries a hash of this script and of that bundle, so an existing image is reused
# (seconds) and a changed recipe or CA makes a new one. Needs root, debootstrap and docker.
set -euo pipefail

PACKAGES="python3,python3-venv,ca-certificates"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

hash=$(cat "$0" "$CA_BUNDLE" 2>/dev/null | sha256sum | cut -c1-12)
tag="${1:-storagenode-exporter-ci-base:$SUITE-$hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "docker-base.sh: $tool not found" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "docker-base.sh: debootstrap needs root" >&2; exit 2; }

root=$(mktemp -d /tmp/storagenode-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "docker-base.sh: debootstrap $SUITE from $MIRROR into $root" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >&2 \
  || { tail -20 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null; exit 1; }
if [ -s "$CA_BUNDLE" ]; then
  install -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
fi
# What the official image's slim variant also leaves out; the image stays small.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
# `python` as in the official image; pip (in the venv) and requests find the CA bundle.
ln -sf python3 "$root/usr/bin/python"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  - "$tag" >&2
echo "$tag"
