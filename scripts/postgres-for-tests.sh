#!/usr/bin/env bash
# Start a local PostgreSQL 15 for the test suite's PostgreSQL half (and install it when
# missing, on Debian). Idempotent. Tests connect over the Unix socket as the current user,
# who needs the right to create databases: DECONFLICT_TEST_POSTGRES overrides the URL.
set -euo pipefail
user="$(id -un)"

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "installing PostgreSQL 15 (Debian's postgresql package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version="$(pg_lsclusters --no-header | awk 'NR==1 {print $1}')"
cluster="$(pg_lsclusters --no-header | awk 'NR==1 {print $2}')"
if [ -z "$version" ]; then
  echo "no PostgreSQL cluster found: create one with pg_createcluster" >&2
  exit 1
fi
if ! pg_lsclusters --no-header | awk 'NR==1 {print $4}' | grep -q online; then
  pg_ctlcluster "$version" "$cluster" start
fi
for _ in $(seq 1 30); do
  pg_isready -q && break
  sleep 1
done
pg_isready

if [ "$user" = "root" ]; then
  as_postgres() { su postgres -c "$1"; }
else
  as_postgres() { sudo -u postgres sh -c "$1"; }
fi
exists="$(as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$user'\"")"
if [ "$exists" != "1" ]; then
  as_postgres "psql -qc 'CREATE ROLE \"$user\" LOGIN CREATEDB SUPERUSER'"
fi
echo "PostgreSQL $version/$cluster is ready for the tests (role $user)"
