# Sourced by bench/run, bench/faults and bench/deposit-cpu: builds the release binaries and runs the five
# programs natively, as separate processes, on throwaway databases and a throwaway vhost that
# are removed on exit. Needs PostgreSQL and RabbitMQ as for the tests.
#
# Instance i (0, 1, ...) of each program listens on its own ports: gRPC 2805x + 10 i, the
# gateway on 28080 + i. The gateway of instance i talks to the services of instance i; every
# instance shares the databases and the vhost, so the instances of a service compete for the
# same queues, as replicas do in production.
#
# BENCH_NO_BUILD=1 skips the build and runs the binaries already in target/release (to
# compare two builds of a program: copy each in turn over its binary).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

id=bench_$$
amqp=amqp://guest:guest@127.0.0.1:5672/$id
db() { echo "postgres://postgres@127.0.0.1:5432/${id}_$1"; }
gateway_url() { echo "http://127.0.0.1:$((28080 + $1))"; }
api=$(gateway_url 0)
bin=target/release
logs=target/bench-logs/$id
mkdir -p "$logs"
programs=(auth-service wallet-service statement-service order-service gateway)

# The settling checks read the queues through RabbitMQ's management API.
if ! curl -fsS -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview; then
    echo "RabbitMQ's management API does not answer on 127.0.0.1:15672;" \
        "turn it on with: rabbitmq-plugins enable rabbitmq_management" >&2
    exit 1
fi

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    echo "building (release)"
    cargo build -q --release --locked -p gateway -p auth-service -p wallet-service \
        -p statement-service -p order-service -p bench
fi

rabbitmqctl -q add_vhost "$id" >/dev/null
rabbitmqctl -q set_permissions -p "$id" guest '.*' '.*' '.*' >/dev/null

declare -A pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for name in auth wallet statement orders pgbench; do
        dropdb -h 127.0.0.1 -U postgres --if-exists "${id}_$name" >/dev/null 2>&1 || true
    done
    rabbitmqctl -q delete_vhost "$id" >/dev/null 2>&1 || true
}
trap cleanup EXIT

export INTERNAL_API_TOKEN
INTERNAL_API_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export RUST_LOG=${RUST_LOG:-warn} AMQP_URL=$amqp

# start PROGRAM [INSTANCE]: launches one instance (default 0) in the background; its output
# is appended to $logs/PROGRAM-INSTANCE.log, so a restarted instance keeps its history.
start() {
    local name=$1 instance=${2:-0}
    local base=$((28050 + 10 * instance))
    local settings=(
        AUTH_GRPC_ADDR=127.0.0.1:$((base + 1)) WALLET_GRPC_ADDR=127.0.0.1:$((base + 2))
        STATEMENT_GRPC_ADDR=127.0.0.1:$((base + 3)) ORDER_GRPC_ADDR=127.0.0.1:$((base + 4))
        GATEWAY_ADDR=127.0.0.1:$((28080 + instance))
        AUTH_DATABASE_URL="$(db auth)" WALLET_DATABASE_URL="$(db wallet)"
        STATEMENT_DATABASE_URL="$(db statement)" ORDER_DATABASE_URL="$(db orders)"
    )
    env "${settings[@]}" "$bin/$name" >>"$logs/$name-$instance.log" 2>&1 &
    pids[$name-$instance]=$!
}

# start_platform INSTANCES: every program INSTANCES times, one instance after the other (the
# first one creates the schemas), each ready (its gateway's /readyz answers 200) before the next.
start_platform() {
    local instance name
    for instance in $(seq 0 $(($1 - 1))); do
        for name in "${programs[@]}"; do start "$name" "$instance"; done
        until curl -fsS "$(gateway_url "$instance")/readyz" >/dev/null 2>&1; do
            check_alive
            sleep 0.05
        done
    done
}

check_alive() {
    local name
    for name in "${!pids[@]}"; do
        kill -0 "${pids[$name]}" 2>/dev/null || { echo "$name died; see $logs" >&2; exit 1; }
    done
}

user() { # signs up a fresh user; prints "id token"
    curl -fsS "$api/auth/sign-up" -H 'Content-Type: application/json' \
        -d "{\"email\":\"bench-$(cat /proc/sys/kernel/random/uuid)@example.org\",\"password\":\"correct horse battery\"}" |
        python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["user"]["id"], b["access_token"])'
}
# users N: signs up N users; sets user_ids and tokens (comma-separated).
users() {
    local ids=() list=() id token
    for _ in $(seq "$1"); do
        read -r id token < <(user)
        ids+=("$id")
        list+=("$token")
    done
    user_ids=$(IFS=,; echo "${ids[*]}")
    tokens=$(IFS=,; echo "${list[*]}")
}
