# Sourced by bench/run, bench/memory, bench/faults and bench/deposit-cpu: builds the release
# binaries and runs the six programs natively, as separate processes, on throwaway databases
# and a throwaway vhost that are removed on exit. Needs PostgreSQL and RabbitMQ as for the
# tests. It also holds the memory measure (at the end of this file), which runs the
# all-in-one `stack` too, on databases and a vhost of its own.
#
# Instance i (0, 1, ...) of each program listens on its own ports: gRPC 2805x + 10 i, the
# gateway on 28080 + i, the web app on 28090 + i. The gateway of instance i talks to the services of instance i; every
# instance shares the databases and the vhost, so the instances of a service compete for the
# same queues, as replicas do in production.
#
# BENCH_NO_BUILD=1 skips the build and runs the binaries already in target/release (to
# compare two builds of a program: copy each in turn over its binary).
# BENCH_PROGRAMS=DIR runs the programs (and `stack`) found in DIR instead of target/release,
# e.g. a copy of an older build; the load generators still come from target/release.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

id=bench_$$
amqp=amqp://guest:guest@127.0.0.1:5672/$id
db() { echo "postgres://postgres@127.0.0.1:5432/${id}_$1"; }
gateway_url() { echo "http://127.0.0.1:$((28080 + $1))"; }
api=$(gateway_url 0)
web=http://127.0.0.1:28090
bin=target/release
programs_bin=${BENCH_PROGRAMS:-$bin}
logs=target/bench-logs/$id
mkdir -p "$logs"
programs=(auth-service wallet-service statement-service order-service gateway web)

# The settling checks read the queues through RabbitMQ's management API.
if ! curl -fsS -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview; then
    echo "RabbitMQ's management API does not answer on 127.0.0.1:15672;" \
        "turn it on with: rabbitmq-plugins enable rabbitmq_management" >&2
    exit 1
fi

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    echo "building (release)"
    cargo build -q --release --locked -p gateway -p auth-service -p wallet-service \
        -p statement-service -p order-service -p web -p stack -p bench
fi

rabbitmqctl -q add_vhost "$id" >/dev/null
rabbitmqctl -q set_permissions -p "$id" guest '.*' '.*' '.*' >/dev/null

declare -A pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for name in auth wallet statement orders pgbench \
        stack_auth stack_wallet stack_statement stack_orders; do
        dropdb -h 127.0.0.1 -U postgres --if-exists "${id}_$name" >/dev/null 2>&1 || true
    done
    for vhost in "$id" "${id}_stack"; do
        rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

export INTERNAL_API_TOKEN
INTERNAL_API_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export RUST_LOG=${RUST_LOG:-warn} AMQP_URL=$amqp
# Every benchmark user signs up and in from 127.0.0.1, 32 at a time: lift the per-address
# limits (sign-ins in flight count against the address until they succeed).
export SIGN_UP_MAX_PER_ADDRESS=${SIGN_UP_MAX_PER_ADDRESS:-1000000}
export SIGN_IN_MAX_FAILURES_PER_ADDRESS=${SIGN_IN_MAX_FAILURES_PER_ADDRESS:-1000000}

# start PROGRAM [INSTANCE]: launches one instance (default 0) in the background; its output
# is appended to $logs/PROGRAM-INSTANCE.log, so a restarted instance keeps its history.
start() {
    local name=$1 instance=${2:-0}
    local base=$((28050 + 10 * instance))
    local settings=(
        AUTH_GRPC_ADDR=127.0.0.1:$((base + 1)) WALLET_GRPC_ADDR=127.0.0.1:$((base + 2))
        STATEMENT_GRPC_ADDR=127.0.0.1:$((base + 3)) ORDER_GRPC_ADDR=127.0.0.1:$((base + 4))
        GATEWAY_ADDR=127.0.0.1:$((28080 + instance)) GATEWAY_URL="$(gateway_url "$instance")"
        WEB_ADDR=127.0.0.1:$((28090 + instance))
        AUTH_DATABASE_URL="$(db auth)" WALLET_DATABASE_URL="$(db wallet)"
        STATEMENT_DATABASE_URL="$(db statement)" ORDER_DATABASE_URL="$(db orders)"
    )
    # As their images set it (Dockerfile); an exported value wins, to compare.
    if [[ $name == web || $name == gateway ]]; then
        settings+=(MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}")
    fi
    env "${settings[@]}" "$programs_bin/$name" >>"$logs/$name-$instance.log" 2>&1 &
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

# cpu_groups: one line per process group, its name then its process ids: the programs of
# instance 0, every PostgreSQL process and RabbitMQ (the whole machine's: bench/deposit-cpu
# and bench/requests count them, so run those where nothing else uses them).
cpu_groups() {
    local name
    for name in "${programs[@]}"; do echo "$name ${pids[$name-0]}"; done
    # Backends are named after their database (`postgres: ...`), the server `postgres`.
    echo "postgresql $({ pgrep -x postgres; pgrep -f '^postgres: '; } | sort -u | tr '\n' ' ')"
    echo "rabbitmq $(pgrep -f beam.smp | tr '\n' ' ')"
}
# cpu_ticks PID...: their CPU time so far (user + system), in clock ticks.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        # Fields 14 and 15; the name (field 2) has no spaces for these processes.
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

# stop_platform: stops every program started by `start` (SIGTERM, then waits for them), so a
# measure that follows has the machine to itself. The databases and the vhost stay.
stop_platform() {
    local name
    for name in "${!pids[@]}"; do
        kill "${pids[$name]}" 2>/dev/null || true
        wait "${pids[$name]}" 2>/dev/null || true
        unset "pids[$name]"
    done
}

# --- The memory measure -------------------------------------------------------------------
# The many-users journey (`bench journey`, bench/src/journey.rs: BENCH_JOURNEY_USERS users,
# default 2,000, sign up 32 at a time and make ten requests each through the gateway), and
# the resident memory (RSS) of each program before it, at its end, and once the platform
# has settled 5 s after it, which is the figure held to the targets. MB here are MiB (ps's
# KiB / 1024), as in bench/run's other memory figures.

journey_users=${BENCH_JOURNEY_USERS:-2000}
cores=$(nproc)
# The targets, in MB: the all-in-one process; auth-service 20 MB plus 19.5 MiB per hashing
# permit (one per core: password hashes run in 19 MiB buffers, one per permit); the others.
stack_target=100
auth_target=$(awk -v cores="$cores" 'BEGIN { print int(20 + 19.5 * cores) }')
other_target=25

rss_mb() { echo $(($(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status") / 1024)); }
peak_mb() { echo $(($(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status") / 1024)); }

# memory_journey GATEWAY_URL AMQP_URL DATABASE_PREFIX NAME=PID...: runs the journey and
# sets memory_before, memory_end, memory_after and memory_peak[NAME] (MB) for each process.
declare -A memory_before=() memory_end=() memory_after=() memory_peak=()
journey_failures=0
memory_journey() {
    local url=$1 amqp_url=$2 prefix=$3 pair
    shift 3
    for pair in "$@"; do memory_before[${pair%%=*}]=$(rss_mb "${pair#*=}"); done
    echo "the journey: $journey_users users sign up (32 at a time), ten requests each ($*)"
    local report failed
    # A user that failed is counted (bench exits non-zero then): the figures are still shown.
    report=$("$bin/bench" journey "$url" "$journey_users" 32) || true
    read -r _ journey_requests failed journey_seconds <<<"$report"
    echo "  $journey_requests requests in $journey_seconds s, ${failed:-all} users failed"
    journey_failures=$((journey_failures + ${failed:-$journey_users}))
    for pair in "$@"; do memory_end[${pair%%=*}]=$(rss_mb "${pair#*=}"); done
    "$bin/bench" settle "$amqp_url" "$prefix"
    sleep 5
    for pair in "$@"; do
        memory_after[${pair%%=*}]=$(rss_mb "${pair#*=}")
        memory_peak[${pair%%=*}]=$(peak_mb "${pair#*=}")
    done
}

# memory_of_programs: the journey through the separate programs started by start_platform.
memory_of_programs() {
    local name pairs=()
    for name in "${programs[@]}"; do pairs+=("$name=${pids[$name-0]}"); done
    memory_journey "$api" "$amqp" "$(db '')" "${pairs[@]}"
}

# memory_of_stack: starts the all-in-one `stack` on databases, a vhost and ports of its own,
# runs the journey through it, and stops it.
memory_of_stack() {
    local vhost="${id}_stack" url=http://127.0.0.1:28180
    rabbitmqctl -q add_vhost "$vhost" >/dev/null
    rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
    local settings=(
        AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
        AUTH_GRPC_ADDR=127.0.0.1:28151 WALLET_GRPC_ADDR=127.0.0.1:28152
        STATEMENT_GRPC_ADDR=127.0.0.1:28153 ORDER_GRPC_ADDR=127.0.0.1:28154
        GATEWAY_ADDR=127.0.0.1:28180
        AUTH_DATABASE_URL="$(db stack_auth)" WALLET_DATABASE_URL="$(db stack_wallet)"
        STATEMENT_DATABASE_URL="$(db stack_statement)" ORDER_DATABASE_URL="$(db stack_orders)"
    )
    env "${settings[@]}" "$programs_bin/stack" >>"$logs/stack.log" 2>&1 &
    pids[stack]=$!
    until curl -fsS "$url/readyz" >/dev/null 2>&1; do
        check_alive
        sleep 0.05
    done
    memory_journey "$url" "amqp://guest:guest@127.0.0.1:5672/$vhost" "$(db stack_)" \
        "stack=${pids[stack]}"
    stop_platform
}

# memory_rows: the table rows of the measures above, each with its target and verdict.
memory_rows() {
    local name target
    for name in "${programs[@]}" stack; do
        [[ -n "${memory_after[$name]:-}" ]] || continue
        case $name in
            stack) target=$stack_target ;;
            auth-service) target=$auth_target ;;
            *) target=$other_target ;;
        esac
        local verdict=met
        ((memory_after[$name] <= target)) || verdict=MISSED
        local label="$name (separate program)"
        [[ $name == stack ]] && label="stack (all five in one process)"
        printf '| resident memory, %s: before / end / settled / peak (MB) | %s / %s / **%s** / %s | ≤ %s (%s) |\n' \
            "$label" "${memory_before[$name]}" "${memory_end[$name]}" "${memory_after[$name]}" \
            "${memory_peak[$name]}" "$target" "$verdict"
    done
}
