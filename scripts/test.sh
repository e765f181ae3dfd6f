#!/usr/bin/env bash
# The one test command (README, CI). On a fresh machine it installs and starts everything the tests
# need: the pinned Node packages (npm ci), Chromium for the browser tests, and, for storage and
# cluster tests, a throwaway PostgreSQL cluster and a throwaway Redis server. It also checks that the
# committed web/dist is the build of web/src.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

# --- Node packages (reference yjs, y-websocket) --------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  log "installing nodejs"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d node_modules/yjs ] || ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# --- Web pages: web/dist must be the build of web/src with the pinned esbuild ---------------------
log "web build check (node web/build.mjs --check)"
node web/build.mjs --check
if [ -n "${CI:-}" ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if [ -n "$(git status --porcelain -- web/dist web/src)" ]; then
    git status --short -- web/dist web/src >&2
    log "web/dist or web/src differ from the commit"
    exit 1
  fi
fi

# --- Chromium for the browser tests (e2e/browser_test.go) -------------------------------------------
if [ -z "${YSYNC_CHROMIUM:-}" ]; then
  YSYNC_CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
  if [ -z "$YSYNC_CHROMIUM" ]; then
    log "installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    YSYNC_CHROMIUM=$(command -v chromium)
  fi
  export YSYNC_CHROMIUM
fi

# --- Go checks and tests ---------------------------------------------------------------------------
log "gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  printf 'gofmt would change:\n%s\n' "$unformatted" >&2
  exit 1
fi
go vet ./...

# --- PostgreSQL for storage tests: throwaway cluster, sets YSYNC_TEST_DATABASE_URL ----------------
source scripts/pg.sh

# --- Redis for cluster tests: throwaway server, sets YSYNC_TEST_REDIS_URL (installs redis-server) --
source scripts/redis.sh
# Each sourced script set its own EXIT trap; stop both.
trap 'ysync_redis_stop; ysync_pg_stop' EXIT

log "go test -race"
go test -race -count=1 -timeout 20m ./...

# --- Short fuzz runs: one frame next to a good session, and the CRDT decoders ---------------------
# The crdt targets also fail when a decoder allocates more per input byte than its documented
# bound (crdt/internal/allocbound), so these runs look for allocation bombs as well as panics.
# fuzz runs one short fuzz pass. Go's fuzzing engine sometimes ends a time-boxed run with a bare
# "context deadline exceeded" when -fuzztime expires mid-exchange with a worker (no failing input
# is written); such a run is tried once more. A real finding writes "Failing input" and fails.
fuzz() {
  local out
  if out=$(go test -run '^$' "$@" 2>&1); then printf '%s\n' "$out" | tail -1; return 0; fi
  if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input' <<<"$out"; then
    log "fuzz $*: engine deadline flake, running it again"
    go test -run '^$' "$@"
    return
  fi
  printf '%s\n' "$out"
  return 1
}
log "fuzz (10s, then 5s each)"
fuzz -fuzz '^FuzzFrame$' -fuzztime 10s ./session
fuzz -fuzz '^FuzzControlFrameLen$' -fuzztime 5s ./session
fuzz -fuzz '^FuzzApplyUpdate$' -fuzztime 10s ./crdt
fuzz -fuzz '^FuzzApplyUpdateV2$' -fuzztime 10s ./crdt
fuzz -fuzz '^FuzzDecodeStateVector$' -fuzztime 5s ./crdt
fuzz -fuzz '^FuzzMergeUpdates$' -fuzztime 5s ./crdt
fuzz -fuzz '^FuzzReadAny$' -fuzztime 5s ./crdt/encoding
fuzz -fuzz '^FuzzDecode$' -fuzztime 5s ./crdt/syncproto
fuzz -fuzz '^FuzzRender$' -fuzztime 5s ./crdt/docjson
fuzz -fuzz '^FuzzApplyUpdate$' -fuzztime 5s ./shareddoc
fuzz -fuzz '^FuzzDocRoute$' -fuzztime 5s ./server
fuzz -fuzz '^FuzzVerify$' -fuzztime 5s ./webhook
# Messages from Redis are untrusted too: the relay decoder and the event bridge.
fuzz -fuzz '^FuzzDecode$' -fuzztime 5s ./cluster
fuzz -fuzz '^FuzzWireEvent$' -fuzztime 5s ./pubsub
fuzz -fuzz '^FuzzApplyAllocation$' -fuzztime 10s ./crdt/awareness
