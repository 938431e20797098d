"""`make images`: build the pipeline, train (CUDA) and serving images; optionally push them.

    python3 components/images/build.py [--images pipeline,train,serving] [--repository REPO]
        [--base-image IMAGE] [--push] [--record out/images/images.json]

Standard library only: it runs before any virtual environment exists. The tag is the package
version (setup.cfg), the repository a setting (`--repository`, else $KFP_IMAGE_REPOSITORY, else
the project's default): components/common/images.py, which names the images in the compiled pipeline.

The base is the official python:3.11-slim-bookworm; where it cannot be pulled (no Docker Hub), a
base made from Debian's own packages (base_image.sh) stands in. The CA bundle the host trusts
($SSL_CERT_FILE, else the system bundle: behind a TLS-inspecting proxy it holds the proxy's CA)
reaches the builder stage as a BuildKit secret only, never an image layer.
Each image's size, build time and (after --push) registry digest go to the record file.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from components.common.images import image, image_repository  # noqa: E402 - standard library only

OFFICIAL_BASE = "python:3.11-slim-bookworm"
DEBIAN_BASE = "kfp-prod-components/python-base:3.11-bookworm"
DEBIAN_DOCKER_CLIENT = "/usr/bin/docker"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# name -> (Dockerfile, build arguments)
IMAGES = {
    "pipeline": ("components/Dockerfile", {"LOCK": "pipeline-runtime.lock"}),
    "train": ("components/Dockerfile", {"LOCK": "train-gpu.lock"}),
    "serving": ("serving/Dockerfile", {}),
}


@functools.cache
def docker_client() -> str:
    """A docker client that can build with BuildKit: one with the buildx plugin, or Debian's
    docker.io client (20.10 has BuildKit built in; newer clients without buildx refuse)."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    if probe.returncode == 0 or not os.path.exists(DEBIAN_DOCKER_CLIENT):
        return "docker"
    return DEBIAN_DOCKER_CLIENT


def _docker(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([docker_client(), *args], check=check, text=True,
                          stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)


def _exists(ref: str) -> bool:
    return _docker("image", "inspect", ref, capture=True, check=False).returncode == 0


def resolve_base(requested: str | None) -> str:
    """The base image to build on: the one asked for, else the official one, else a Debian-made one."""
    if requested:
        return requested
    if _exists(OFFICIAL_BASE) or _docker("pull", OFFICIAL_BASE, capture=True, check=False).returncode == 0:
        return OFFICIAL_BASE
    print(f"cannot pull {OFFICIAL_BASE}; using {DEBIAN_BASE} (Debian packages)", flush=True)
    if not _exists(DEBIAN_BASE):
        subprocess.run([str(HERE / "base_image.sh"), DEBIAN_BASE], check=True)
    return DEBIAN_BASE


def ca_bundle() -> str | None:
    """The CA bundle this host trusts ($SSL_CERT_FILE, else the system bundle): behind a
    TLS-inspecting proxy it holds the proxy's CA, which the builder stage needs to reach PyPI."""
    for path in (os.environ.get("SSL_CERT_FILE"), SYSTEM_CA_BUNDLE):
        if path and os.path.isfile(path):
            return path
    return None


def build(name: str, ref: str, base: str) -> float:
    dockerfile, build_args = IMAGES[name]
    command = ["build", "--network", "host", "-f", dockerfile, "-t", ref, "--build-arg", f"BASE_IMAGE={base}"]
    for key, value in build_args.items():
        command += ["--build-arg", f"{key}={value}"]
    ca = ca_bundle()
    if ca:
        command += ["--secret", f"id=ca,src={ca}"]
    started = time.monotonic()
    subprocess.run([docker_client(), *command, str(ROOT)], check=True, env=os.environ | {"DOCKER_BUILDKIT": "1"})
    return round(time.monotonic() - started, 1)


def inspect(ref: str) -> dict:
    info = json.loads(_docker("image", "inspect", ref, capture=True).stdout)[0]
    return {"size_bytes": info["Size"], "id": info["Id"], "repo_digests": info.get("RepoDigests") or []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=",".join(IMAGES), help="comma-separated subset of " + ",".join(IMAGES))
    parser.add_argument("--repository", default=image_repository(),
                        help="default: $KFP_IMAGE_REPOSITORY, else the project's")
    parser.add_argument("--base-image", help=f"default: {OFFICIAL_BASE}, else a base from Debian packages")
    parser.add_argument("--push", action="store_true", help="push each image and record its registry digest")
    parser.add_argument("--record", default=str(ROOT / "out" / "images" / "images.json"))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.images.split(",") if n.strip()]
    unknown = sorted(set(names) - set(IMAGES))
    if unknown:
        parser.error(f"unknown images {unknown}; known: {sorted(IMAGES)}")
    subprocess.run([str(HERE / "engine.sh")], check=True)
    base = resolve_base(args.base_image)
    record_path = Path(args.record)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for name in names:
        ref = image(name, args.repository)
        print(f"== building {ref} on {base}", flush=True)
        seconds = build(name, ref, base)
        if args.push:
            _docker("push", ref)
        record[name] = {"ref": ref, "base_image": base, "build_seconds": seconds, **inspect(ref)}
        print(f"== {ref}: {record[name]['size_bytes'] / 1e9:.2f} GB, built in {seconds} s", flush=True)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(record_path)
    print(f"record: {record_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
