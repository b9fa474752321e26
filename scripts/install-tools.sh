#!/usr/bin/env bash
# Debian packages the end-to-end tests and benchmarks drive for real: nginx and HAProxy in
# front of gunicorn, wrk as the load generator, curl for the README examples. Installs only
# what is missing.
set -euo pipefail
missing=()
for tool in nginx haproxy wrk curl; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "tools: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
