#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_POSTGRES / TEST_DATABASE_MYSQL set for
# every real database server reachable on this machine, starting the local
# servers first when they are installed but down. With REQUIRE_DATABASES=1
# (CI) a missing server is an error instead of a skipped backend.
set -u
pg_dsn="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
my_dsn="mysql://root@tcp(127.0.0.1:3306)/test"

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
my_up() { command -v mariadb-admin >/dev/null && mariadb-admin -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

if ! pg_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "with-dbs: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! my_up && [ -x /usr/sbin/mariadbd ]; then
  echo "with-dbs: starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >&2 || true
  for _ in $(seq 1 30); do my_up && break; sleep 1; done
fi

if [ -z "${TEST_DATABASE_POSTGRES:-}" ]; then
  if pg_up; then export TEST_DATABASE_POSTGRES="$pg_dsn"
  elif [ "${REQUIRE_DATABASES:-0}" = 1 ]; then echo "with-dbs: PostgreSQL is required but not reachable at 127.0.0.1:5432" >&2; exit 1
  else echo "with-dbs: PostgreSQL not reachable, its backend tests are skipped" >&2; fi
fi
if [ -z "${TEST_DATABASE_MYSQL:-}" ]; then
  if my_up; then export TEST_DATABASE_MYSQL="$my_dsn"
  elif [ "${REQUIRE_DATABASES:-0}" = 1 ]; then echo "with-dbs: MariaDB/MySQL is required but not reachable at 127.0.0.1:3306" >&2; exit 1
  else echo "with-dbs: MariaDB/MySQL not reachable, its backend tests are skipped" >&2; fi
fi
exec "$@"
