#!/usr/bin/env bash
# bench-bigdoc.sh: big and old documents (issue 14 item 4), measured in process by
# cmd/bigdoc-bench against a real store, with a Markdown table on stdout.
#
#   scripts/bench-bigdoc.sh [--runs K] [--updates N] [--big-mb M] [--trace FILE|synthetic]
#                           [--database-url URL] [--quick] [--cpuprofile F] [--memprofile F]
#
# (a) a log of --updates (100000) small updates, one per transaction of --trace (default
# automerge-paper from $YSYNC_TRACES_DIR, else ../shared/traces or ../../shared/traces, else a
# synthetic typist), stored with compaction off, vs (b) the same content as one checkpoint:
# time from the registry's load to the SyncStep2 answering a fresh client, medians of --runs (3)
# runs, and the ratio log / checkpoint (target <= 2x). (c) a document of --big-mb (50) MiB of text stored as a checkpoint,
# loaded and synced: peak heap / encoded size (target <= 4x). The store is a SQLite file in a
# temporary directory, or Postgres (a fresh schema, dropped afterwards) with --database-url or
# $YSYNC_TEST_DATABASE_URL. --quick: 10000 updates, 5 MiB, for a smoke run. Progress goes to
# stderr. scripts/bench-server.sh --scenario all runs this with its --runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${YSYNC_TRACES_DIR:-}" ]; then
	# The main checkout's sibling, or a worktree's (one level deeper).
	for d in "$ROOT/../shared/traces" "$ROOT/../../shared/traces"; do
		if [ -d "$d" ]; then export YSYNC_TRACES_DIR=$(cd "$d" && pwd); break; fi
	done
fi

args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) args+=(--updates 10000 --big-mb 5) ;;
	--runs | --updates | --big-mb | --trace | --database-url | --cpuprofile | --memprofile)
		[ $# -ge 2 ] || { echo "bench-bigdoc: $1 needs a value" >&2; exit 2; }
		args+=("$1" "$2")
		shift
		;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "bench-bigdoc: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$ROOT" && go build -o "$TMP/bigdoc-bench" ./cmd/bigdoc-bench)
"$TMP/bigdoc-bench" "${args[@]}"
