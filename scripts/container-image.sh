#!/usr/bin/env bash
# Builds the project's image with podman, as `make test-container` needs it:
#   1. podman, runc and debootstrap, installed with apt-get when missing (Debian);
#   2. the base image, debian:bookworm-slim, made once from Debian's own packages with
#      debootstrap (no image registry is needed) and cached in podman's storage;
#   3. the project's image from the repository's Dockerfile, unchanged, tagged $IMAGE.
# podman reads tests/container/containers.conf (CONTAINERS_CONF) and builds on the host's
# network. A pip behind a TLS-re-signing proxy (PIP_CERT) or a private index (PIP_INDEX_URL) is
# handed to the build stage as build arguments, the CA bundle mounted read-only.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/slatesim:test}
BASE=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/tests/container/containers.conf}
root=$([ "$(id -u)" = 0 ] || echo sudo -n)
log() { echo "container: $*" >&2; }

missing=()
for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || missing+=("$tool")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    $root apt-get update -qq >/dev/null
    $root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin

if ! podman image exists "$BASE"; then
    log "making $BASE with debootstrap from $MIRROR (once; cached in podman's storage)"
    rootfs=$(mktemp -d)
    trap '$root rm -rf "$rootfs"' EXIT
    $root debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    # As the official slim image: no apt lists, no caches.
    $root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    $root tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE" >/dev/null
fi

build_args=()
if [[ -n "${PIP_CERT:-}" && -f "$PIP_CERT" ]]; then
    build_args+=(--volume "$PIP_CERT:/run/pip-ca.pem:ro" --build-arg PIP_CERT=/run/pip-ca.pem)
fi
[[ -n "${PIP_INDEX_URL:-}" ]] && build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
log "building $IMAGE from the Dockerfile"
podman build --format docker --network host "${build_args[@]}" --tag "$IMAGE" . >&2
log "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec) bytes)"
