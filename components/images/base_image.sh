#!/usr/bin/env bash
# Build a Python 3.11 base image from Debian's own packages, for machines that cannot pull
# python:3.11-slim-bookworm (no Docker Hub). debootstrap's minbase bookworm ships CPython 3.11.2.
#   components/images/base_image.sh <image-ref>
# Needs root (debootstrap) and a running Docker engine. The image holds no CA of the build host.
set -euo pipefail
ref=${1:?usage: base_image.sh <image-ref>}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if ! command -v debootstrap >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi
root=$(mktemp -d /tmp/py311-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror"
chroot "$root" sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*'
# The same interpreter path as the official python image, so Dockerfiles need not branch.
ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3.11"
ln -sf /usr/bin/python3 "$root/usr/local/bin/python3"
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$ref"
docker run --rm --network none "$ref" python3 -c 'import sys, venv; print("base", sys.version.split()[0])'
