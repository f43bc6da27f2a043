#!/usr/bin/env bash
# Servers the tests start themselves (each on a free port, in a temporary folder), installed
# from Debian's packages where missing: one package per line, so lists from several issues merge.
#   openssh-server   sshd for the DVC SSH remote (tests/test_dvc_remote.py)
set -euo pipefail
PACKAGES=(
  openssh-server
)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
