#!/usr/bin/env bash
# bench-server.sh: the same y-websocket load against ysync and the reference Node server
# (@y/websocket-server), one after the other on this machine, and a side-by-side table.
#
#   scripts/bench-server.sh [--scenario fanout|joinstorm|idle|all] [--profile] [--quick]
#                           [--runs K] [--clients N] [--docs D] [--rate R]
#                           [--duration S] [--warmup S] [--idle S] [--connect-rate C]
#                           [--joiners N] [--storms K] [--trace FILE] [--idle-clients N]
#                           [--only ysync|reference|hocuspocus] [--protocol y-websocket|hocuspocus]
#                           [--out DIR] [--keep]
#
# Scenarios (issue 14): fanout (the default, below); joinstorm: one document seeded with the end
# state of --trace (default automerge-paper from $YSYNC_TRACES_DIR or ../shared/traces), then
# --joiners (300) clients joining at once, --storms (3) times per run (`ysync-load joinstorm`;
# y-websocket only); idle: --idle-clients (8000) connections over 100 documents, connected,
# synced and idle (RSS per idle connection; the script raises `ulimit -n`); all: fanout and idle
# with both protocols (ysync vs the reference, ysync vs Hocuspocus), joinstorm, and
# scripts/bench-bigdoc.sh if it exists, with shorter fanout windows (20 s after 3 s) so that
# `--scenario all --runs 3` stays under 15 minutes. --profile records each server with
# `perf record -g` (node with --perf-basic-prof, so JS frames have names) and writes the top
# symbols of each run next to the results (*.perf.txt).
# At the end, every scenario that ran is printed in one Markdown table (`ysync-load summary`,
# also in OUT/side-by-side.md): join storm server CPU, fan-out server CPU per delivered update
# and p50/p99, RSS per idle connection, as medians of the runs with ratios ysync/reference and
# ysync/hocuspocus; with --profile, the top symbols of each server's first run; and
# bench-bigdoc.sh's own table.
# Default scenario: the issue's target, 1000 clients over 100 documents, 1 edit/s each, 30 s
# measured after 5 s warmup; --quick: 100 clients / 10 docs / 10 s. Every run starts a fresh
# server on a free 127.0.0.1 port, waits for it, runs cmd/ysync-load with --server-pid (the
# generator samples the server's /proc/<pid>/status VmRSS and /proc/<pid>/stat utime+stime
# before connecting, after all clients synced and sat idle, every second under load, and over
# the measured window), then stops it. With --runs K each server runs K times (alternating) and
# the table shows medians with the individual runs in brackets. Ratios are ysync/reference.
#
# YSYNC_ENV='VAR=value ...' in the environment sets those variables for the ysync server only (for
# instance YSYNC_ENV='GOMAXPROCS=1' to try the runtime's settings without touching the generator).
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
ONLY="" OUT="" KEEP=0 GRACE=15 PROTOCOL=y-websocket SCENARIO=fanout PROFILE=0
JOINERS=300 STORMS=3 TRACE="" IDLE_CLIENTS=8000
usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--scenario) SCENARIO=$2; shift ;;
	--profile) PROFILE=1 ;;
	--joiners) JOINERS=$2; shift ;;
	--storms) STORMS=$2; shift ;;
	--trace) TRACE=$2; shift ;;
	--idle-clients) IDLE_CLIENTS=$2; shift ;;
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
	if [ -n "${PERF_PID:-}" ]; then kill -INT "$PERF_PID" 2>/dev/null || true; fi
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

# free_port prints a TCP port on 127.0.0.1 that nothing listens on, below the kernel's range of
# ephemeral ports: a port some outgoing connection already uses as its local port (the idle
# scenario alone opens 8,000 of them, and other benches share the machine) cannot be listened
# on, although nothing listens there.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
	local p i lo=10000 span=$((EPHEMERAL_LOW - 10000))
	[ "$span" -ge 1000 ] || { lo=20000; span=40000; }
	for i in $(seq 1 200); do
		p=$((lo + RANDOM % span))
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
		# (Alive after the answer: a server that lost its port exits, and the answer was another's.)
		if curl -sf -o /dev/null --max-time 1 "$1" && sleep 0.2 && kill -0 "$SERVER_PID" 2>/dev/null; then return 0; fi
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "bench-server: server exited" >&2; return 1; fi
		sleep 0.1
	done
	echo "bench-server: $1 did not answer within 15s" >&2
	return 1
}

start_server() { # name port log
	case "$1" in
	ysync)
		env ${YSYNC_ENV:-} "$TMP/bin/ysync" serve --addr "127.0.0.1:$2" --store memory --log-level warn "${YSYNC_ARGS[@]}" >"$3" 2>&1 &
		SERVER_PID=$!
		wait_http "http://127.0.0.1:$2/healthz"
		WS_URL="ws://127.0.0.1:$2/ws"
		;;
	hocuspocus)
		(cd "$OUT" && HOST=127.0.0.1 PORT="$2" exec node "${NODE_FLAGS[@]}" "$ROOT/scripts/hocuspocus-server.mjs") >"$3" 2>&1 &
		SERVER_PID=$!
		wait_http "http://127.0.0.1:$2/"
		WS_URL="ws://127.0.0.1:$2"
		;;
	reference)
		(cd "$OUT" && exec env -u YPERSISTENCE HOST=127.0.0.1 PORT="$2" node "${NODE_FLAGS[@]}" "$REF_JS") >"$3" 2>&1 &
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

# Node runs in OUT, where the files --perf-basic-prof leaves (isolate-*.log) belong.
# Profiling: perf samples the whole server process (kernel included, so write(2) and the TCP
# stack show); the same tool for Go and Node, so the two profiles read alike.
PERF_PID="" PERF_FILE=""
NODE_FLAGS=()
if [ "$PROFILE" = 1 ]; then
	command -v perf >/dev/null || { echo "bench-server: --profile needs perf" >&2; exit 1; }
	NODE_FLAGS=(--perf-basic-prof)
fi
profile_start() { # file
	[ "$PROFILE" = 1 ] || return 0
	PERF_FILE=$1
	perf record -q -F 499 -g -p "$SERVER_PID" -o "$PERF_FILE" >/dev/null 2>&1 &
	PERF_PID=$!
}
profile_stop() {
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=""
	perf report -i "$PERF_FILE" --stdio --no-children --sort symbol --percent-limit 1.5 -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -40 >"${PERF_FILE%.data}.txt" || true
	echo "   profile: ${PERF_FILE%.data}.txt" >&2
}

# 8,000 idle connections need more descriptors than the usual 1024 (the generator and the
# server each hold one per connection).
raise_nofile() {
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CLIENTS + 256)) ]; then
		echo "bench-server: ulimit -n is $(ulimit -n), below $IDLE_CLIENTS connections + slack" >&2
		exit 1
	fi
}

if [ -z "$TRACE" ]; then
	TRACE=${YSYNC_TRACES_DIR:-$ROOT/../shared/traces}/automerge-paper.json.gz
	[ -f "$TRACE" ] || TRACE=/work/shared/traces/automerge-paper.json.gz
fi

# The generator dials from one address (127.0.0.1): ysync's per-IP cap (512) and process cap
# would refuse most of the idle scenario's 8,000 connections, and the reference has neither.
YSYNC_ARGS=(--max-conns-per-ip -1 --max-conns -1)
declare -A FILES
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

# bench TITLE PROTOCOL "SERVERS" GENERATOR-ARGS...: RUNS runs per server, alternating, then the
# table of medians (ratios: first server / second).
bench() {
	local title=$1 proto=$2 servers=$3
	shift 3
	local -a names
	read -r -a names <<<"$servers"
	[ -n "$ONLY" ] && names=("$ONLY")
	local tag=${title// /-}
	FILES=()
	echo "== $title: $* ; $RUNS run(s) per server; nproc $(nproc)" >&2
	local run name port log json
	for run in $(seq 1 "$RUNS"); do
		for name in "${names[@]}"; do
			port=$(free_port)
			log="$OUT/$tag-$name-$run.server.log"
			json="$OUT/$tag-$name-$run.json"
			echo "== $title run $run/$RUNS: $name on 127.0.0.1:$port (load avg $(cut -d' ' -f1-3 /proc/loadavg))" >&2
			# Another process may take the port between free_port and the listen: try another.
			local try
			for try in 1 2 3; do
				start_server "$name" "$port" "$log" && break
				stop_server
				[ "$try" = 3 ] && { echo "bench-server: $name did not start (see $log)" >&2; exit 1; }
				port=$(free_port)
				echo "== $name: retrying on 127.0.0.1:$port" >&2
			done
			profile_start "$OUT/$tag-$name-$run.perf.data"
			if [ "$proto" = joinstorm ]; then
				"$TMP/bin/ysync-load" joinstorm --url "$WS_URL" --server-pid "$SERVER_PID" --name "$name" \
					--json "$json" "$@" >"$OUT/$tag-$name-$run.txt" 2>&1 ||
					echo "bench-server: generator failed for $name (see $OUT/$tag-$name-$run.txt)" >&2
			else
				"$TMP/bin/ysync-load" --url "$WS_URL" --server-pid "$SERVER_PID" --name "$name" --protocol "$proto" \
					--json "$json" "$@" >"$OUT/$tag-$name-$run.txt" 2>&1 ||
					echo "bench-server: generator failed for $name (see $OUT/$tag-$name-$run.txt)" >&2
			fi
			sed 's/^/   /' "$OUT/$tag-$name-$run.txt" | grep -v '^   ysync-load:' >&2 || true
			profile_stop
			stop_server
			if [ -s "$json" ]; then FILES[$name]="${FILES[$name]:+${FILES[$name]},}$json"; fi
		done
	done
	local args=()
	for name in "${names[@]}"; do
		[ -n "${FILES[$name]:-}" ] && args+=("$name=${FILES[$name]}")
	done
	{
		echo
		echo "### $title ($*; $RUNS run(s) each, alternating; $(nproc) CPUs shared with other work)"
		"$TMP/bin/ysync-load" compare "${args[@]}"
	} | tee -a "$SUMMARY"
}

fanout_args() { # clients docs duration warmup idle
	echo --clients "$1" --docs "$2" --rate "$RATE" --duration "${3}s" --warmup "${4}s" --idle "${5}s" \
		--grace "${GRACE}s" --connect-rate "$CONNECT_RATE"
}
idle_args() {
	echo --clients "$IDLE_CLIENTS" --docs 100 --rate 0 --idle "${IDLE}s" --connect-rate 2000 --sync-timeout 120s
}
join_args() {
	echo --trace "$TRACE" --joiners "$JOINERS" --storms "$STORMS"
}

case "$SCENARIO" in
fanout)
	case "$PROTOCOL" in
	y-websocket) bench fanout y-websocket "ysync reference" $(fanout_args "$CLIENTS" "$DOCS" "$DURATION" "$WARMUP" "$IDLE") ;;
	hocuspocus) bench "fanout hocuspocus" hocuspocus "ysync hocuspocus" $(fanout_args "$CLIENTS" "$DOCS" "$DURATION" "$WARMUP" "$IDLE") ;;
	*) echo "bench-server: --protocol y-websocket or hocuspocus" >&2; exit 2 ;;
	esac
	;;
joinstorm)
	[ -f "$TRACE" ] || { echo "bench-server: trace $TRACE missing (--trace, YSYNC_TRACES_DIR)" >&2; exit 1; }
	bench joinstorm joinstorm "ysync reference" $(join_args)
	;;
idle)
	raise_nofile
	case "$PROTOCOL" in
	y-websocket) bench idle y-websocket "ysync reference" $(idle_args) ;;
	hocuspocus) bench "idle hocuspocus" hocuspocus "ysync hocuspocus" $(idle_args) ;;
	*) echo "bench-server: --protocol y-websocket or hocuspocus" >&2; exit 2 ;;
	esac
	;;
all)
	raise_nofile
	[ -f "$TRACE" ] || { echo "bench-server: trace $TRACE missing (--trace, YSYNC_TRACES_DIR)" >&2; exit 1; }
	bench joinstorm joinstorm "ysync reference" $(join_args)
	bench fanout y-websocket "ysync reference" $(fanout_args "$CLIENTS" "$DOCS" 20 3 3)
	bench "fanout hocuspocus" hocuspocus "ysync hocuspocus" $(fanout_args "$CLIENTS" "$DOCS" 20 3 3)
	bench idle y-websocket "ysync reference" $(idle_args)
	bench "idle hocuspocus" hocuspocus "ysync hocuspocus" $(idle_args)
	if [ -x "$ROOT/scripts/bench-bigdoc.sh" ]; then
		echo "== big documents: scripts/bench-bigdoc.sh --runs $RUNS" >&2
		"$ROOT/scripts/bench-bigdoc.sh" --runs "$RUNS" | tee "$OUT/bigdoc.txt" | tee -a "$SUMMARY"
	fi
	;;
*) echo "bench-server: --scenario fanout, joinstorm, idle or all" >&2; exit 2 ;;
esac

# One table of every scenario that ran, side by side with the reference and Hocuspocus, ready to
# paste into docs/load.md; then the top symbols of each server (--profile) and the big-document
# table (bench-bigdoc.sh prints its own).
{
	echo
	echo "### Side by side ($(date -u +%Y-%m-%d), $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nproc) CPUs shared with other work; load avg at the end $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	"$TMP/bin/ysync-load" summary "$OUT"
	if [ -s "$OUT/bigdoc.txt" ]; then
		echo
		echo "Big documents (scripts/bench-bigdoc.sh --runs $RUNS):"
		echo
		cat "$OUT/bigdoc.txt"
	fi
} >"$OUT/side-by-side.md"
cat "$OUT/side-by-side.md"

echo
echo "Results and server logs in $OUT; the tables above are also in $SUMMARY and $OUT/side-by-side.md."
