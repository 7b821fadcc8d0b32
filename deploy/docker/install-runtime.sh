#!/bin/sh
# Turns a debian:bookworm-slim root into Octet's runtime root: installs the runtime libraries
# listed in deploy/runtime-packages.txt and creates the unprivileged user the server runs as.
# Run as root inside that root: by the Dockerfile's runtime stage, and by
# deploy/check_runtime_image.sh --rootfs inside a debootstrapped bookworm (the same script, so the
# check proves what the image does). POSIX sh: bookworm-slim has no bash guarantees we rely on.
# Usage: install-runtime.sh PACKAGE_LIST [UID]
set -eu

list="$1"
uid="${2:-10001}"

# Comments and blank lines are not packages.
packages=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$list" | grep -v '^$' | tr '\n' ' ')
if [ -z "$packages" ]; then
  echo "install-runtime: no packages in $list" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $packages
apt-get clean
rm -rf /var/lib/apt/lists/*

# An unprivileged user with no home and no login shell; numeric uid so Kubernetes' runAsNonRoot can verify
# it without reading /etc/passwd.
if ! getent group octet >/dev/null; then groupadd --gid "$uid" octet; fi
if ! getent passwd octet >/dev/null; then
  useradd --uid "$uid" --gid "$uid" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin octet
fi
