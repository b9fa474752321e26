#!/usr/bin/env bash
# Local Redis and Neo4j for development and tests, installed and started from nothing.
#   scripts/services.sh up|down|status [redis|neo4j]
# Redis: Debian's redis-server (apt-get installs it when missing), data under .run/redis/.
# Neo4j: Community 5.26 embedded with Bolt (scripts/neo4j-launcher), jars fetched once from
# Maven Central into a cache outside the repository, data under .run/neo4j/.
# `up` is idempotent and writes .run/services.env; `down` stops only what `up` started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.run"
REDIS_PORT=${SLATESIM_REDIS_PORT:-16379}
NEO4J_PORT=${SLATESIM_NEO4J_BOLT_PORT:-17687}
NEO4J_VERSION=5.26.12
NEO4J_CACHE=${SLATESIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slatesim}/neo4j-$NEO4J_VERSION
# Memory for Neo4j, small enough to sit beside the test suite on a 2-core machine.
NEO4J_HEAP=${SLATESIM_NEO4J_HEAP:-512m}
NEO4J_PAGECACHE_MB=${SLATESIM_NEO4J_PAGECACHE_MB:-128}
# Seconds to wait for a service to answer before giving up with its log.
START_TIMEOUT=${SLATESIM_START_TIMEOUT:-180}

say() { echo "services: $*" >&2; }
die() { say "$*"; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for NAME LOG CHECK...
  local name=$1 log=$2; shift 2
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@"; do
    if ((SECONDS > deadline)); then
      say "$name did not answer within ${START_TIMEOUT}s; last lines of $log:"
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

# --- Redis -----------------------------------------------------------------------------------
redis_pid=$RUN/redis/redis.pid

redis_install() {
  command -v redis-server >/dev/null && return
  say "installing redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
}

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
  if alive "$redis_pid" && redis_ping; then
    say "redis already running (pid $(cat "$redis_pid"), port $REDIS_PORT)"
    return
  fi
  redis_install
  mkdir -p "$RUN/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$RUN/redis" --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --daemonize yes --pidfile "$redis_pid" \
    --logfile "$RUN/redis/redis.log"
}

redis_wait() { wait_for redis "$RUN/redis/redis.log" redis_ping; }

# --- Neo4j -----------------------------------------------------------------------------------
neo4j_pid=$RUN/neo4j/neo4j.pid
neo4j_password_file=$RUN/neo4j/password

neo4j_fetch() {
  [[ -f "$NEO4J_CACHE/complete" ]] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Neo4j from Maven Central"
  say "fetching Neo4j $NEO4J_VERSION jars into $NEO4J_CACHE (once)"
  rm -rf "$NEO4J_CACHE/lib"
  mkdir -p "$NEO4J_CACHE"
  if ! mvn -B -q -f scripts/neo4j-launcher/pom.xml -Dneo4j.version="$NEO4J_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$NEO4J_CACHE/lib" \
    </dev/null >"$NEO4J_CACHE/mvn.log" 2>&1; then
    tail -n 30 "$NEO4J_CACHE/mvn.log" >&2
    die "could not fetch Neo4j from Maven Central"
  fi
  touch "$NEO4J_CACHE/complete"
}

neo4j_up() {
  if alive "$neo4j_pid" && port_open "$NEO4J_PORT"; then
    say "neo4j already running (pid $(cat "$neo4j_pid"), bolt port $NEO4J_PORT)"
    return
  fi
  command -v java >/dev/null || die "Java 17 is needed to run Neo4j"
  neo4j_fetch
  mkdir -p "$RUN/neo4j"
  if [[ ! -s "$neo4j_password_file" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$neo4j_password_file")
  fi
  nohup java -Xms"$NEO4J_HEAP" -Xmx"$NEO4J_HEAP" -XX:+UseSerialGC \
    -cp "$NEO4J_CACHE/lib/*" scripts/neo4j-launcher/Launcher.java \
    "$RUN/neo4j/home" "$NEO4J_PORT" "$neo4j_password_file" "$NEO4J_PAGECACHE_MB" \
    >"$RUN/neo4j/neo4j.log" 2>&1 </dev/null &
  echo $! >"$neo4j_pid"
}

neo4j_ready() {
  alive "$neo4j_pid" || { tail -n 30 "$RUN/neo4j/neo4j.log" >&2; die "neo4j exited"; }
  grep -q "bolt listening" "$RUN/neo4j/neo4j.log" && port_open "$NEO4J_PORT"
}

neo4j_wait() { wait_for neo4j "$RUN/neo4j/neo4j.log" neo4j_ready; }

# --- shared ----------------------------------------------------------------------------------
stop_pidfile() {  # stop_pidfile NAME PIDFILE
  local name=$1 file=$2
  if ! alive "$file"; then
    say "$name not running"
    rm -f "$file"
    return
  fi
  local pid
  pid=$(cat "$file")
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$file"
  say "$name stopped (pid $pid)"
}

write_env() {
  mkdir -p "$RUN"
  local password=""
  [[ -s "$neo4j_password_file" ]] && password=$(cat "$neo4j_password_file")
  (umask 077 && cat >"$RUN/services.env" <<ENV
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export NEO4J_URI=bolt://127.0.0.1:$NEO4J_PORT
export NEO4J_USER=neo4j
export NEO4J_PASSWORD=$password
ENV
)
}

status() {
  local code=0
  if alive "$redis_pid" && redis_ping; then
    say "redis: running, pid $(cat "$redis_pid"), 127.0.0.1:$REDIS_PORT, data $RUN/redis"
  else
    say "redis: down"; code=1
  fi
  if alive "$neo4j_pid" && port_open "$NEO4J_PORT"; then
    say "neo4j: running, pid $(cat "$neo4j_pid"), bolt 127.0.0.1:$NEO4J_PORT, data $RUN/neo4j"
  else
    say "neo4j: down"; code=1
  fi
  return $code
}

command=${1:-status}
which=${2:-all}
case "$command:$which" in
  up:all)
    redis_up; neo4j_up; redis_wait; neo4j_wait; write_env
    say "up: redis 127.0.0.1:$REDIS_PORT, neo4j bolt 127.0.0.1:$NEO4J_PORT (.run/services.env)" ;;
  up:redis) redis_up; redis_wait; write_env ;;
  up:neo4j) neo4j_up; neo4j_wait; write_env ;;
  down:all) stop_pidfile neo4j "$neo4j_pid"; stop_pidfile redis "$redis_pid" ;;
  down:redis) stop_pidfile redis "$redis_pid" ;;
  down:neo4j) stop_pidfile neo4j "$neo4j_pid" ;;
  status:*) status ;;
  *) die "usage: scripts/services.sh up|down|status [redis|neo4j]" ;;
esac
