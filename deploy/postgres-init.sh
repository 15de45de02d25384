#!/usr/bin/env bash
# Runs once, when the PostgreSQL container initialises an empty data volume (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml).
#
# One database per service, each owned by the service's own login role: a service can create
# its tables in its own database and cannot even connect to another's (CONNECT is revoked from
# PUBLIC). Migrations are applied by the services at start. The passwords come from the
# environment docker-compose.yml passes in.
set -euo pipefail

create_owner() {
    local name=$1 password=$2
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
create role :"name" login password :'password';
create database :"name" owner :"name";
revoke all on database :"name" from public;
SQL
}

create_owner auth "$AUTH_DATABASE_PASSWORD"
create_owner wallet "$WALLET_DATABASE_PASSWORD"
create_owner statement "$STATEMENT_DATABASE_PASSWORD"
create_owner orders "$ORDER_DATABASE_PASSWORD"
