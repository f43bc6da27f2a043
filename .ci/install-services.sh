#!/usr/bin/env bash
# Servers the tests start themselves, from Debian's packages, installed where missing (CI's
# clean machine; a developer's once). One package a line, with the tests that need it.
set -euo pipefail

PACKAGES=(
  postgresql  # tests/test_distributed_sweeps.py: the sweep workers' shared Optuna study
  openssh-server  # tests/test_dvc_remote.py: sshd for the DVC SSH remote
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
echo "installing ${missing[*]}"
# the Debian package starts no server of its own in a container (no init); the tests start
# theirs in temporary folders on free ports
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
