#!/usr/bin/env bash
# The S3 sink benchmark: the release worker moves DataGen pageviews from a topic into the
# local S3-compatible endpoint (moto, scripts/services/s3.sh) as JSON lines and as Parquet,
# and the same bytes are put again with plain aws-sdk-s3 PutObject calls in the same run
# (the endpoint's own upload speed: the ratio to approach). Prints every run and medians.
#
#   scripts/bench/s3.sh [RECORDS] [RUNS]     (defaults 300000 and 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
quiet() {
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; exit 1; fi
  rm -f "$log"
}
. scripts/services/s3.sh
cargo build --release --quiet -p tributary -p tributary-connector-datagen -p tributary-connector-s3 --example s3_bench
plugins="$CARGO_TARGET_DIR/s3-bench-plugins"
rm -rf "$plugins" && mkdir -p "$plugins"
cp "$CARGO_TARGET_DIR/release/libtributary_connector_s3.so" "$CARGO_TARGET_DIR/release/libtributary_connector_datagen.so" "$plugins/"
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), load: $(uptime | sed 's/.*load average: //')"
"$CARGO_TARGET_DIR/release/examples/s3_bench" "$CARGO_TARGET_DIR/release/tributary" "$plugins" "$TRIBUTARY_TEST_S3_URL" "${1:-300000}" "${2:-3}"
echo "== load after: $(uptime | sed 's/.*load average: //')"
