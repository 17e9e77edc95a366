# Source this: `start_server [NAME=value...]` starts the built webhook-processor for a check
# that needs a live server, and stops it when the sourcing script exits.
#
# The server listens on 127.0.0.1 on a free port (PORT=0, read back from its log), with a
# temporary database and a random WEBHOOK_SECRET; NAME=value pairs add or override settings.
# Afterwards SERVER_URL, SERVER_SECRET and SERVER_LOG are set. The binary is built first when
# it is missing or stale (debug profile, as `cargo test` builds it).

server_pid=""
server_dir=""

start_server() {
    cargo build --locked --quiet --bin webhook-processor
    local binary
    binary="$(pwd)/${CARGO_TARGET_DIR:-target}/debug/webhook-processor"
    server_dir=$(mktemp -d)
    SERVER_LOG=$server_dir/server.log
    SERVER_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    (
        cd "$server_dir"
        exec env -i PATH="$PATH" LOG_LEVEL=INFO HOST=127.0.0.1 PORT=0 \
            WEBHOOK_SECRET="$SERVER_SECRET" DATABASE_URL="sqlite:///$server_dir/app.db" \
            "$@" "$binary"
    ) > "$SERVER_LOG" 2>&1 &
    server_pid=$!
    trap stop_server EXIT
    local port="" waited=0
    while [[ -z $port ]]; do
        if ! kill -0 "$server_pid" 2>/dev/null || ((waited > 100)); then
            echo "the server did not start:" >&2
            cat "$SERVER_LOG" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
        port=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    event = json.loads(line)
    if event.get("message") == "listening":
        print(event["port"])
' "$SERVER_LOG" 2>/dev/null || true)
    done
    SERVER_URL=http://127.0.0.1:$port
    echo "server at $SERVER_URL (log: $SERVER_LOG)"
}

stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [[ -n $server_dir ]]; then
        rm -rf "$server_dir"
        server_dir=""
    fi
}

# The hex HMAC-SHA256 of standard input under SERVER_SECRET: an X-Signature.
sign_body() {
    python3 -c '
import hashlib, hmac, sys
print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())
' "$SERVER_SECRET"
}
