#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests.
#
#   source scripts/pg.sh          start a cluster, export YSYNC_TEST_DATABASE_URL, and stop and
#                                 remove the cluster when the sourcing shell exits (EXIT trap;
#                                 a script that sets its own EXIT trap must call ysync_pg_stop)
#   scripts/pg.sh CMD [ARGS...]   start a cluster, run CMD with YSYNC_TEST_DATABASE_URL set,
#                                 stop the cluster, exit with CMD's status
#   scripts/pg.sh                 start a cluster and wait (Ctrl-C stops it); prints the URL
#
# If YSYNC_TEST_DATABASE_URL is already set, that database is used and nothing is started.
# On a machine without PostgreSQL server binaries it installs Debian's postgresql package.
# The cluster lives in a temporary directory, listens only on 127.0.0.1 on a free port, trusts
# local connections and runs with fsync off: fast, and never to be used for data you want to keep.

ysync_pg_log() { printf '== pg: %s\n' "$*" >&2; }

# ysync_pg_bindir prints the bin directory of the newest installed PostgreSQL server.
ysync_pg_bindir() {
  local d best="" bestv=-1 v
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
    v=$(basename "$(dirname "$d")")
    v=${v%%.*}
    [[ $v =~ ^[0-9]+$ ]] || v=0
    if [ "$v" -gt "$bestv" ]; then best=$d; bestv=$v; fi
  done
  [ -n "$best" ] && printf '%s\n' "$best"
}

# ysync_pg_as_owner runs a command as the cluster owner: the postgres user when we are root
# (initdb and pg_ctl refuse to run as root), else ourselves.
ysync_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# ysync_pg_port_free succeeds when nothing accepts connections on 127.0.0.1:$1.
ysync_pg_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ysync_pg_stop() {
  if [ -n "${YSYNC_PG_DIR:-}" ] && [ -d "$YSYNC_PG_DIR" ]; then
    if [ -n "${YSYNC_PG_BIN:-}" ] && [ -f "$YSYNC_PG_DIR/data/postmaster.pid" ]; then
      ysync_pg_as_owner "$YSYNC_PG_BIN/pg_ctl" -D "$YSYNC_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$YSYNC_PG_DIR"
  fi
  YSYNC_PG_DIR=""
}

ysync_pg_start() {
  if [ -n "${YSYNC_TEST_DATABASE_URL:-}" ]; then
    ysync_pg_log "using YSYNC_TEST_DATABASE_URL from the environment"
    return 0
  fi

  YSYNC_PG_BIN=$(ysync_pg_bindir || true)
  if [ -z "$YSYNC_PG_BIN" ]; then
    ysync_pg_log "installing postgresql"
    if [ "$(id -u)" -ne 0 ]; then
      ysync_pg_log "PostgreSQL server binaries not found and not root: install the postgresql package or set YSYNC_TEST_DATABASE_URL"
      return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    YSYNC_PG_BIN=$(ysync_pg_bindir || true)
    if [ -z "$YSYNC_PG_BIN" ]; then
      ysync_pg_log "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
      return 1
    fi
  fi

  YSYNC_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ysync-pg.XXXXXX")
  chmod 0755 "$YSYNC_PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { ysync_pg_log "no postgres user to run the cluster as"; return 1; }
    chown postgres: "$YSYNC_PG_DIR"
  fi

  if ! ysync_pg_as_owner "$YSYNC_PG_BIN/initdb" -D "$YSYNC_PG_DIR/data" -U postgres \
      --auth=trust --encoding=UTF8 --locale=C --no-sync >"$YSYNC_PG_DIR/initdb.log" 2>&1; then
    ysync_pg_log "initdb failed:"; cat "$YSYNC_PG_DIR/initdb.log" >&2
    return 1
  fi

  local port attempt started=""
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    ysync_pg_port_free "$port" || continue
    # -k: the Unix socket goes into our directory, not /var/run/postgresql (may not exist).
    if ysync_pg_as_owner "$YSYNC_PG_BIN/pg_ctl" -D "$YSYNC_PG_DIR/data" -l "$YSYNC_PG_DIR/server.log" \
        -w -t 60 -o "-p $port -c listen_addresses=127.0.0.1 -k $YSYNC_PG_DIR \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      started=1
      break
    fi
    ysync_pg_log "start on port $port failed (attempt $attempt), retrying"
  done
  if [ -z "$started" ]; then
    ysync_pg_log "could not start PostgreSQL; server log:"; cat "$YSYNC_PG_DIR/server.log" >&2 || true
    return 1
  fi

  if ! ysync_pg_as_owner "$YSYNC_PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c 'CREATE DATABASE ysync_test' >/dev/null; then
    ysync_pg_log "could not create database ysync_test"
    return 1
  fi

  export YSYNC_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/ysync_test?sslmode=disable"
  ysync_pg_log "PostgreSQL $("$YSYNC_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $YSYNC_PG_DIR)"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: start now, stop when the sourcing shell exits.
  trap ysync_pg_stop EXIT
  ysync_pg_start || { ysync_pg_stop; return 1; }
else
  set -euo pipefail
  trap ysync_pg_stop EXIT
  trap 'exit 130' INT TERM
  ysync_pg_start
  if [ $# -gt 0 ]; then
    "$@"
  else
    printf 'YSYNC_TEST_DATABASE_URL=%s\n' "$YSYNC_TEST_DATABASE_URL"
    ysync_pg_log "running; Ctrl-C to stop and remove"
    # sleep in the background and wait, so INT/TERM run the traps at once.
    while :; do sleep 1 & wait $!; done
  fi
fi
