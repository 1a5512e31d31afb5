#!/usr/bin/env bash
# The JDBC connectors' benchmark: a 1,000,000-row PostgreSQL table through JdbcSource
# (incrementing mode) into a topic of the standalone worker's integrated broker, and that
# topic through JdbcSink (upsert, batch.size=1000) into another PostgreSQL table; beside
# them, in the same run, what PostgreSQL itself does with the same rows through psql:
# `\copy (SELECT ...) TO` (the source's reference) and `\copy ... FROM` into a table with
# the same primary key (the sink's reference). Prints each run and the medians.
#
#   scripts/bench/jdbc.sh [RUNS]     (default 3; release build; starts PostgreSQL with
#                                     scripts/services/postgres.sh when needed)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
rows=1000000
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# shellcheck source=/dev/null
. scripts/services/postgres.sh
cargo build --release --quiet -p tributary --bin tributary
cargo build --release --quiet -p tributary-connector-jdbc --lib
bin="$CARGO_TARGET_DIR/release/tributary"
work="$(mktemp -d "${TMPDIR:-/tmp}/jdbc-bench.XXXXXX")"
trap 'kill "${worker:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/plugins"
cp "$CARGO_TARGET_DIR/release/libtributary_connector_jdbc.so" "$work/plugins/"
url="$TRIBUTARY_TEST_POSTGRES_URL"
psql_() { PGPASSWORD=tributary "$TRIBUTARY_PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$url" "$@"; }
now() { date +%s.%N; }
port=$((20000 + RANDOM % 20000))

echo "== load $(uptime | sed 's/.*load average: //')"
psql_ -c "DROP TABLE IF EXISTS bench_src, bench_dst, bench_ref" \
  -c "CREATE TABLE bench_src (id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(12,2) NOT NULL, created TIMESTAMP(3) NOT NULL)" \
  -c "INSERT INTO bench_src SELECT g, 'customer ' || g, (g % 100000) / 100.0, TIMESTAMP '2024-01-01' + g * INTERVAL '1 millisecond' FROM generate_series(1, $rows) g" \
  -c "VACUUM ANALYZE bench_src"

run_worker() { # properties, connector json...
  "$bin" standalone "$@" >"$work/worker.log" 2>&1 &
  worker=$!
}
stop_worker() {
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
wait_for() { # what, command that prints a number, target
  local deadline=$(( $(date +%s) + 600 ))
  until [ "$($2 2>/dev/null || echo 0)" -ge "$3" ] 2>/dev/null; do
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "timed out waiting for $1" >&2; tail -50 "$work/worker.log" >&2; exit 1; fi
    if ! kill -0 "$worker" 2>/dev/null; then echo "the worker exited" >&2; tail -50 "$work/worker.log" >&2; exit 1; fi
    sleep 0.05
  done
}
source_position() {
  curl -s "http://127.0.0.1:$port/connectors/src/offsets" | grep -o '"incrementing":[0-9]*' | cut -d: -f2 | sort -n | tail -1
}
dst_count() { psql_ -tA -c "SELECT count(*) FROM bench_dst"; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
src_rates=(); sink_rates=(); copy_out_rates=(); copy_in_rates=()
for run in $(seq 1 "$runs"); do
  # Reference: psql's COPY out and in of the same rows.
  t0=$(now); psql_ -c "\\copy (SELECT * FROM bench_src ORDER BY id) TO '$work/rows.tsv'"; t1=$(now)
  copy_out_rates+=("$(echo "$rows / ($t1 - $t0)" | bc -l)")
  psql_ -c "DROP TABLE IF EXISTS bench_ref" -c "CREATE TABLE bench_ref (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), created TIMESTAMP(3))"
  t0=$(now); psql_ -c "\\copy bench_ref FROM '$work/rows.tsv'"; t1=$(now)
  copy_in_rates+=("$(echo "$rows / ($t1 - $t0)" | bc -l)")
  rm -f "$work/rows.tsv"

  # The source: from the start of the worker to the last row's offset committed.
  rm -rf "$work/data"
  cat >"$work/worker.properties" <<PROPS
broker.data.dir=$work/data
broker.listener=none
plugin.path=$work/plugins
listeners=http://127.0.0.1:$port
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=100
PROPS
  cat >"$work/source.json" <<JSON
{"name":"src","config":{"connector.class":"JdbcSource","connection.url":"$url","table.whitelist":"bench_src","mode":"incrementing","incrementing.column.name":"id","topic.prefix":"bench-","batch.max.rows":"10000","poll.interval.ms":"100"}}
JSON
  t0=$(now); run_worker "$work/worker.properties" "$work/source.json"
  wait_for "the source" source_position "$rows"; t1=$(now)
  stop_worker
  src_rates+=("$(echo "$rows / ($t1 - $t0)" | bc -l)")

  # The sink: the topic the source wrote, upserted in batches of 1,000.
  psql_ -c "DROP TABLE IF EXISTS bench_dst" -c "CREATE TABLE bench_dst (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), created TIMESTAMP(3))"
  cat >"$work/sink.json" <<JSON
{"name":"sink","config":{"connector.class":"JdbcSink","connection.url":"$url","topics":"bench-bench_src","table.name.format":"bench_dst","insert.mode":"upsert","pk.mode":"record_value","pk.fields":"id","batch.size":"1000","consumer.override.max.poll.records":"5000"}}
JSON
  t0=$(now); run_worker "$work/worker.properties" "$work/sink.json"
  wait_for "the sink" dst_count "$rows"; t1=$(now)
  stop_worker
  sink_rates+=("$(echo "$rows / ($t1 - $t0)" | bc -l)")
  printf 'run %d: source %.0f rows/s (COPY TO %.0f), sink %.0f rows/s (COPY FROM %.0f)\n' "$run" \
    "${src_rates[-1]}" "${copy_out_rates[-1]}" "${sink_rates[-1]}" "${copy_in_rates[-1]}"
done
ms=$(printf '%s\n' "${src_rates[@]}" | median); mo=$(printf '%s\n' "${copy_out_rates[@]}" | median)
mk=$(printf '%s\n' "${sink_rates[@]}" | median); mi=$(printf '%s\n' "${copy_in_rates[@]}" | median)
echo "== medians of $runs runs, load $(uptime | sed 's/.*load average: //')"
printf 'source (incrementing, batch.max.rows=10000): %.0f rows/s; psql COPY TO: %.0f rows/s; ratio %.2f; bar 200000: %s\n' \
  "$ms" "$mo" "$(echo "$ms / $mo" | bc -l)" "$(echo "$ms >= 200000" | bc)"
printf 'sink (upsert, batch.size=1000): %.0f rows/s; psql COPY FROM: %.0f rows/s; ratio %.2f; bar 50000: %s\n' \
  "$mk" "$mi" "$(echo "$mk / $mi" | bc -l)" "$(echo "$mk >= 50000" | bc)"
psql_ -c "DROP TABLE IF EXISTS bench_src, bench_dst, bench_ref"
