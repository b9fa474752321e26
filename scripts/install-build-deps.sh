#!/usr/bin/env bash
# What building the simulation's C kernel needs (app/slates/_kernel.c): a C compiler and the
# headers of the Python that builds it. Installs the missing ones with apt-get (Debian).
# Usage: scripts/install-build-deps.sh PYTHON
set -euo pipefail
python=${1:-python3}
root=$([ "$(id -u)" = 0 ] || echo sudo -n)
missing=()
command -v cc >/dev/null || missing+=(gcc)
"$python" - <<'PY' || missing+=(python3-dev)
import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
if ((${#missing[@]})); then
    echo "installing what the C kernel's build needs: ${missing[*]}"
    $root apt-get update -qq
    $root apt-get install -y -qq "${missing[@]}"
fi
