# Start the real backends the test suite runs against, on loopback, for this shell's lifetime:
# PostgreSQL (Debian's package), an S3-compatible server (moto's standalone server) and Redis
# (Debian's package, for the Redis Streams event stream).
# Source it; it exports MODELLOOP_TEST_POSTGRES_URL, MODELLOOP_TEST_S3_ENDPOINT and
# MODELLOOP_TEST_REDIS_URL and stops the servers when the shell exits.

_ml_run_dir=$(mktemp -d /tmp/modelloop-services.XXXXXX)
_ml_pg_port=${MODELLOOP_TEST_PG_PORT:-55432}
_ml_s3_port=${MODELLOOP_TEST_S3_PORT:-55433}

_ml_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start_postgres() {
    local bin; bin=$(_ml_pg_bin)
    if [ -z "$bin" ]; then
        if [ "$(id -u)" = 0 ]; then
            echo "installing PostgreSQL (Debian package)…" >&2
            apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            bin=$(_ml_pg_bin)
        fi
    fi
    if [ -z "$bin" ]; then
        echo "PostgreSQL is not installed (apt-get install postgresql); its tests will be skipped" >&2
        return 0
    fi
    local data="$_ml_run_dir/pg" as=()
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then  # initdb refuses to run as root
        chown -R postgres "$_ml_run_dir"; as=(runuser -u postgres --)
    fi
    "${as[@]}" "$bin/initdb" -D "$data" -A trust -U postgres >"$_ml_run_dir/initdb.log" 2>&1
    "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$_ml_run_dir/pg.log" -w \
        -o "-p $_ml_pg_port -k $_ml_run_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    export MODELLOOP_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$_ml_pg_port/postgres"
    _ml_pg_stop=("${as[@]}" "$bin/pg_ctl" -D "$data" -m fast stop)
}

start_s3() {
    python -m moto.server -H 127.0.0.1 -p "$_ml_s3_port" >"$_ml_run_dir/s3.log" 2>&1 &
    _ml_s3_pid=$!
    for _ in $(seq 1 100); do
        if python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $_ml_s3_port)))"; then
            export MODELLOOP_TEST_S3_ENDPOINT="http://127.0.0.1:$_ml_s3_port"
            return 0
        fi
        sleep 0.1
    done
    echo "the S3-compatible server did not start; see $_ml_run_dir/s3.log" >&2
    return 1
}

_ml_port_open() {
    python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)))"
}

start_redis() {
    if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing Redis (Debian package)…" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    if ! command -v redis-server >/dev/null; then
        echo "Redis is not installed (apt-get install redis-server); its tests will be skipped" >&2
        return 0
    fi
    # A free loopback port (not 6379: a Redis of the machine's own may be there); no persistence.
    local port=${MODELLOOP_TEST_REDIS_PORT:-$(python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
    mkdir -p "$_ml_run_dir/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$_ml_run_dir/redis" --pidfile "$_ml_run_dir/redis/redis.pid" \
        --logfile "$_ml_run_dir/redis/redis.log"
    for _ in $(seq 1 100); do
        if _ml_port_open "$port"; then
            export MODELLOOP_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
            _ml_redis_pidfile="$_ml_run_dir/redis/redis.pid"
            return 0
        fi
        sleep 0.1
    done
    echo "Redis did not start; see $_ml_run_dir/redis/redis.log" >&2
    return 1
}

# A headless browser for the web console's tests (tests/ui): Debian's chromium and its driver,
# driven by Selenium; nothing is downloaded at test time. Without them those tests are skipped.
ensure_chromium() {
    if { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; } && [ "$(id -u)" = 0 ]; then
        echo "installing Chromium and its driver (Debian packages)…" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        echo "Chromium is not installed (apt-get install chromium chromium-driver); the console's browser tests will be skipped" >&2
    fi
    return 0
}

stop_services() {
    [ -n "${_ml_redis_pidfile:-}" ] && [ -f "$_ml_redis_pidfile" ] && kill "$(cat "$_ml_redis_pidfile")" 2>/dev/null || true
    [ -n "${_ml_s3_pid:-}" ] && kill "$_ml_s3_pid" 2>/dev/null || true
    [ -n "${_ml_pg_stop:-}" ] && "${_ml_pg_stop[@]}" >/dev/null 2>&1 || true
    rm -rf "$_ml_run_dir"
}
trap stop_services EXIT
