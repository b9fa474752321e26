#!/usr/bin/env bash
# A local Redis Sentinel topology on loopback, for development and tests:
#
#   scripts/redis-ha.sh up|down|status DIR [BASE_PORT]
#
# One primary on BASE_PORT (default 16400), two replicas on BASE_PORT+1 and +2 (so that a
# promoted primary still has a replica to acknowledge its writes), and three sentinels on
# BASE_PORT+10..+12 monitoring them as service "slatesim" (quorum 2). Every process keeps its
# config, data, log and pid file in DIR. The same redis-server binary runs the sentinels
# (`--sentinel`), so nothing beyond Debian's redis-server is needed.
#
# Timings are short, for tests: a primary is declared down after 1 s and a failover takes
# about 2 to 3 s; docs/operations.md gives production values. Every node refuses writes
# while fewer than one replica is connected and in sync (min-replicas-to-write 1), so a
# primary cut off from its replicas stops acknowledging instead of diverging.
#
# `up` prints the REDIS_URL to use: redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,.../slatesim/0
set -euo pipefail

SERVICE=slatesim
DOWN_AFTER_MS=${SLATESIM_HA_DOWN_AFTER_MS:-1000}
FAILOVER_TIMEOUT_MS=${SLATESIM_HA_FAILOVER_TIMEOUT_MS:-5000}
START_TIMEOUT=${SLATESIM_START_TIMEOUT:-60}

say() { echo "redis-ha: $*" >&2; }
die() {
  say "$*"
  exit 1
}

(($# >= 2 && $# <= 3)) || die "usage: scripts/redis-ha.sh up|down|status DIR [BASE_PORT]"
COMMAND=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
BASE=${3:-${SLATESIM_REDIS_HA_PORT:-16400}}
SERVERS=("$BASE" $((BASE + 1)) $((BASE + 2)))
SENTINELS=($((BASE + 10)) $((BASE + 11)) $((BASE + 12)))

cli() { timeout 2 redis-cli -h 127.0.0.1 -p "$1" "${@:2}" 2>/dev/null; }

# A process that exited but was not reaped yet (a zombie) is not alive.
pid_alive() {
  local state
  [[ -f "$1" ]] || return 1
  state=$(awk '{print $3}' "/proc/$(<"$1")/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

start_server() {
  local port=$1 replica_of=$2
  pid_alive "$DIR/redis-$port.pid" && return 0
  mkdir -p "$DIR/redis-$port"
  local args=(--bind 127.0.0.1 --port "$port" --dir "$DIR/redis-$port" --appendonly yes
    --appendfsync everysec --maxmemory-policy noeviction --daemonize no --logfile ""
    --min-replicas-to-write 1 --min-replicas-max-lag 10 --repl-diskless-sync no)
  [[ -n $replica_of ]] && args+=(--replicaof 127.0.0.1 "$replica_of")
  setsid redis-server "${args[@]}" </dev/null >>"$DIR/redis-$port.log" 2>&1 &
  echo $! >"$DIR/redis-$port.pid"
}

start_sentinel() {
  local port=$1 conf="$DIR/sentinel-$1.conf"
  pid_alive "$DIR/sentinel-$port.pid" && return 0
  [[ -f $conf ]] || cat >"$conf" <<CONF
bind 127.0.0.1
port $port
dir $DIR
sentinel resolve-hostnames no
sentinel monitor $SERVICE 127.0.0.1 ${SERVERS[0]} 2
sentinel down-after-milliseconds $SERVICE $DOWN_AFTER_MS
sentinel failover-timeout $SERVICE $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $SERVICE 1
CONF
  setsid redis-server "$conf" --sentinel </dev/null >>"$DIR/sentinel-$port.log" 2>&1 &
  echo $! >"$DIR/sentinel-$port.pid"
}

# The topology is up when every sentinel knows the primary, two replicas and two other
# sentinels, and the primary accepts writes.
ready() {
  local port master
  for port in "${SENTINELS[@]}"; do
    master=$(cli "$port" sentinel master "$SERVICE") || return 1
    [[ $(sed -n '/^num-slaves$/{n;p}' <<<"$master") == 2 ]] || return 1
    [[ $(sed -n '/^num-other-sentinels$/{n;p}' <<<"$master") == 2 ]] || return 1
  done
  port=$(cli "${SENTINELS[0]}" sentinel get-master-addr-by-name "$SERVICE" | tail -n 1)
  [[ $(cli "$port" set slatesim-ha:ready 1) == OK ]]
}

url() {
  local hosts="" port
  for port in "${SENTINELS[@]}"; do hosts+="${hosts:+,}127.0.0.1:$port"; done
  echo "redis+sentinel://$hosts/$SERVICE/0"
}

up() {
  command -v redis-server >/dev/null || die "redis-server is not installed (scripts/services.sh up redis installs it)"
  start_server "${SERVERS[0]}" ""
  start_server "${SERVERS[1]}" "${SERVERS[0]}"
  start_server "${SERVERS[2]}" "${SERVERS[0]}"
  for port in "${SENTINELS[@]}"; do start_sentinel "$port"; done
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready; do
    ((SECONDS < deadline)) || die "the topology in $DIR is not ready after ${START_TIMEOUT}s"
    sleep 0.2
  done
  say "ready: primary and 2 replicas on ${SERVERS[*]}, sentinels on ${SENTINELS[*]}"
  url
}

down() {
  local file pid
  for file in "$DIR"/sentinel-*.pid "$DIR"/redis-*.pid; do
    [[ -f $file ]] || continue
    pid=$(<"$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do pid_alive "$file" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
  done
  say "stopped the topology in $DIR"
}

status() {
  local port
  for port in "${SERVERS[@]}"; do
    say "redis $port: $(cli "$port" role | head -n 1 || echo down)"
  done
  for port in "${SENTINELS[@]}"; do
    say "sentinel $port: primary at $(cli "$port" sentinel get-master-addr-by-name "$SERVICE" | tr '\n' ':' || echo down)"
  done
}

case "$COMMAND" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: scripts/redis-ha.sh up|down|status DIR [BASE_PORT]" ;;
esac
