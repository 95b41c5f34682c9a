#!/usr/bin/env bash
# Start and stop a throwaway nisshi broker (Kafka-compatible, in-memory storage) on loopback.
#
#   scripts/nisshi.sh start DIR   start a broker on a free 127.0.0.1 port with DIR (created if
#                                 missing; empty, or holding only what a stopped broker of this
#                                 script left) as its working directory; waits until
#                                 it accepts connections, prints the port, and writes DIR/pid,
#                                 DIR/port and DIR/log
#   scripts/nisshi.sh stop DIR    stop that broker; does nothing if it is not running
#   scripts/nisshi.sh port DIR    print the running broker's port (fails if it is not running)
#
# The broker runs from DIR because nisshi reads a `.env` from its working directory: an empty
# directory keeps stray settings out. Every setting that matters is passed as a flag (flags win
# over the environment), and the environment variables nisshi reads are cleared as well.
#
# NISSHI=/path/to/nisshi overrides where the binary is looked for (default: PATH, then
# ~/.cargo/bin). scripts/setup.sh installs it.
set -euo pipefail

START_TIMEOUT=${NISSHI_START_TIMEOUT:-30}  # seconds to wait for the listener
PORT_TRIES=5                               # fresh ports to try if one is taken meanwhile

die() { echo "nisshi.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|port DIR"; }

find_nisshi() {
    if [[ -n "${NISSHI:-}" ]]; then
        [[ -x "$NISSHI" ]] || die "NISSHI=$NISSHI is not an executable"
        echo "$NISSHI"
    elif command -v nisshi >/dev/null 2>&1; then
        command -v nisshi
    elif [[ -x "$HOME/.cargo/bin/nisshi" ]]; then
        echo "$HOME/.cargo/bin/nisshi"
    else
        die "nisshi is not installed (not on PATH nor in ~/.cargo/bin); install it with scripts/setup.sh"
    fi
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Whether $1 is a live process running nisshi (guards against a recycled pid).
is_nisshi() {
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q nisshi
}

# A port nothing listens on now. Another process may take it before the broker binds; start
# then sees the broker exit and tries another.
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! listening "$port"; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

start() {
    local dir=$1 bin port pid
    bin=$(find_nisshi)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f "$dir/pid" ]] && is_nisshi "$(cat "$dir/pid")"; then
        die "a broker is already running from $dir (pid $(cat "$dir/pid"), port $(cat "$dir/port" 2>/dev/null))"
    fi
    # Empty, or left by a stopped broker of ours (its log, maybe a stale pid/port): nothing a
    # broker could pick up as configuration.
    local f
    for f in "$dir"/* "$dir"/.[!.]*; do
        [[ -e "$f" ]] || continue
        case "$(basename "$f")" in
            log | pid | port) ;;
            *) die "$dir is not empty ($(basename "$f")); give start an empty directory" ;;
        esac
    done
    rm -f "$dir/pid" "$dir/port"
    for _ in $(seq 1 "$PORT_TRIES"); do
        port=$(free_port)
        # setsid: its own session, so the caller's terminal signals and process group leave it
        # alone; all output to the log, so a caller capturing our stdout does not wait for it.
        (
            cd "$dir"
            exec setsid env -u CLUSTER_ID -u LISTENER_URL -u ADVERTISED_LISTENER_URL \
                -u STORAGE_ENGINE -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT \
                "$bin" broker \
                --cluster-id kingest-test \
                --storage-engine memory://kingest/ \
                --listener-url "tcp://127.0.0.1:$port" \
                --advertised-listener-url "tcp://127.0.0.1:$port" \
                </dev/null >>"$dir/log" 2>&1
        ) &
        pid=$!
        echo "$pid" >"$dir/pid"
        echo "$port" >"$dir/port"
        local waited=0
        while ((waited < START_TIMEOUT * 10)); do
            if ! kill -0 "$pid" 2>/dev/null; then
                break # exited: port taken, or a real failure (retried, then reported)
            fi
            if listening "$port"; then
                # Someone else may have taken the port while our broker fails to bind and is
                # about to exit: make sure it is still alive a moment later.
                sleep 0.2
                if kill -0 "$pid" 2>/dev/null; then
                    echo "$port"
                    return 0
                fi
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            stop "$dir"
            die "nisshi did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT}s; see $dir/log"
        fi
        rm -f "$dir/pid" "$dir/port"
        echo "nisshi.sh: broker exited at start on port $port; retrying" >&2
    done
    die "nisshi would not start; last lines of $dir/log:
$(tail -n 20 "$dir/log" 2>/dev/null)"
}

stop() {
    local dir=$1 pid
    [[ -f "$dir/pid" ]] || return 0
    pid=$(cat "$dir/pid")
    if is_nisshi "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/pid" "$dir/port"
}

port() {
    local dir=$1
    [[ -f "$dir/pid" ]] && is_nisshi "$(cat "$dir/pid")" || die "no broker running from $dir"
    cat "$dir/port"
}

[[ $# -eq 2 ]] || usage
case "$1" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    port) port "$2" ;;
    *) usage ;;
esac
