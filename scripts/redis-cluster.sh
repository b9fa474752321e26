#!/usr/bin/env bash
# A local Redis Cluster on loopback, for development and tests:
#
#   scripts/redis-cluster.sh up|down|status DIR [BASE_PORT]
#
# Three primaries on BASE_PORT..BASE_PORT+2 (default 16500) and one replica each on
# BASE_PORT+3..+5, made with `redis-cli --cluster create --cluster-replicas 1` from Debian's
# redis-server (no other binary). Every node keeps its config, data (AOF), log and pid file in
# DIR. The slots are split evenly (5461, 5461, 5462); the job store's shards lie evenly over
# them (docs/operations.md). Timings are short, for tests: a primary is declared failed after
# 2 s (cluster-node-timeout), and its replica takes over a moment later.
#
# `up` prints the REDIS_URL to use: redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
set -euo pipefail

NODE_TIMEOUT_MS=${SLATESIM_CLUSTER_NODE_TIMEOUT_MS:-2000}
START_TIMEOUT=${SLATESIM_START_TIMEOUT:-60}

say() { echo "redis-cluster: $*" >&2; }
die() {
  say "$*"
  exit 1
}

(($# >= 2 && $# <= 3)) || die "usage: scripts/redis-cluster.sh up|down|status DIR [BASE_PORT]"
COMMAND=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
BASE=${3:-${SLATESIM_REDIS_CLUSTER_PORT:-16500}}
PORTS=("$BASE" $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 4)) $((BASE + 5)))

cli() { timeout 5 redis-cli -h 127.0.0.1 -p "$1" "${@:2}" 2>/dev/null; }

# A process that exited but was not reaped yet (a zombie) is not alive.
pid_alive() {
  local state
  [[ -f "$1" ]] || return 1
  state=$(awk '{print $3}' "/proc/$(<"$1")/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

start_node() {
  local port=$1
  pid_alive "$DIR/redis-$port.pid" && return 0
  mkdir -p "$DIR/redis-$port"
  setsid redis-server --bind 127.0.0.1 --port "$port" --dir "$DIR/redis-$port" \
    --cluster-enabled yes --cluster-config-file "$DIR/redis-$port/nodes.conf" \
    --cluster-node-timeout "$NODE_TIMEOUT_MS" --cluster-require-full-coverage yes \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --daemonize no --logfile "" </dev/null >>"$DIR/redis-$port.log" 2>&1 &
  echo $! >"$DIR/redis-$port.pid"
}

answers() { [[ "$(cli "$1" ping)" == PONG ]]; }

# Up when every node says the cluster is ok, three of them are replicas, and every replica's
# link to its primary is up (its copy is in sync).
ready() {
  local port replicas=0
  for port in "${PORTS[@]}"; do
    cli "$port" cluster info | grep -q '^cluster_state:ok' || return 1
    if cli "$port" info replication | grep -q '^role:slave'; then
      cli "$port" info replication | grep -q '^master_link_status:up' || return 1
      replicas=$((replicas + 1))
    fi
  done
  ((replicas == 3))
}

wait_for() {
  local what=$1 deadline=$((SECONDS + START_TIMEOUT))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || die "$what not reached within ${START_TIMEOUT}s (logs in $DIR)"
    sleep 0.2
  done
}

url() {
  echo "redis+cluster://127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}"
}

case $COMMAND in
up)
  command -v redis-server >/dev/null || die "redis-server is not installed"
  for port in "${PORTS[@]}"; do start_node "$port"; done
  for port in "${PORTS[@]}"; do wait_for "node $port answering" answers "$port"; done
  if ! cli "$BASE" cluster info | grep -q '^cluster_slots_assigned:16384'; then
    nodes=()
    for port in "${PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
    timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 \
      --cluster-yes >>"$DIR/create.log" 2>&1 || die "cluster create failed (see $DIR/create.log)"
  fi
  wait_for "the cluster ready" ready
  url
  ;;
down)
  for port in "${PORTS[@]}"; do
    if pid_alive "$DIR/redis-$port.pid"; then
      kill "$(<"$DIR/redis-$port.pid")" 2>/dev/null || true
    fi
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do
      pid_alive "$DIR/redis-$port.pid" || break
      sleep 0.1
    done
    # A node that outlives SIGTERM by 5 s is not left behind.
    if pid_alive "$DIR/redis-$port.pid"; then
      kill -9 "$(<"$DIR/redis-$port.pid")" 2>/dev/null || true
    fi
    rm -f "$DIR/redis-$port.pid"
  done
  ;;
status)
  ready && url
  ;;
*)
  die "usage: scripts/redis-cluster.sh up|down|status DIR [BASE_PORT]"
  ;;
esac
