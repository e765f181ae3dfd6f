#!/usr/bin/env bash
# bench-server.sh: the same y-websocket load against ysync and the reference Node server
# (@y/websocket-server), one after the other on this machine, and a side-by-side table.
#
#   scripts/bench-server.sh [--quick] [--runs K] [--clients N] [--docs D] [--rate R]
#                           [--duration S] [--warmup S] [--idle S] [--connect-rate C]
#                           [--only ysync|reference|hocuspocus] [--protocol y-websocket|hocuspocus]
#                           [--out DIR] [--keep]
#
# Default scenario: the issue's target, 1000 clients over 100 documents, 1 edit/s each, 30 s
# measured after 5 s warmup; --quick: 100 clients / 10 docs / 10 s. Every run starts a fresh
# server on a free 127.0.0.1 port, waits for it, runs cmd/ysync-load with --server-pid (the
# generator samples the server's /proc/<pid>/status VmRSS and /proc/<pid>/stat utime+stime
# before connecting, after all clients synced and sat idle, every second under load, and over
# the measured window), then stops it. With --runs K each server runs K times (alternating) and
# the table shows medians with the individual runs in brackets. Ratios are ysync/reference.
#
# Binaries are built with `go build -o` from the checkout this script lives in. The reference
# server runs from node_modules/@y/websocket-server/src/server.js with HOST=127.0.0.1, PORT set,
# and YPERSISTENCE unset (no leveldb: in-memory documents, like ysync's default store).
#
# --protocol hocuspocus: the generator speaks the Hocuspocus protocol (one provider and document
# per socket, ysync-load --protocol hocuspocus) against ysync's GET /ws and against the reference
# @hocuspocus/server 3.4.4 (scripts/hocuspocus-server.mjs, no extensions: in-memory). ysync runs
# without a database URL (its in-memory store), so both keep documents in memory; ratios are
# ysync/hocuspocus. (If the default store changes, add its memory flag to YSYNC_ARGS.)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

CLIENTS=1000 DOCS=100 RATE=1 DURATION=30 WARMUP=5 IDLE=5 CONNECT_RATE=200 RUNS=1
ONLY="" OUT="" KEEP=0 GRACE=15 PROTOCOL=y-websocket
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) CLIENTS=100 DOCS=10 DURATION=10 WARMUP=2 IDLE=3 ;;
	--runs) RUNS=$2; shift ;;
	--clients) CLIENTS=$2; shift ;;
	--docs) DOCS=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--idle) IDLE=$2; shift ;;
	--connect-rate) CONNECT_RATE=$2; shift ;;
	--grace) GRACE=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--protocol) PROTOCOL=$2; shift ;;
	--out) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench-server: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

TMP=$(mktemp -d /tmp/ysync-bench.XXXXXX)
OUT=${OUT:-$TMP/results}
mkdir -p "$OUT"
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [ "$KEEP" = 0 ]; then rm -rf "$TMP/bin"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building into $TMP/bin" >&2
mkdir -p "$TMP/bin"
(cd "$ROOT" && go build -o "$TMP/bin/ysync" ./cmd/ysync && go build -o "$TMP/bin/ysync-load" ./cmd/ysync-load)
REF_JS="$ROOT/node_modules/@y/websocket-server/src/server.js"
[ -f "$REF_JS" ] || { echo "bench-server: $REF_JS missing (npm install)" >&2; exit 1; }

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "bench-server: no free port" >&2
	return 1
}

# wait_http URL: up to 15 s for the server to answer.
wait_http() {
	local i
	for i in $(seq 1 150); do
		if curl -sf -o /dev/null --max-time 1 "$1"; then return 0; fi
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "bench-server: server exited" >&2; return 1; fi
		sleep 0.1
	done
	echo "bench-server: $1 did not answer within 15s" >&2
	return 1
}

start_server() { # name port log
	case "$1" in
	ysync)
		"$TMP/bin/ysync" serve --addr "127.0.0.1:$2" --store memory --log-level warn "${YSYNC_ARGS[@]}" >"$3" 2>&1 &
		SERVER_PID=$!
		wait_http "http://127.0.0.1:$2/healthz"
		WS_URL="ws://127.0.0.1:$2/ws"
		;;
	hocuspocus)
		HOST=127.0.0.1 PORT="$2" node "$ROOT/scripts/hocuspocus-server.mjs" >"$3" 2>&1 &
		SERVER_PID=$!
		wait_http "http://127.0.0.1:$2/"
		WS_URL="ws://127.0.0.1:$2"
		;;
	reference)
		env -u YPERSISTENCE HOST=127.0.0.1 PORT="$2" node "$REF_JS" >"$3" 2>&1 &
		SERVER_PID=$!
		wait_http "http://127.0.0.1:$2/"
		WS_URL="ws://127.0.0.1:$2"
		;;
	esac
}

stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	local i
	for i in $(seq 1 100); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

SERVERS=(ysync reference)
YSYNC_ARGS=()
case "$PROTOCOL" in
y-websocket) ;;
hocuspocus) SERVERS=(ysync hocuspocus) ;;
*) echo "bench-server: --protocol y-websocket or hocuspocus" >&2; exit 2 ;;
esac
[ -n "$ONLY" ] && SERVERS=("$ONLY")
declare -A FILES
echo "== scenario: $CLIENTS clients / $DOCS docs, $RATE edit/s each, ${DURATION}s measured after ${WARMUP}s warmup, ${IDLE}s idle; $RUNS run(s) per server; nproc $(nproc)" >&2
for run in $(seq 1 "$RUNS"); do
	for name in "${SERVERS[@]}"; do
		port=$(free_port)
		log="$OUT/$name-$run.server.log"
		json="$OUT/$name-$run.json"
		echo "== run $run/$RUNS: $name on 127.0.0.1:$port (load avg $(cut -d' ' -f1-3 /proc/loadavg))" >&2
		start_server "$name" "$port" "$log"
		"$TMP/bin/ysync-load" --url "$WS_URL" --clients "$CLIENTS" --docs "$DOCS" --rate "$RATE" \
			--duration "${DURATION}s" --warmup "${WARMUP}s" --idle "${IDLE}s" --grace "${GRACE}s" \
			--connect-rate "$CONNECT_RATE" --server-pid "$SERVER_PID" --name "$name" --protocol "$PROTOCOL" \
			--json "$json" >"$OUT/$name-$run.txt" 2>&1 || echo "bench-server: generator failed for $name (see $OUT/$name-$run.txt)" >&2
		sed 's/^/   /' "$OUT/$name-$run.txt" | grep -v '^   ysync-load:' >&2 || true
		stop_server
		if [ -s "$json" ]; then FILES[$name]="${FILES[$name]:+${FILES[$name]},}$json"; fi
	done
done

echo
echo "Scenario ($PROTOCOL): $CLIENTS clients / $DOCS docs / $RATE edit/s per client / ${DURATION}s (+${WARMUP}s warmup, ${IDLE}s idle), $RUNS run(s) each; $(nproc) CPUs; results in $OUT"
args=()
for name in "${SERVERS[@]}"; do
	[ -n "${FILES[$name]:-}" ] && args+=("$name=${FILES[$name]}")
done
"$TMP/bin/ysync-load" compare "${args[@]}"

# Targets (reported, not asserted).
if [ -n "${FILES[ysync]:-}" ] && [ -n "${FILES[reference]:-}" ]; then
	med() { # jq-path files...: median over runs
		local path=$1
		shift
		jq -s "[.[] | $path | select(. >= 0)] | sort | if length == 0 then -1 elif length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end" "$@"
	}
	IFS=, read -r -a YF <<<"${FILES[ysync]}"
	IFS=, read -r -a RF <<<"${FILES[reference]}"
	yp99=$(med .latency.p99_ms "${YF[@]}")
	rp99=$(med .latency.p99_ms "${RF[@]}")
	yrss=$(med .server.rss_per_idle_conn_kib "${YF[@]}")
	echo
	awk -v y="$yp99" -v r="$rp99" 'BEGIN { printf "target p99 <= half the reference: ysync %.2f ms vs reference %.2f ms / 2 = %.2f ms: %s\n", y, r, r/2, (y <= r/2 ? "MET" : "MISSED") }'
	awk -v k="$yrss" 'BEGIN { printf "target RSS per idle connection < 20 KiB: ysync %.1f KiB: %s\n", k, (k < 20 ? "MET" : "MISSED") }'
fi
