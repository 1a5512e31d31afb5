# An S3-compatible endpoint for the S3 sink's tests (tests/it/s3.rs) and benchmark
# (scripts/bench/s3.sh): moto's server mode, from PyPI, pinned, in a venv at target/moto
# (with pyarrow, which the tests use to read Parquet objects back, and boto3, which moto
# brings). Sourced by scripts/test; idempotent.
#
# Exports:
#   TRIBUTARY_TEST_S3_URL     the endpoint, http://127.0.0.1:PORT (path-style)
#   TRIBUTARY_TEST_S3_PYTHON  the venv's interpreter (boto3 and pyarrow)
# Its data lives in moto's memory: a restart empties every bucket.

s3_root="$PWD/target/moto"
s3_port="${TRIBUTARY_S3_PORT:-9780}"
s3_requirements="moto[server]==5.2.5 pyarrow==26.0.1"
s3_stamp="$( (echo "$s3_requirements"; python3 -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [ ! -x "$s3_root/bin/moto_server" ] || [ "$(cat "$s3_root/requirements.sha256" 2>/dev/null)" != "$s3_stamp" ]; then
  echo "== s3: installing $s3_requirements into $s3_root"
  rm -rf "$s3_root"
  quiet python3 -m venv "$s3_root"
  # shellcheck disable=SC2086
  quiet "$s3_root/bin/python" -m pip install --no-input $s3_requirements
  echo "$s3_stamp" >"$s3_root/requirements.sha256"
fi
s3_url="http://127.0.0.1:$s3_port"
# Answers whether moto serves on s3_url (python, not curl: a fresh Debian has no curl).
s3_up() {
  "$s3_root/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2)' "$s3_url" >/dev/null 2>&1
}
if ! s3_up; then
  echo "== s3: starting moto_server on $s3_url"
  # setsid: the server outlives this shell (tests and benchmarks reuse it) and gets no
  # signal meant for the test command's process group.
  setsid "$s3_root/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$s3_root/server.log" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do
    s3_up && break
    sleep 0.2
  done
  if ! s3_up; then
    echo "error: moto_server did not answer on $s3_url; its log:" >&2
    cat "$s3_root/server.log" >&2
    return 1 2>/dev/null || exit 1
  fi
fi
export TRIBUTARY_TEST_S3_URL="$s3_url"
export TRIBUTARY_TEST_S3_PYTHON="$s3_root/bin/python"
