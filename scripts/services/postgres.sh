# PostgreSQL for the JDBC connector's tests (tests/it/jdbc.rs) and its benchmark.
# Sourced by scripts/test (or by hand: `. scripts/services/postgres.sh`). Installs
# Debian's `postgresql` when no initdb/pg_ctl is found, creates a cluster under
# target/services/postgres (owned by the `postgres` user: PostgreSQL refuses to run as
# root), starts it on 127.0.0.1:$TRIBUTARY_PG_PORT when nothing answers there, and exports
#   TRIBUTARY_TEST_POSTGRES_URL  postgres://tributary:tributary@127.0.0.1:PORT/tributary
# The role `tributary` logs in with a password (scram-sha-256), so wrong credentials fail
# as they would on a real server.
if ! declare -F quiet >/dev/null; then quiet() { "$@" >/dev/null; }; fi
_pg_port="${TRIBUTARY_PG_PORT:-55432}"
_pg_bin=""
for _d in /usr/lib/postgresql/*/bin; do
  [ -x "$_d/pg_ctl" ] && _pg_bin="$_d"
done
if [ -z "$_pg_bin" ] && command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
  _pg_bin="$(dirname "$(command -v pg_ctl)")"
fi
if [ -z "$_pg_bin" ]; then
  echo "== apt-get install postgresql"
  quiet apt-get update
  quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql postgresql-client
  for _d in /usr/lib/postgresql/*/bin; do
    [ -x "$_d/pg_ctl" ] && _pg_bin="$_d"
  done
fi
if ! command -v psql >/dev/null 2>&1 && [ ! -x "$_pg_bin/psql" ]; then
  quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client
fi
_pg_run() {
  # Run a PostgreSQL binary as the postgres user when we are root.
  if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
_pg_data="$PWD/target/services/postgres"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$_pg_port") 2>/dev/null; then
  mkdir -p "$_pg_data"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$_pg_data"
    # The postgres user must reach the data directory through the clone's path.
    _p="$_pg_data"
    while [ "$_p" != / ]; do chmod o+x "$_p" 2>/dev/null || true; _p="$(dirname "$_p")"; done
  fi
  if [ ! -f "$_pg_data/db/PG_VERSION" ]; then
    echo tributary >"$_pg_data/pw"
    [ "$(id -u)" = 0 ] && chown postgres: "$_pg_data/pw"
    quiet _pg_run "$_pg_bin/initdb" -D "$_pg_data/db" -U tributary --pwfile="$_pg_data/pw" \
      --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8
  fi
  echo "== starting PostgreSQL on 127.0.0.1:$_pg_port ($_pg_data)"
  quiet _pg_run "$_pg_bin/pg_ctl" -D "$_pg_data/db" -l "$_pg_data/log" -w -t 60 start \
    -o "-h 127.0.0.1 -p $_pg_port -k $_pg_data -c fsync=off -c max_connections=200"
  PGPASSWORD=tributary "${_pg_bin}/psql" -h 127.0.0.1 -p "$_pg_port" -U tributary -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'tributary'" | grep -q 1 ||
    quiet env PGPASSWORD=tributary "${_pg_bin}/psql" -h 127.0.0.1 -p "$_pg_port" -U tributary -d postgres \
      -c "CREATE DATABASE tributary"
fi
export TRIBUTARY_TEST_POSTGRES_URL="postgres://tributary:tributary@127.0.0.1:$_pg_port/tributary"
export TRIBUTARY_PG_BIN="$_pg_bin"
unset _pg_port _pg_bin _pg_data _d _p
