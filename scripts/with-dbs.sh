#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_POSTGRES / TEST_DATABASE_MYSQL set for
# every real database server reachable on this machine, starting the local
# servers first when they are installed but down. With REQUIRE_DATABASES=1
# (CI) a missing server is an error instead of a skipped backend.
#
# With --summary first (make test), it ends by saying which backends and
# which optional suites the command ran or skipped, and why, and exits with
# the command's status.
set -u
summary=0
if [ "${1:-}" = --summary ]; then
  summary=1
  shift
fi
pg_dsn="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
my_dsn="mysql://root@tcp(127.0.0.1:3306)/test"

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
my_up() { command -v mariadb-admin >/dev/null && mariadb-admin -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

# A variable already set is used as it is: no probing, no starting.
if [ -z "${TEST_DATABASE_POSTGRES:-}" ] && ! pg_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "with-dbs: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if [ -z "${TEST_DATABASE_MYSQL:-}" ] && ! my_up && [ -x /usr/sbin/mariadbd ]; then
  echo "with-dbs: starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >&2 || true
  for _ in $(seq 1 30); do my_up && break; sleep 1; done
fi

pg_state="ran (TEST_DATABASE_POSTGRES was set)"
my_state="ran (TEST_DATABASE_MYSQL was set)"
if [ -z "${TEST_DATABASE_POSTGRES:-}" ]; then
  if pg_up; then export TEST_DATABASE_POSTGRES="$pg_dsn"; pg_state="ran (127.0.0.1:5432)"
  elif [ "${REQUIRE_DATABASES:-0}" = 1 ]; then echo "with-dbs: PostgreSQL is required but not reachable at 127.0.0.1:5432" >&2; exit 1
  else echo "with-dbs: PostgreSQL not reachable, its backend tests are skipped" >&2; pg_state="skipped (not reachable at 127.0.0.1:5432)"; fi
fi
if [ -z "${TEST_DATABASE_MYSQL:-}" ]; then
  if my_up; then export TEST_DATABASE_MYSQL="$my_dsn"; my_state="ran (127.0.0.1:3306)"
  elif [ "${REQUIRE_DATABASES:-0}" = 1 ]; then echo "with-dbs: MariaDB/MySQL is required but not reachable at 127.0.0.1:3306" >&2; exit 1
  else echo "with-dbs: MariaDB/MySQL not reachable, its backend tests are skipped" >&2; my_state="skipped (not reachable at 127.0.0.1:3306)"; fi
fi
[ "$summary" = 1 ] || exec "$@"

"$@"
status=$?
# examples/nginx/nginx_test.go looks for nginx the same way.
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then nginx_state="ran"
elif [ "${REQUIRE_NGINX:-0}" = 1 ]; then nginx_state="failed (nginx is not installed and REQUIRE_NGINX=1)"
else nginx_state="skipped (nginx is not installed; make e2e installs it)"; fi
# examples/caddy/caddy_test.go the same for caddy.
if command -v caddy >/dev/null 2>&1 || [ -x /usr/bin/caddy ]; then caddy_state="ran"
elif [ "${REQUIRE_CADDY:-0}" = 1 ]; then caddy_state="failed (caddy is not installed and REQUIRE_CADDY=1)"
else caddy_state="skipped (caddy is not installed; make e2e installs it)"; fi
cat >&2 <<MSG

Backends and optional suites (exit status $status):
  SQLite                  ran
  PostgreSQL              $pg_state
  MariaDB/MySQL           $my_state
  nginx gateway test      $nginx_state
  Caddy gateway test      $caddy_state
  Chromium browser tests  not part of make test: make e2e
MSG
exit "$status"
