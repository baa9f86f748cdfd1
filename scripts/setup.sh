#!/usr/bin/env bash
# Installs the system packages Winnow builds against (Debian): OpenBLAS (CBLAS) and LAPACKE, and
# headless Chromium for the report test (scripts/render-report.sh), and Open MPI for winnow-mpi.
# Idempotent and quiet when everything is already there. Run as root (CI and dev machines are).
set -euo pipefail
need=()
for pkg in libopenblas-dev liblapacke-dev pkg-config chromium libopenmpi-dev openmpi-bin; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "setup: installing ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: done" >&2
