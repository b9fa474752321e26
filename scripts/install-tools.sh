#!/usr/bin/env bash
# What the end-to-end tests and benchmarks drive for real, installed only when missing:
# - Debian packages: nginx and HAProxy in front of gunicorn, wrk as the load generator, curl for
#   the README examples, chromium and chromium-driver (headless, for the dashboard's browser
#   tests: Selenium is given their paths and never downloads a browser);
# - Toxiproxy (Shopify's TCP fault injector), built with `go install` from the Go module proxy
#   into the cache outside the repository: ${SLATESIM_CACHE_DIR:-~/.cache/slatesim}/bin.
set -euo pipefail
TOXIPROXY_VERSION=v2.12.0
CACHE_DIR=${SLATESIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slatesim}
BIN_DIR=$CACHE_DIR/bin

missing=()
for tool in nginx haproxy wrk curl; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || missing+=("$tool")
done
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if ((${#missing[@]})); then
  echo "tools: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

toxiproxy=$BIN_DIR/toxiproxy-server-$TOXIPROXY_VERSION
if [[ ! -x "$toxiproxy" ]]; then
  command -v go >/dev/null || { echo "tools: Go is needed to build Toxiproxy" >&2; exit 1; }
  echo "tools: building Toxiproxy $TOXIPROXY_VERSION with go install" >&2
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  GOBIN=$build go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mkdir -p "$BIN_DIR"
  mv "$build/server" "$toxiproxy"
fi
ln -sfn "$toxiproxy" "$BIN_DIR/toxiproxy-server"
