#!/usr/bin/env bash
# Throwaway Redis server for tests (like scripts/pg.sh).
#
#   source scripts/redis.sh          start a server, export YSYNC_TEST_REDIS_URL (and
#                                    YSYNC_TEST_REDIS_SERVER, the binary, for tests that kill and
#                                    restart Redis), and stop it when the sourcing shell exits
#                                    (EXIT trap; a script with its own EXIT trap calls ysync_redis_stop)
#   scripts/redis.sh CMD [ARGS...]   start a server, run CMD with YSYNC_TEST_REDIS_URL set, stop it,
#                                    exit with CMD's status
#   scripts/redis.sh                 start a server and wait (Ctrl-C stops it); prints the URL
#
# If YSYNC_TEST_REDIS_URL is already set, that server is used and nothing is started. On a
# machine without redis-server it installs Debian's redis-server package. The server listens only
# on 127.0.0.1 on a free port, keeps nothing on disk (no RDB, no AOF) and is never to be used for
# data you want to keep.

ysync_redis_log() { printf '== redis: %s\n' "$*" >&2; }

ysync_redis_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ysync_redis_stop() {
  if [ -n "${YSYNC_REDIS_PID:-}" ]; then
    kill "$YSYNC_REDIS_PID" 2>/dev/null || true
    wait "$YSYNC_REDIS_PID" 2>/dev/null || true
    YSYNC_REDIS_PID=""
  fi
  if [ -n "${YSYNC_REDIS_DIR:-}" ] && [ -d "$YSYNC_REDIS_DIR" ]; then
    rm -rf "$YSYNC_REDIS_DIR"
  fi
  YSYNC_REDIS_DIR=""
}

ysync_redis_start() {
  if [ -n "${YSYNC_TEST_REDIS_URL:-}" ]; then
    ysync_redis_log "using YSYNC_TEST_REDIS_URL from the environment"
    return 0
  fi
  local bin
  bin=$(command -v redis-server || true)
  if [ -z "$bin" ]; then
    ysync_redis_log "installing redis-server"
    if [ "$(id -u)" -ne 0 ]; then
      ysync_redis_log "redis-server not found and not root: install the redis-server package or set YSYNC_TEST_REDIS_URL"
      return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    bin=$(command -v redis-server || true)
    if [ -z "$bin" ]; then
      ysync_redis_log "redis-server installed but not on PATH"
      return 1
    fi
  fi
  YSYNC_REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ysync-redis.XXXXXX")

  local port attempt i
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    ysync_redis_port_free "$port" || continue
    "$bin" --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$YSYNC_REDIS_DIR" \
      --daemonize no --logfile "$YSYNC_REDIS_DIR/redis.log" &
    YSYNC_REDIS_PID=$!
    for i in $(seq 1 100); do
      if ! kill -0 "$YSYNC_REDIS_PID" 2>/dev/null; then break; fi
      if ! ysync_redis_port_free "$port"; then
        export YSYNC_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
        export YSYNC_TEST_REDIS_SERVER="$bin"
        ysync_redis_log "$("$bin" --version | awk '{print $3}') on 127.0.0.1:$port"
        return 0
      fi
      sleep 0.1
    done
    kill "$YSYNC_REDIS_PID" 2>/dev/null || true
    wait "$YSYNC_REDIS_PID" 2>/dev/null || true
    YSYNC_REDIS_PID=""
    ysync_redis_log "start on port $port failed (attempt $attempt), retrying"
  done
  ysync_redis_log "could not start redis-server; log:"; cat "$YSYNC_REDIS_DIR/redis.log" >&2 || true
  return 1
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: start now, stop when the sourcing shell exits.
  ysync_redis_start || { ysync_redis_stop; return 1; }
  trap ysync_redis_stop EXIT
else
  set -euo pipefail
  trap ysync_redis_stop EXIT
  trap 'exit 130' INT TERM
  ysync_redis_start
  if [ $# -gt 0 ]; then
    "$@"
  else
    printf 'YSYNC_TEST_REDIS_URL=%s\n' "$YSYNC_TEST_REDIS_URL"
    ysync_redis_log "running; Ctrl-C to stop and remove"
    while :; do sleep 1 & wait $!; done
  fi
fi
