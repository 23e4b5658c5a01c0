#!/usr/bin/env bash
# Make this machine able to build and run container images with podman, without a Docker
# engine or a registry (see ../shared/CONTAINERS.md). Idempotent: a second run changes nothing.
#
#   1. installs podman, runc and debootstrap with apt-get when podman is missing (needs root);
#   2. writes a containers.conf (runc, cgroupfs, rlimits within this machine's hard limits)
#      into the cache directory; /etc/containers is left alone;
#   3. creates the registry-free base image localhost/python-base:3.11 with debootstrap, once.
#
# Progress goes to stderr; stdout is only the environment to use, so
#   eval "$(bash scripts/podman-setup.sh)"
# sets CONTAINERS_CONF and PROMOTE_BASE_IMAGE (read by tests/test_container.py).
#
# Environment: PROMOTE_PODMAN_CACHE (default ~/.cache/promote-podman),
#              PROMOTE_BASE_IMAGE (default localhost/python-base:3.11),
#              DEBIAN_SUITE (default bookworm, whose python3 is 3.11).
set -euo pipefail

cache=${PROMOTE_PODMAN_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/promote-podman}
base_image=${PROMOTE_BASE_IMAGE:-localhost/python-base:3.11}
suite=${DEBIAN_SUITE:-bookworm}

log() { echo "podman-setup: $*" >&2; }

# 1. Packages.
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${missing[*]} and not root: cannot install them"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq podman runc debootstrap >&2
fi

# 2. containers.conf: crun refuses hybrid cgroups here, and podman's default rlimits exceed
#    the hard limits.
mkdir -p "$cache"
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
conf=$cache/containers.conf
new_conf=$(
  cat <<EOF
# Written by promote's scripts/podman-setup.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$new_conf" ]; then
  printf '%s\n' "$new_conf" >"$conf"
  log "wrote $conf"
fi
export CONTAINERS_CONF=$conf

# 3. Base image: Debian's python3 with venv and CA certificates, imported from a debootstrap
#    root file system (no registry can be reached).
if podman image exists "$base_image"; then
  log "$base_image exists"
else
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "creating $base_image from debootstrap $suite ($mirror); about a minute"
  started=$SECONDS
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$base_image" >&2
  log "created $base_image in $((SECONDS - started)) s"
fi

echo "export CONTAINERS_CONF=$conf"
echo "export PROMOTE_BASE_IMAGE=$base_image"
