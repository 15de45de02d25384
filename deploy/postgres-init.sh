#!/usr/bin/env bash
# Runs once, when the PostgreSQL container initialises an empty data volume (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml).
#
# One database per service, each owned by the service's own login role: a service can create
# its tables in its own database and cannot even connect to another's (CONNECT is revoked from
# PUBLIC). Migrations are applied by the services at start. Each password comes from
# <NAME> or from the file <NAME>_FILE names (compose passes the files its `secrets` service
# generated).
set -euo pipefail

# The value of variable $1, or the contents of the file named by $1_FILE.
value_of() {
    local file_variable="${1}_FILE"
    if [[ -n ${!1:-} ]]; then
        printf '%s' "${!1}"
    elif [[ -n ${!file_variable:-} ]]; then
        tr -d '\n' <"${!file_variable}"
    else
        echo "postgres-init: set $1 or $file_variable" >&2
        return 1
    fi
}

create_owner() {
    local name=$1 password=$2
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
create role :"name" login password :'password';
create database :"name" owner :"name";
revoke all on database :"name" from public;
SQL
}

create_owner auth "$(value_of AUTH_DATABASE_PASSWORD)"
create_owner wallet "$(value_of WALLET_DATABASE_PASSWORD)"
create_owner statement "$(value_of STATEMENT_DATABASE_PASSWORD)"
create_owner orders "$(value_of ORDER_DATABASE_PASSWORD)"
