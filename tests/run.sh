#!/usr/bin/env bash
# Set up a fresh machine for the tests and run them all (slow ones included): the Debian packages
# (Arm cross compiler, newlib, qemu, Chromium for the report screenshot), then the Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
DEBIAN_PACKAGES="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm chromium"
missing=""
for package in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[keras,test,ray]'
exec python3 -m pytest "$@"
