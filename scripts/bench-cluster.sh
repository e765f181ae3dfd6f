#!/usr/bin/env bash
# bench-cluster.sh: the same y-websocket load against one ysync node and against three, in one
# run, on one throwaway PostgreSQL and one throwaway Redis; then a side-by-side table.
#
#   scripts/bench-cluster.sh [--clients N] [--docs D] [--rate R] [--duration S] [--warmup S]
#                            [--out DIR]
#
# Three `ysync serve --redis-url` nodes run on free 127.0.0.1 ports. Run "1 node": every client
# connects to node 1 (the other two are up and idle). Run "3 nodes": the clients of each document
# are spread over the three nodes (cmd/ysync-load with a comma-separated --url), so each edit's
# receivers are mostly on other nodes than its sender: the latency is cross-node (edit sent ->
# applied at every other client of the document). Defaults: 300 clients over 30 documents, 2
# edits/s each, 20 s measured after 3 s warmup. Ratios in the table are "3 nodes" / "1 node".
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CLIENTS=300 DOCS=30 RATE=2 DURATION=20 WARMUP=3 OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--clients) CLIENTS=$2; shift ;;
	--docs) DOCS=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-cluster: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
TMP=$(mktemp -d /tmp/ysync-bench-cluster.XXXXXX)
OUT=${OUT:-$TMP/results}
mkdir -p "$OUT" "$TMP/bin"
PIDS=()
source scripts/pg.sh
source scripts/redis.sh
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	ysync_redis_stop
	ysync_pg_stop
	rm -rf "$TMP/bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$TMP/bin/ysync" ./cmd/ysync
go build -o "$TMP/bin/ysync-load" ./cmd/ysync-load
"$TMP/bin/ysync" migrate --database-url "$YSYNC_TEST_DATABASE_URL" up

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
URLS=()
for i in 1 2 3; do
	port=$(free_port)
	"$TMP/bin/ysync" serve --addr "127.0.0.1:$port" --database-url "$YSYNC_TEST_DATABASE_URL" \
		--redis-url "$YSYNC_TEST_REDIS_URL" --node-id "bench-$i" --log-level warn \
		--max-conns-per-doc -1 --max-conns -1 --conn-message-rate -1 >"$TMP/node$i.out" 2>"$TMP/node$i.err" &
	PIDS+=($!)
	for _ in $(seq 1 100); do
		grep -q "ysync listening" "$TMP/node$i.out" 2>/dev/null && break
		sleep 0.1
	done
	URLS+=("ws://127.0.0.1:$port/ws")
done
ALL=$(IFS=,; echo "${URLS[*]}")
common=(--clients "$CLIENTS" --docs "$DOCS" --rate "$RATE" --duration "${DURATION}s" --warmup "${WARMUP}s" --quiet)
echo "== 1 node: ${URLS[0]}" >&2
"$TMP/bin/ysync-load" "${common[@]}" --url "${URLS[0]}" --name "1 node" --json "$OUT/one.json"
echo "== 3 nodes: $ALL" >&2
"$TMP/bin/ysync-load" "${common[@]}" --url "$ALL" --name "3 nodes" --json "$OUT/three.json"
"$TMP/bin/ysync-load" compare "1 node=$OUT/one.json" "3 nodes=$OUT/three.json"
for i in 1 2 3; do
	echo "== node $i relay metrics" >&2
	curl -s "http://${URLS[$((i-1))]#ws://}" >/dev/null 2>&1 || true
	curl -s "$(echo "${URLS[$((i-1))]}" | sed 's#^ws://#http://#; s#/ws$#/metrics#')" | grep -E '^ysync_cluster_(published|received|gaps_detected|filled_from_log|position_catchups|remote_dropped|publish_dropped)_total' >&2 || true
done
echo "results in $OUT" >&2
