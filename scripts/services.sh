#!/usr/bin/env bash
# Local Redis and Neo4j for development and tests, installed and started from nothing.
#
#   scripts/services.sh up|down|status [redis|neo4j|ha|cluster]   (none named: redis and neo4j)
#
# Redis: Debian's redis-server (apt-get installs it when missing), our own instance on
#   127.0.0.1:$SLATESIM_REDIS_PORT (default 16379); data, log and pid file in .run/redis/.
# Neo4j: Community 5.26 embedded with Bolt (scripts/neo4j-launcher), on
#   127.0.0.1:$SLATESIM_NEO4J_BOLT_PORT (default 17687); data, log and pid file in .run/neo4j/.
#   Its jars are fetched once from Maven Central into a cache outside the repository
#   (${SLATESIM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/slatesim}/neo4j-VERSION/lib). The neo4j
#   user's password is generated on the first `up` and kept in .run/neo4j/password (mode 600).
# `up` reuses what already runs, waits until both answer, and writes .run/services.env
# (REDIS_URL, NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD) for any shell or test to `source`.
# `down` stops only what `up` started (by pid file). `status` exits non-zero when one is down.
# ha: a Redis Sentinel topology for trying failover locally (scripts/redis-ha.sh: a primary,
#   two replicas, three sentinels from $SLATESIM_REDIS_HA_PORT, default 16400, data in
#   .run/redis-ha/); `up ha` writes .run/services-ha.env with its sentinel REDIS_URL and
#   REDIS_MIN_REPLICAS=1, to source after .run/services.env.
# cluster: a Redis Cluster of three primaries and three replicas (scripts/redis-cluster.sh, from
#   $SLATESIM_REDIS_CLUSTER_PORT, default 16500, data in .run/redis-cluster/); `up cluster`
#   writes .run/services-cluster.env with its redis+cluster REDIS_URL and REDIS_MIN_REPLICAS=1,
#   to source after .run/services.env.
#
# Tuning: SLATESIM_NEO4J_HEAP (default 512m), SLATESIM_NEO4J_PAGECACHE_MB (default 128),
# SLATESIM_START_TIMEOUT (seconds to wait for a service, default 120),
# SLATESIM_STOP_TIMEOUT (seconds from SIGTERM to SIGKILL, default 60).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN=$PWD/.run
LAUNCHER=scripts/neo4j-launcher

REDIS_PORT=${SLATESIM_REDIS_PORT:-16379}
NEO4J_PORT=${SLATESIM_NEO4J_BOLT_PORT:-17687}
# The Neo4j version is written in one place: the launcher's pom.xml.
NEO4J_VERSION=$(sed -n 's:.*<neo4j.version>\(.*\)</neo4j.version>.*:\1:p' "$LAUNCHER/pom.xml")
CACHE_DIR=${SLATESIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slatesim}
NEO4J_LIB=$CACHE_DIR/neo4j-$NEO4J_VERSION/lib
# Small enough to sit beside the test suite on a 2-core machine.
NEO4J_HEAP=${SLATESIM_NEO4J_HEAP:-512m}
NEO4J_PAGECACHE_MB=${SLATESIM_NEO4J_PAGECACHE_MB:-128}
START_TIMEOUT=${SLATESIM_START_TIMEOUT:-120}
STOP_TIMEOUT=${SLATESIM_STOP_TIMEOUT:-60}

REDIS_DIR=$RUN/redis
REDIS_PID=$REDIS_DIR/redis.pid
REDIS_LOG=$REDIS_DIR/redis.log
NEO4J_DIR=$RUN/neo4j
NEO4J_PID=$NEO4J_DIR/neo4j.pid
NEO4J_LOG=$NEO4J_DIR/neo4j.log
NEO4J_PASSWORD_FILE=$NEO4J_DIR/password

say() { echo "services: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# --- processes -------------------------------------------------------------------------------
# pid_of PIDFILE PATTERN: the pid in PIDFILE when that process lives and its command line holds
# PATTERN, so that a pid reused by an unrelated process is never taken for ours.
pid_of() {
  local pid
  [[ -f "$1" ]] || return 1
  pid=$(<"$1")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  echo "$pid"
}
redis_pid() { pid_of "$REDIS_PID" redis-server; }
neo4j_pid() { pid_of "$NEO4J_PID" "$LAUNCHER/Launcher.java"; }

# The port a running instance listens on, read from its command line: redis-server shows
# "redis-server 127.0.0.1:PORT" (or its arguments), the launcher takes HOME PORT ... arguments.
redis_port_of() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline")
  if [[ "$cmd" =~ --port\ ([0-9]+) || "$cmd" =~ :([0-9]+) ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo unknown
  fi
}
neo4j_port_of() {
  local -a args
  local i
  mapfile -d '' args <"/proc/$1/cmdline"
  for ((i = 0; i + 2 < ${#args[@]}; i++)); do
    [[ "${args[i]}" == *Launcher.java ]] && echo "${args[i + 2]}" && return 0
  done
  echo unknown
}

# shellcheck disable=SC2016 # $1 is the inner shell's argument
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

log_tail() {
  say "last lines of $1:"
  tail -n 40 "$1" >&2 2>/dev/null || true
}

# wait_until NAME LOG PIDFN CHECKFN: poll CHECKFN until it succeeds. When the process is gone,
# show the log's tail and return 1 (the caller decides); after START_TIMEOUT seconds, fail.
wait_until() {
  local name=$1 log=$2 pidfn=$3 check=$4
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$check"; do
    if ! "$pidfn" >/dev/null; then
      log_tail "$log"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$log"
      die "$name did not answer within ${START_TIMEOUT}s (it still runs; see $log)"
    fi
    sleep 0.3
  done
}

# stop NAME PIDFN PIDFILE: SIGTERM, wait up to STOP_TIMEOUT seconds, then SIGKILL.
stop() {
  local name=$1 pidfn=$2 file=$3 pid
  if ! pid=$("$pidfn"); then
    say "$name: not running"
    rm -f "$file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$file"
  say "$name: stopped (pid $pid)"
}

# already_running NAME PID RUNNING_PORT WANTED_PORT: refuse to reuse an instance on another port.
already_running() {
  [[ "$3" == "$4" ]] ||
    die "$1: already runs on port $3 (pid $2); 'scripts/services.sh down $1' first to move it to $4"
  say "$1: already running (pid $2, port $4)"
}

as_root() {
  if ((EUID == 0)); then "$@"; else sudo -n "$@"; fi
}

# --- Redis -----------------------------------------------------------------------------------
redis_install() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  say "redis: installing Debian's redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq redis-server; } \
    </dev/null >"$RUN/apt.log" 2>&1; then
    log_tail "$RUN/apt.log"
    die "redis: apt-get install redis-server failed"
  fi
  command -v redis-server >/dev/null || die "redis: redis-server is still not on PATH"
}

redis_ping() {
  [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

redis_start() {
  local pid
  if pid=$(redis_pid); then
    already_running redis "$pid" "$(redis_port_of "$pid")" "$REDIS_PORT"
    return 0
  fi
  redis_install
  port_open "$REDIS_PORT" &&
    die "redis: port $REDIS_PORT is taken by another process (set SLATESIM_REDIS_PORT)"
  mkdir -p "$REDIS_DIR"
  [[ -f "$REDIS_LOG" ]] && mv -f "$REDIS_LOG" "$REDIS_LOG.1"
  # In the foreground of its own session, detached from this shell and from the lock (fd 9).
  setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$REDIS_DIR" --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --daemonize no --logfile "" \
    </dev/null >"$REDIS_LOG" 2>&1 9>&- &
  echo $! >"$REDIS_PID"
  say "redis: starting (pid $!, port $REDIS_PORT)"
}

redis_wait() { wait_until redis "$REDIS_LOG" redis_pid redis_ping || die "redis exited while starting"; }

# --- Neo4j -----------------------------------------------------------------------------------
# Resolves the launcher's dependencies once and copies them into the cache (Maven keeps its
# downloads in its own repository, ~/.m2 by default); later runs use the copied jars.
neo4j_fetch() {
  [[ -f "$NEO4J_LIB/.complete" ]] && return 0
  command -v mvn >/dev/null || die "neo4j: Maven (mvn) is needed to fetch Neo4j $NEO4J_VERSION"
  say "neo4j: fetching Neo4j $NEO4J_VERSION jars from Maven Central into $NEO4J_LIB (once)"
  local parent tmp
  parent=$(dirname "$NEO4J_LIB")
  mkdir -p "$parent"
  tmp=$(mktemp -d "$parent/lib.partial.XXXXXX")
  if ! mvn -B -q -f "$LAUNCHER/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" </dev/null >"$parent/mvn.log" 2>&1; then
    rm -rf "$tmp"
    log_tail "$parent/mvn.log"
    die "neo4j: could not fetch Neo4j $NEO4J_VERSION from Maven Central"
  fi
  touch "$tmp/.complete"
  rm -rf "$NEO4J_LIB"
  mv "$tmp" "$NEO4J_LIB"
}

neo4j_password() {
  mkdir -p "$NEO4J_DIR"
  if [[ ! -s "$NEO4J_PASSWORD_FILE" ]]; then
    # 48 hex digits from the kernel's random source; never printed.
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$NEO4J_PASSWORD_FILE")
  fi
  chmod 600 "$NEO4J_PASSWORD_FILE"
}

# A Bolt handshake: the magic 0x6060B017, then an offer of 5.8..5.0 and 4.4; a Bolt server
# answers with the version it agrees on (00 00 minor major). The launcher opens Bolt only once
# the password is set, so an answer means Neo4j is ready for clients.
bolt_answers() {
  local reply
  # shellcheck disable=SC2016 # $1 is the inner shell's argument
  reply=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x60\x60\xb0\x17\x00\x08\x08\x05\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00" >&3
    head -c 4 <&3 | od -An -tx1' _ "$NEO4J_PORT" 2>/dev/null) || return 1
  reply=${reply//[[:space:]]/}
  [[ "$reply" =~ ^0000[0-9a-f]{2}0[45]$ ]]
}

neo4j_start() {
  local pid
  if pid=$(neo4j_pid); then
    already_running neo4j "$pid" "$(neo4j_port_of "$pid")" "$NEO4J_PORT"
    return 0
  fi
  command -v java >/dev/null || die "neo4j: Java 17 or newer is needed"
  [[ -f "$NEO4J_LIB/.complete" ]] || die "neo4j: jars missing in $NEO4J_LIB"
  port_open "$NEO4J_PORT" &&
    die "neo4j: port $NEO4J_PORT is taken by another process (set SLATESIM_NEO4J_BOLT_PORT)"
  neo4j_password
  [[ -f "$NEO4J_LOG" ]] && mv -f "$NEO4J_LOG" "$NEO4J_LOG.1"
  # The --add-opens and -D flags are those of Neo4j's own launcher (direct buffers, native file
  # access, Netty); without them Neo4j falls back to slower paths and logs warnings.
  setsid java -Xms"$NEO4J_HEAP" -Xmx"$NEO4J_HEAP" -XX:+UseSerialGC \
    -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow \
    --add-opens=java.base/java.nio=ALL-UNNAMED \
    --add-opens=java.base/java.io=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
    -Dio.netty.tryReflectionSetAccessible=true -Djdk.nio.maxCachedBufferSize=1024 \
    -Dlog4j2.disable.jmx=true \
    -cp "$NEO4J_LIB/*" "$LAUNCHER/Launcher.java" \
    "$NEO4J_DIR/home" "$NEO4J_PORT" "$NEO4J_PASSWORD_FILE" "$NEO4J_PAGECACHE_MB" \
    </dev/null >"$NEO4J_LOG" 2>&1 9>&- &
  echo $! >"$NEO4J_PID"
  say "neo4j: starting Neo4j $NEO4J_VERSION (pid $!, bolt port $NEO4J_PORT)"
  # Until the forked shell has exec'd java, the pid's command line is this script's.
  for _ in $(seq 1 50); do
    neo4j_pid >/dev/null && break
    sleep 0.1
  done
}

# A JVM that really exited while starting is started once more before giving up; one that
# still runs is waited for again (its pid may not show the launcher yet: the forked shell
# has not exec'd java; taking that for an exit once made `wait` block for good).
neo4j_wait() {
  local attempt status pid deadline
  for attempt in 1 2; do
    deadline=$((SECONDS + START_TIMEOUT))
    until wait_until neo4j "$NEO4J_LOG" neo4j_pid bolt_answers; do
      pid=$(<"$NEO4J_PID")
      kill -0 "$pid" 2>/dev/null || break
      ((SECONDS < deadline)) || die "neo4j: pid $pid runs but is not the launcher, or mute"
      say "neo4j: pid $pid still runs; waiting for Bolt again"
      sleep 1
    done
    bolt_answers && return 0
    status=0
    wait "$(<"$NEO4J_PID")" 2>/dev/null || status=$?
    ((attempt == 2)) && die "neo4j exited while starting (status $status)"
    say "neo4j: exited while starting (status $status); starting it once more"
    neo4j_start
  done
}

# --- commands --------------------------------------------------------------------------------
write_env() {
  local password="" tmp
  [[ -s "$NEO4J_PASSWORD_FILE" ]] && password=$(<"$NEO4J_PASSWORD_FILE")
  tmp=$(mktemp "$RUN/services.env.XXXXXX") # mode 600: it holds the password
  cat >"$tmp" <<ENV
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export NEO4J_URI=bolt://127.0.0.1:$NEO4J_PORT
export NEO4J_USER=neo4j
export NEO4J_PASSWORD=$password
ENV
  mv -f "$tmp" "$RUN/services.env"
}

up() {
  local redis=$1 neo4j=$2 fetch=""
  if ((neo4j)) && ! neo4j_pid >/dev/null && [[ ! -f "$NEO4J_LIB/.complete" ]]; then
    # A cold cache: fetch the jars while Redis installs and starts.
    neo4j_fetch &
    fetch=$!
  fi
  if ((redis)); then redis_start; fi
  if [[ -n $fetch ]]; then wait "$fetch" || exit 1; fi
  if ((neo4j)); then neo4j_start; fi
  if ((redis)); then
    redis_wait
    say "redis: ready on 127.0.0.1:$REDIS_PORT"
  fi
  if ((neo4j)); then
    neo4j_wait
    say "neo4j: ready on bolt://127.0.0.1:$NEO4J_PORT (user neo4j)"
  fi
  write_env
  say "settings in .run/services.env (source it)"
}

down() {
  if (($2)); then stop neo4j neo4j_pid "$NEO4J_PID"; fi
  if (($1)); then stop redis redis_pid "$REDIS_PID"; fi
}

status() {
  local code=0 pid port version
  if (($1)); then
    if pid=$(redis_pid); then
      port=$(redis_port_of "$pid")
      if [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
        say "redis: running, pid $pid, 127.0.0.1:$port, data $REDIS_DIR"
      else
        say "redis: pid $pid runs but 127.0.0.1:$port does not answer"
        code=1
      fi
    else
      say "redis: down"
      code=1
    fi
  fi
  if (($2)); then
    if pid=$(neo4j_pid); then
      port=$(neo4j_port_of "$pid")
      version=$(sed -n 's/^launcher: ready, \([^,]*\),.*/\1/p' "$NEO4J_LOG" 2>/dev/null | tail -n 1)
      if NEO4J_PORT=$port bolt_answers; then
        say "neo4j: running, pid $pid, bolt://127.0.0.1:$port," \
          "data $NEO4J_DIR/home${version:+, $version}"
      else
        say "neo4j: pid $pid runs but bolt 127.0.0.1:$port does not answer"
        code=1
      fi
    else
      say "neo4j: down"
      code=1
    fi
  fi
  return $code
}

usage() { die "usage: scripts/services.sh up|down|status [redis|neo4j|ha|cluster]"; }

(($# >= 1 && $# <= 2)) || usage
if [[ "${2:-}" == ha || "${2:-}" == cluster ]]; then
  topology=$2
  mkdir -p "$RUN"
  [[ "$1" == up ]] && redis_install
  [[ "$1" =~ ^(up|down|status)$ ]] || usage
  out=$(scripts/redis-"$topology".sh "$1" "$RUN/redis-$topology")
  if [[ "$1" == up ]]; then
    printf 'export REDIS_URL=%s\nexport REDIS_MIN_REPLICAS=1\n' "$out" >"$RUN/services-$topology.env"
    say "settings in .run/services-$topology.env (source it after .run/services.env)"
  elif [[ "$1" == status ]]; then
    say "$topology: ready, REDIS_URL=$out"
  fi
  exit 0
fi
case "${2:-both}" in
  both) services=(1 1) ;;
  redis) services=(1 0) ;;
  neo4j) services=(0 1) ;;
  *) usage ;;
esac
[[ -n "$NEO4J_VERSION" ]] || die "no <neo4j.version> in $LAUNCHER/pom.xml"

case "$1" in
  up | down)
    mkdir -p "$RUN"
    # One `up` or `down` at a time (two test runs may start together). The services are
    # started with fd 9 closed, so they never hold this lock themselves.
    exec 9>"$RUN/.lock"
    if ! flock -n 9; then
      say "waiting for another services.sh up/down to finish"
      flock -w $((START_TIMEOUT + STOP_TIMEOUT + 600)) 9 || die "$RUN/.lock is still held"
    fi
    "$1" "${services[@]}"
    ;;
  status) status "${services[@]}" ;;
  *) usage ;;
esac
