#!/usr/bin/env bash
# Installs Debian's packer when it is missing and apt-get can be used (root, or passwordless sudo).
# Never fails the caller: without packer, the demo uses a prebuilt AMI and says so.
set -u
if command -v packer >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "packer is not installed and apt-get is not available: install Packer (https://developer.hashicorp.com/packer/install) to bake AMIs." >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "packer is not installed; run 'sudo apt-get install packer' to bake AMIs." >&2
  exit 0
fi
echo "Installing Debian's packer with apt-get…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq packer >/dev/null \
  && packer version \
  || echo "apt-get could not install packer; baking AMIs will not be possible." >&2
exit 0
