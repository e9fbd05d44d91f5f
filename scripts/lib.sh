# shellcheck shell=bash
# Helpers shared by scripts/run and scripts/test: installing Debian packages,
# finding a free port, starting a private redis-server and stopping a process
# by its pid file. Source this file; it sets no shell options of its own (the
# scripts that source it use `set -euo pipefail`).

# hf_log MESSAGE...: prints a progress line on stderr.
hf_log() {
    printf '==> %s\n' "$*" >&2
}

# hf_die MESSAGE...: prints an error on stderr and exits.
hf_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# as_root COMMAND...: runs COMMAND as root, through sudo when needed.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        hf_die "'$*' needs root, and this is not root and has no sudo; install the package by hand"
    fi
}

# apt_install PACKAGE...: installs Debian packages with apt-get.
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        hf_die "apt-get not found: please install $* yourself"
    hf_log "installing $* with apt-get"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
        ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; then
        hf_die "could not install $* with apt-get"
    fi
}

# ensure_redis: makes sure redis-server and redis-cli are on PATH.
ensure_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server
    fi
    if ! command -v redis-cli >/dev/null 2>&1; then
        apt_install redis-tools
    fi
    command -v redis-server >/dev/null 2>&1 || hf_die "redis-server is still not on PATH"
    command -v redis-cli >/dev/null 2>&1 || hf_die "redis-cli is still not on PATH"
}

# ensure_cc: makes sure a C compiler is on PATH (the API's mimalloc allocator
# is C, built by cargo; a Rust toolchain usually brings one for linking).
ensure_cc() {
    if ! command -v cc >/dev/null 2>&1; then
        apt_install gcc libc6-dev
    fi
    command -v cc >/dev/null 2>&1 || hf_die "cc (a C compiler) is still not on PATH"
}

# ensure_curl: makes sure curl is on PATH.
ensure_curl() {
    if ! command -v curl >/dev/null 2>&1; then
        apt_install curl
    fi
    command -v curl >/dev/null 2>&1 || hf_die "curl is still not on PATH"
}

# port_free PORT: succeeds if PORT on 127.0.0.1 can be bound (python3), or
# failing that, if nothing answers on it.
port_free() {
    local port=$1
    if command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys' >/dev/null 2>&1; then
        python3 - "$port" >/dev/null 2>&1 <<'EOF'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()
EOF
        return
    fi
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# free_port: prints a free TCP port on 127.0.0.1.
free_port() {
    if command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null; then
        return 0
    fi
    # No usable python3: try random ports until one has no listener.
    local port tries
    for tries in $(seq 1 200); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    hf_die "no free TCP port found on 127.0.0.1 after $tries tries"
}

# pid_alive PID: succeeds if PID is running (a zombie counts as gone).
pid_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        # The state is the first field after the ")" that ends the name.
        state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
        [ "$state" != Z ] || return 1
    fi
    return 0
}

# redis_answers PORT PID: succeeds if the redis-server with pid PID answers
# PING on 127.0.0.1:PORT (and not some other server on that port).
redis_answers() {
    local port=$1 pid=$2
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] || return 1
    redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' |
        grep -x "process_id:$pid" >/dev/null
}

# start_redis PORT DIR [EXTRA_ARGS...]: starts a redis-server on 127.0.0.1:PORT
# with its files in DIR (no persistence unless EXTRA_ARGS turn it on), writes
# its pid to DIR/redis.pid and its output to DIR/redis.log, and waits until it
# answers PING. Call it in the current shell (not in $(...)), so the server
# stays a child of the caller.
start_redis() {
    local port=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)

    local args=(--port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no
        --save '' --appendonly no "$@")
    # Without job control the server would share the terminal's process group
    # and get Ctrl-C at once; setsid keeps it running until the caller stops
    # it, after the processes that use it.
    if [[ $- != *m* ]] && command -v setsid >/dev/null 2>&1; then
        setsid redis-server "${args[@]}" >>"$dir/redis.log" 2>&1 &
    else
        redis-server "${args[@]}" >>"$dir/redis.log" 2>&1 &
    fi
    local pid=$!
    echo "$pid" >"$dir/redis.pid"

    local deadline=$((SECONDS + 10))
    until redis_answers "$port" "$pid"; do
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            rm -f "$dir/redis.pid"
            tail -n 20 "$dir/redis.log" >&2 || true
            hf_die "redis-server on port $port exited at start (log: $dir/redis.log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            stop_pidfile "$dir/redis.pid"
            tail -n 20 "$dir/redis.log" >&2 || true
            hf_die "redis-server on port $port did not answer PING within 10 s (log: $dir/redis.log)"
        fi
        sleep 0.1
    done
}

# stop_pidfile FILE [TIMEOUT_SECONDS]: sends SIGTERM to the process in the pid
# file if it is alive, waits for it to exit (SIGKILL after TIMEOUT_SECONDS,
# default 30) and removes the file.
stop_pidfile() {
    local file=$1 timeout=${2:-30} pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if [ -n "$pid" ] && pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + timeout))
        while pid_alive "$pid"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                hf_log "pid $pid ($file) still running after ${timeout} s; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    fi
    # Reap it if it is our child; a no-op otherwise.
    if [ -n "$pid" ]; then
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

# free_cluster_port: prints a free TCP port for a cluster node: below 55536,
# with the cluster bus port (the port + 10000) free as well.
free_cluster_port() {
    local port tries
    for tries in $(seq 1 200); do
        port=$((20000 + RANDOM % 25000))
        if port_free "$port" && port_free "$((port + 10000))"; then
            echo "$port"
            return 0
        fi
    done
    hf_die "no free cluster port pair found on 127.0.0.1 after $tries tries"
}

# start_redis_cluster DIR PORT...: starts one cluster-enabled redis-server per
# PORT (files under DIR/<port>, pid in DIR/<port>/redis.pid), joins them into
# a cluster of masters with redis-cli --cluster create, and waits until the
# cluster reports ok. Stop it with stop_redis_cluster DIR. Call it in the
# current shell, like start_redis.
start_redis_cluster() {
    local dir=$1 port
    shift
    local addresses=()
    for port in "$@"; do
        start_redis "$port" "$dir/$port" --cluster-enabled yes \
            --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 5000
        addresses+=("127.0.0.1:$port")
    done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 0 --cluster-yes \
        >"$dir/create.log" 2>&1 || {
        tail -n 20 "$dir/create.log" >&2 || true
        hf_die "redis-cli --cluster create failed (log: $dir/create.log)"
    }
    local deadline=$((SECONDS + 20))
    for port in "$@"; do
        until redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r' |
            grep -x 'cluster_state:ok' >/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                hf_die "the Redis Cluster on ports $* did not reach cluster_state:ok within 20 s"
            fi
            sleep 0.1
        done
    done
}

# stop_redis_cluster DIR: stops every server start_redis_cluster started in DIR.
stop_redis_cluster() {
    local dir=$1 file
    for file in "$dir"/*/redis.pid; do
        [ -e "$file" ] || continue
        stop_pidfile "$file"
    done
}

# ensure_browser_tools: Debian's chromium, Node.js with npm, and
# playwright-core in $ROOT/.data/test-node (for NODE_PATH), for the checks
# and measurements that drive a real browser.
ensure_browser_tools() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    local node_dir=$ROOT/.data/test-node
    if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
        hf_log "installing playwright-core into $node_dir"
        mkdir -p "$node_dir"
        npm install --silent --no-audit --no-fund --prefix "$node_dir" playwright-core@1 ||
            hf_die "npm could not install playwright-core"
    fi
}
