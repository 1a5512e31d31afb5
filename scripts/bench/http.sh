#!/usr/bin/env bash
# The HTTP sink's benchmark: records/s from a topic of the real worker into a local HTTP
# server that accepts and discards (batches of 500), beside a plain client posting the
# same bodies to the same server (the machine's reference, same run), and DataGen's raw
# records/s. Release build; prints the load, then medians (connectors/http/examples/bench.rs).
#
#   scripts/bench/http.sh [--records N] [--runs R]
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p tributary --bin tributary \
  -p tributary-connector-datagen -p tributary-connector-http --lib
cargo build --release --quiet -p tributary-connector-http --example bench
plugins="$(mktemp -d)"
trap 'rm -rf "$plugins"' EXIT
cp "$target/release/libtributary_connector_datagen.so" "$target/release/libtributary_connector_http.so" "$plugins/"
echo "load: $(uptime)"
"$target/release/examples/bench" --tributary "$target/release/tributary" --plugins "$plugins" "$@"
echo "load after: $(uptime)"
