# MariaDB for the JDBC connector's tests (tests/it/jdbc.rs). Sourced by scripts/test (or by
# hand: `. scripts/services/mariadb.sh`). Installs Debian's `mariadb-server` when no
# mariadbd is found, creates a data directory under target/services/mariadb, starts the
# server on 127.0.0.1:$TRIBUTARY_MARIADB_PORT when nothing answers there, and exports
#   TRIBUTARY_TEST_MYSQL_URL  mysql://tributary:tributary@127.0.0.1:PORT/tributary
if ! declare -F quiet >/dev/null; then quiet() { "$@" >/dev/null; }; fi
_my_port="${TRIBUTARY_MARIADB_PORT:-53306}"
_my_bin="$(command -v mariadbd || ls /usr/sbin/mariadbd 2>/dev/null || true)"
if [ -z "$_my_bin" ]; then
  echo "== apt-get install mariadb-server"
  quiet apt-get update
  quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server mariadb-client
  _my_bin=/usr/sbin/mariadbd
fi
_my_data="$PWD/target/services/mariadb"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$_my_port") 2>/dev/null; then
  mkdir -p "$_my_data"
  _my_user="$(id -un)"
  if [ "$(id -u)" = 0 ]; then
    id mysql >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false mysql
    _my_user=mysql
    chown -R mysql: "$_my_data"
    _p="$_my_data"
    while [ "$_p" != / ]; do chmod o+x "$_p" 2>/dev/null || true; _p="$(dirname "$_p")"; done
  fi
  if [ ! -d "$_my_data/db/mysql" ]; then
    quiet mariadb-install-db --no-defaults --user="$_my_user" --datadir="$_my_data/db" \
      --auth-root-authentication-method=socket --skip-test-db
  fi
  echo "== starting MariaDB on 127.0.0.1:$_my_port ($_my_data)"
  "$_my_bin" --no-defaults --user="$_my_user" --datadir="$_my_data/db" --bind-address=127.0.0.1 \
    --port="$_my_port" --socket="$_my_data/sock" --pid-file="$_my_data/pid" \
    --log-error="$_my_data/log" --innodb-flush-log-at-trx-commit=2 --skip-name-resolve \
    >/dev/null 2>&1 &
  disown || true
  for _i in $(seq 1 120); do
    [ -S "$_my_data/sock" ] && mariadb --no-defaults -S "$_my_data/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  mariadb --no-defaults -S "$_my_data/sock" -uroot -e "
    CREATE DATABASE IF NOT EXISTS tributary;
    CREATE USER IF NOT EXISTS 'tributary'@'127.0.0.1' IDENTIFIED BY 'tributary';
    CREATE USER IF NOT EXISTS 'tributary'@'localhost' IDENTIFIED BY 'tributary';
    GRANT ALL ON *.* TO 'tributary'@'127.0.0.1';
    GRANT ALL ON *.* TO 'tributary'@'localhost';" ||
    { echo "error: MariaDB did not start; see $_my_data/log" >&2; return 1 2>/dev/null || exit 1; }
elif ! mariadb --no-defaults -h127.0.0.1 -P"$_my_port" -utributary -ptributary -e 'USE tributary' >/dev/null 2>&1; then
  # Something answers, but not a server these tests can use (another service, or one whose
  # data directory was removed under it).
  echo "error: a server answers on 127.0.0.1:$_my_port but database tributary (user tributary) is not usable there; stop it, or set TRIBUTARY_MARIADB_PORT to a free port" >&2
  return 1 2>/dev/null || exit 1
fi
export TRIBUTARY_TEST_MYSQL_URL="mysql://tributary:tributary@127.0.0.1:$_my_port/tributary"
unset _my_port _my_bin _my_data _my_user _i _p
