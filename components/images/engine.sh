#!/usr/bin/env bash
# Make sure a Docker engine answers: start one (installing Debian's docker.io first when dockerd is
# missing) if none does. The engine runs with --bridge=none --iptables=false: containers get a
# loopback interface only, which is all our tasks need (no network at run time).
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "no Docker engine answers and this is not root: start Docker (or add yourself to the docker group)" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io
fi
command -v docker >/dev/null || { echo "docker client missing after install" >&2; exit 1; }
log=${DOCKERD_LOG:-/var/log/dockerd.log}
nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 &
for _ in $(seq 60); do docker info >/dev/null 2>&1 && { echo "dockerd started (log: $log)"; exit 0; }; sleep 1; done
echo "dockerd did not answer within 60 s; see $log" >&2
tail -20 "$log" >&2
exit 1
