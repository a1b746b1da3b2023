#!/usr/bin/env bash
# Build the Space's Docker image where Docker Hub and PyTorch's index cannot be reached but Debian's
# mirror and PyPI can (this project's build machines): the base image is made from Debian's own
# packages (debootstrap: Debian 12, Python 3.11, pip in a virtual environment on PATH, as
# python:3.11-slim has them in /usr/local), and torch comes from a folder of wheels served to the
# build over HTTP. The Dockerfile is the one a Space builds; only its two build arguments change.
#
#   bash bench/docker_offline.sh [TAG]       (default tag: workbench; needs root and a running dockerd)
#
# Then: docker run -p 8501:8501 workbench, or bench/bench_classroom.py --image workbench.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-workbench}
BASE=local/python:3.11-bookworm
WHEELS=${WHEELS:-/opt/wheels}  # holds torch-2.13.0+cpu-cp311-...whl
PORT=8765

if ! docker image inspect "$BASE" > /dev/null 2>&1; then
    command -v debootstrap > /dev/null || apt-get install -y debootstrap
    rootfs=$(mktemp -d)
    echo "making $BASE from Debian's packages in $rootfs (a few minutes)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
        http://deb.debian.org/debian > /dev/null
    # The machine's certificate bundle, so pip trusts what this machine trusts (a proxy's CA, if any).
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    tar -C "$rootfs" -c . | docker import - "$BASE-rootfs" > /dev/null
    rm -rf "$rootfs"
    docker build -q -t "$BASE" - <<EOF
FROM $BASE-rootfs
RUN python3 -m venv /usr/local/python && /usr/local/python/bin/pip install -q --upgrade pip
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
EOF
fi

host=$(ip -4 addr show docker0 | awk '/inet /{split($2, a, "/"); print a[1]}')
python3 -m http.server "$PORT" --bind "$host" --directory "$WHEELS" > /dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
docker build -t "$TAG" \
    --build-arg PYTHON_IMAGE="$BASE" \
    --build-arg TORCH_PIP="--find-links http://$host:$PORT/ --trusted-host $host" .
