#!/usr/bin/env bash
# Bring up (idempotently) the servers Rivet's live tests need and print the
# environment they read, as `export VAR=...` lines on stdout. Everything else
# goes to stderr, so callers can do:
#
#   eval "$(scripts/test-env.sh)"
#
# Usage:
#   scripts/test-env.sh [start]   start/refresh everything (default)
#   scripts/test-env.sh stop      stop the throwaway PostgreSQL and MariaDB
#   scripts/test-env.sh status    say whether they are running (exit 3 if not)
#   scripts/test-env.sh env       print the exports without starting anything
#
# State lives outside the repo so a fresh clone reuses it:
#   ${RIVET_TEST_ENV_DIR:-$HOME/.cache/rivet-test-env}
# (as root the default is /var/cache/rivet-test-env, because the `postgres`
# user that runs the server usually cannot enter root's home directory).
#
# PostgreSQL 15 cluster: 127.0.0.1:55432, scram-sha-256 password auth,
# wal_level=logical, pg_stat_statements preloaded with track=all.
#
# Object-store emulators: moto (S3) on 127.0.0.1:9311, Azurite (Azure Blob) on
# 127.0.0.1:10000, each with a `rivet-test` bucket/container.
#
# pgBouncer (Debian package) on 127.0.0.1:56432 in front of that cluster, in
# transaction pooling mode with server_round_robin, so one client's consecutive
# transactions land on different server sessions (what breaks session state).
#
# MariaDB 10.11 instance: 127.0.0.1:33306 (never the machine's own 3306), binlog
# in ROW format, utf8mb4_bin; admin is root without a password over the socket
# $ENV_DIR/my/sock; the reader may create databases named rivet_t_<anything>, and
# rivet_my_cdc (RIVET_TEST_MYSQL_CDC_URL) has a replica's grants for binlog capture.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ $EUID -eq 0 ]]; then
    DEFAULT_ENV_DIR=/var/cache/rivet-test-env
else
    DEFAULT_ENV_DIR=$HOME/.cache/rivet-test-env
fi
ENV_DIR=${RIVET_TEST_ENV_DIR:-$DEFAULT_ENV_DIR}

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_DIR=$ENV_DIR/pg
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/server.log
PG_HOST=127.0.0.1
PG_PORT=55432
PG_SUPERUSER=postgres
PG_SUPERUSER_PW=rivet-test-superuser
PG_READER=rivet_reader
PG_READER_PW=rivet-test-pw-Zq9
PG_DB=rivet_fixture_db
# A role that may only connect over TLS (pg_hba: hostssl, hostnossl reject).
PG_TLS_USER=rivet_tls
# Change capture tests: a role with the REPLICATION attribute (logical slots) and
# CREATE on the fixture database (its own schemas, tables and publications).
PG_CDC_USER=rivet_cdc
PG_TLS_PW=rivet-test-tls-Kp4
PG_CA=$ENV_DIR/server-ca.crt
PG_SEED=$REPO_ROOT/fixtures/postgres/seed.sql
PG_SEED_HASH_FILE=$PG_DIR/seed.sha256
# Every-type fixture (tests/e2e_types.rs) in a database of its own, with the contrib
# extensions citext/hstore/ltree and PostGIS.
PG_TYPES_DB=rivet_types_db
PG_TYPES_SEED=$REPO_ROOT/fixtures/postgres/types.sql
PG_TYPES_HASH_FILE=$PG_DIR/types-seed.sha256

PGB_DIR=$ENV_DIR/pgbouncer
PGB_PORT=56432

MY_DIR=$ENV_DIR/my
MY_DATA=$MY_DIR/data
MY_SOCK=$MY_DIR/sock
MY_PID_FILE=$MY_DIR/mariadbd.pid
MY_LOG=$MY_DIR/server.log
MY_ARGS_FILE=$MY_DIR/server.args
MY_HOST=127.0.0.1
MY_PORT=33306
MY_READER=rivet_reader
MY_CDC=rivet_my_cdc
MY_READER_PW=rivet-test-my-Qx7
MY_DB=rivet_fixture
# Scratch databases the reader may create and drop (LIKE pattern, `_` escaped).
MY_SCRATCH_PATTERN='rivet\_t\_%'
MY_SEED=$REPO_ROOT/fixtures/mysql/seed.sql
MY_SEED_HASH_FILE=$MY_DIR/seed.sha256
MY_TYPES_DB=rivet_types
MY_TYPES_SEED=$REPO_ROOT/fixtures/mysql/types.sql
MY_TYPES_HASH_FILE=$MY_DIR/types-seed.sha256
MY_SERVER=/usr/sbin/mariadbd

log() { printf 'test-env: %s\n' "$*" >&2; }
die() { printf 'test-env: error: %s\n' "$*" >&2; exit 1; }

# --- privileges ---------------------------------------------------------------
# PostgreSQL refuses to run as root: as root, run its server binaries as the
# `postgres` user; otherwise run them as the current user.
if [[ $EUID -eq 0 ]]; then
    AS_PG=(runuser -u postgres --)
    SUDO=()
else
    AS_PG=()
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else SUDO=(); fi
fi

apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "missing $* and apt-get is not available; install it by hand"
    log "installing missing packages: $*"
    "${SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$@" >&2
}

ensure_packages() {
    local pkgs=()
    if [[ ! -x $PG_BIN/initdb || ! -x $PG_BIN/pg_ctl || ! -x $PG_BIN/postgres ]]; then
        pkgs+=("postgresql-$PG_MAJOR")
    elif [[ ! -f /usr/share/postgresql/$PG_MAJOR/extension/pg_stat_statements.control ]]; then
        pkgs+=("postgresql-$PG_MAJOR")   # contrib ships inside postgresql-15 on Debian 12
    fi
    if [[ ! -f /usr/share/postgresql/$PG_MAJOR/extension/postgis.control ]]; then
        pkgs+=("postgresql-$PG_MAJOR-postgis-3")
    fi
    if [[ ! -x $PG_BIN/psql || ! -x $PG_BIN/pg_isready ]]; then
        pkgs+=("postgresql-client-$PG_MAJOR")
    fi
    if [[ ! -x $MY_SERVER ]] || ! command -v mariadb-install-db >/dev/null 2>&1 \
        || ! command -v mariadb >/dev/null 2>&1 || ! command -v mariadb-admin >/dev/null 2>&1; then
        pkgs+=(mariadb-server mariadb-client)
    fi
    [[ -x /usr/sbin/pgbouncer ]] || pkgs+=(pgbouncer)
    command -v sha256sum >/dev/null 2>&1 || pkgs+=(coreutils)
    if [[ $EUID -eq 0 ]] && ! command -v runuser >/dev/null 2>&1; then
        pkgs+=(util-linux)
    fi
    if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
    if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        die "user 'postgres' does not exist (it is created by the postgresql-$PG_MAJOR package)"
    fi
}

# --- cluster ------------------------------------------------------------------
pg_ctl_() {
    # fd 9 is our lock; the server must not inherit it.
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@" 9>&-
}

postmaster_pid() {
    head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null
}

pg_running() {
    [[ -f $PG_DATA/PG_VERSION ]] || return 1
    pg_ctl_ status >/dev/null 2>&1 || return 1
    # A postmaster killed with SIGKILL lingers as a zombie until it is reaped;
    # pg_ctl (and a new postmaster) still count it as alive.
    local pid state
    pid=$(postmaster_pid) || return 1
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

pg_start() {
    local attempt i pid
    for attempt in 1 2 3; do
        # After a crash, wait for the dead postmaster to be reaped, or the new
        # one refuses to start ("lock file postmaster.pid already exists").
        pid=$(postmaster_pid) || pid=
        for ((i = 0; i < 30; i++)); do
            [[ -n $pid ]] && [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] || break
            sleep 1
        done
        log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: $PG_LOG)"
        if pg_ctl_ -w -t 60 -l "$PG_LOG" start >&2; then
            return 0
        fi
        log "pg_ctl start failed (attempt $attempt)"
        sleep 2
    done
    tail -n 30 "$PG_LOG" >&2 || true
    die "could not start PostgreSQL; see $PG_LOG"
}

admin_psql() {
    # admin_psql DB [psql args...]
    local db=$1; shift
    PGPASSWORD=$PG_SUPERUSER_PW PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q \
        -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" -d "$db" "$@"
}

write_config() {
    # Rewritten on every run; postgresql.conf includes it. Returns the content
    # so the caller can tell whether a restart is needed.
    cat >"$PG_DATA/rivet.conf.new" <<EOF
# Managed by scripts/test-env.sh -- rewritten on every run.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
password_encryption = 'scram-sha-256'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
logging_collector = off
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    if [[ $EUID -eq 0 ]]; then chown postgres: "$PG_DATA/rivet.conf.new"; fi
    if cmp -s "$PG_DATA/rivet.conf.new" "$PG_DATA/rivet.conf" 2>/dev/null; then
        rm -f "$PG_DATA/rivet.conf.new"
        return 1
    fi
    mv "$PG_DATA/rivet.conf.new" "$PG_DATA/rivet.conf"
    return 0
}

ensure_dirs() {
    mkdir -p "$PG_DIR" "$MY_DIR"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$PG_DIR"
        chmod 700 "$PG_DIR"
        "${AS_PG[@]}" test -w "$PG_DIR" \
            || die "user 'postgres' cannot write $PG_DIR (is a parent directory closed to it?); set RIVET_TEST_ENV_DIR to a directory it can reach"
    fi
}

init_cluster() {
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    if [[ -e $PG_DATA ]] && [[ -n $(ls -A "$PG_DATA" 2>/dev/null) ]]; then
        die "$PG_DATA exists but holds no cluster; remove it and rerun"
    fi
    log "initdb $PG_DATA"
    local pwfile=$PG_DIR/.pwfile
    (umask 077 && printf '%s\n' "$PG_SUPERUSER_PW" >"$pwfile")
    if [[ $EUID -eq 0 ]]; then chown postgres: "$pwfile"; fi
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" --pwfile="$pwfile" \
        -A scram-sha-256 --encoding=UTF8 --locale=C >&2 \
        || { rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
    printf "\ninclude_if_exists = 'rivet.conf'\n" >>"$PG_DATA/postgresql.conf"
    rm -f "$PG_SEED_HASH_FILE"
}

# Self-signed server certificate for 127.0.0.1/localhost; the tests use it as the CA.
ensure_tls() {
    if [[ ! -f $PG_DATA/server.crt || ! -f $PG_DATA/server.key ]]; then
        command -v openssl >/dev/null 2>&1 || apt_install openssl
        log "creating a self-signed TLS certificate for the test server"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            -keyout "$PG_DATA/server.key" -out "$PG_DATA/server.crt" >/dev/null 2>&1 \
            || die "openssl could not create the test certificate"
        chmod 600 "$PG_DATA/server.key"
        if [[ $EUID -eq 0 ]]; then chown postgres: "$PG_DATA/server.key" "$PG_DATA/server.crt"; fi
    fi
    cp "$PG_DATA/server.crt" "$PG_CA"
    chmod 644 "$PG_CA"
    # The TLS-only role's rules go first; pg_hba.conf is read top to bottom.
    if ! grep -q "$PG_TLS_USER" "$PG_DATA/pg_hba.conf"; then
        local hba
        hba=$(mktemp)
        {
            printf 'hostssl all %s 127.0.0.1/32 scram-sha-256\n' "$PG_TLS_USER"
            printf 'hostnossl all %s 127.0.0.1/32 reject\n' "$PG_TLS_USER"
            cat "$PG_DATA/pg_hba.conf"
        } >"$hba"
        cat "$hba" >"$PG_DATA/pg_hba.conf"
        rm -f "$hba"
        if pg_running; then pg_ctl_ reload >&2; fi
    fi
}

start_cluster() {
    local restart=0
    if write_config; then restart=1; fi
    if pg_running; then
        if ((restart)); then
            log "configuration changed; restarting PostgreSQL"
            pg_ctl_ -m fast -w -t 60 -l "$PG_LOG" restart >&2
        else
            log "PostgreSQL already running on $PG_HOST:$PG_PORT"
        fi
    else
        if "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2; then
            die "something else is already listening on $PG_HOST:$PG_PORT"
        fi
        pg_start
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        if "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2; then return 0; fi
        sleep 1
    done
    tail -n 30 "$PG_LOG" >&2 || true
    die "PostgreSQL on $PG_HOST:$PG_PORT did not become ready"
}

stop_cluster() {
    if pg_running; then
        log "stopping PostgreSQL ($PG_DATA)"
        pg_ctl_ -m fast -w -t 60 stop >&2
    else
        log "PostgreSQL ($PG_DATA) is not running"
    fi
}

# --- roles, database, fixtures ------------------------------------------------
setup_database() {
    admin_psql postgres -v reader="$PG_READER" -v reader_pw="$PG_READER_PW" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'reader', :'reader_pw') \gexec
SQL
    admin_psql postgres -v tls_user="$PG_TLS_USER" -v tls_pw="$PG_TLS_PW" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'tls_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'tls_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'tls_user', :'tls_pw') \gexec
SQL
    admin_psql postgres -v cdc_user="$PG_CDC_USER" -v cdc_pw="$PG_READER_PW" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'cdc_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'cdc_user') \gexec
SELECT format('ALTER ROLE %I LOGIN REPLICATION PASSWORD %L', :'cdc_user', :'cdc_pw') \gexec
SQL
    local exists
    exists=$(admin_psql postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
    if [[ $exists != 1 ]]; then
        log "creating database $PG_DB"
        admin_psql postgres -c "CREATE DATABASE $PG_DB OWNER $PG_SUPERUSER TEMPLATE template0 ENCODING 'UTF8'" >&2
    fi
    admin_psql "$PG_DB" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >&2

    [[ -f $PG_SEED ]] || die "seed file not found: $PG_SEED"
    local want have=""
    want=$(sha256sum "$PG_SEED" | cut -d' ' -f1)
    [[ -f $PG_SEED_HASH_FILE ]] && have=$(<"$PG_SEED_HASH_FILE")
    local present
    present=$(admin_psql "$PG_DB" -At -c "SELECT to_regclass('rivet_fixture.all_types') IS NOT NULL")
    if [[ $want != "$have" || $present != t ]]; then
        log "loading $PG_SEED into $PG_DB"
        rm -f "$PG_SEED_HASH_FILE"
        admin_psql "$PG_DB" -f "$PG_SEED" >&2
        printf '%s\n' "$want" >"$PG_SEED_HASH_FILE"
    else
        log "fixtures up to date (seed sha256 $want)"
    fi

    # Grants are reapplied every run: reloading the seed drops the schemas.
    admin_psql "$PG_DB" -v reader="$PG_READER" -v db="$PG_DB" >&2 <<'SQL'
GRANT CONNECT, CREATE ON DATABASE :"db" TO :"reader";
GRANT CONNECT, CREATE ON DATABASE :"db" TO rivet_cdc;
GRANT USAGE ON SCHEMA rivet_fixture, "Sales Data" TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA rivet_fixture, "Sales Data" TO :"reader";
SQL
    admin_psql "$PG_DB" -v tls_user="$PG_TLS_USER" -v db="$PG_DB" >&2 <<'SQL'
GRANT CONNECT ON DATABASE :"db" TO :"tls_user";
GRANT USAGE ON SCHEMA rivet_fixture TO :"tls_user";
GRANT SELECT ON ALL TABLES IN SCHEMA rivet_fixture TO :"tls_user";
SQL
}

# The every-type database: reloaded when its seed changes (or its table is missing).
setup_types_database() {
    local exists want have="" present
    exists=$(admin_psql postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$PG_TYPES_DB'")
    if [[ $exists != 1 ]]; then
        log "creating database $PG_TYPES_DB"
        admin_psql postgres -c "CREATE DATABASE $PG_TYPES_DB OWNER $PG_SUPERUSER TEMPLATE template0 ENCODING 'UTF8'" >&2
        rm -f "$PG_TYPES_HASH_FILE"
    fi
    [[ -f $PG_TYPES_SEED ]] || die "seed file not found: $PG_TYPES_SEED"
    want=$(sha256sum "$PG_TYPES_SEED" | cut -d' ' -f1)
    [[ -f $PG_TYPES_HASH_FILE ]] && have=$(<"$PG_TYPES_HASH_FILE")
    present=$(admin_psql "$PG_TYPES_DB" -At -c "SELECT to_regclass('rivet_types.every_type') IS NOT NULL")
    if [[ $want != "$have" || $present != t ]]; then
        log "loading $PG_TYPES_SEED into $PG_TYPES_DB"
        rm -f "$PG_TYPES_HASH_FILE"
        admin_psql "$PG_TYPES_DB" -f "$PG_TYPES_SEED" >&2
        printf '%s\n' "$want" >"$PG_TYPES_HASH_FILE"
    else
        log "every-type fixtures up to date (seed sha256 $want)"
    fi
    admin_psql "$PG_TYPES_DB" -v reader="$PG_READER" -v db="$PG_TYPES_DB" >&2 <<'SQL'
GRANT CONNECT ON DATABASE :"db" TO :"reader";
GRANT USAGE ON SCHEMA rivet_types TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA rivet_types TO :"reader";
SQL
}

# --- MariaDB ------------------------------------------------------------------
# The server runs as the invoking user; as root, mariadbd must be told so.
if [[ $EUID -eq 0 ]]; then MY_USER_OPT=(--user=root); else MY_USER_OPT=(); fi

my_server_args() {
    # One option a line. Also kept in $MY_ARGS_FILE, so a change restarts the server.
    printf '%s\n' \
        --no-defaults \
        "${MY_USER_OPT[@]}" \
        --datadir="$MY_DATA" \
        --socket="$MY_SOCK" \
        --pid-file="$MY_PID_FILE" \
        --log-error="$MY_LOG" \
        --port="$MY_PORT" \
        --bind-address="$MY_HOST" \
        --log-bin="$MY_DIR/binlog" \
        --binlog-format=ROW \
        --server-id=1 \
        --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_bin \
        --slow-query-log=0 \
        --performance-schema=OFF
}

my_admin() {
    # my_admin [mariadb args...]: root over the socket (no password).
    mariadb --no-defaults --socket="$MY_SOCK" --user=root \
        --default-character-set=utf8mb4 --connect-timeout=10 "$@"
}

my_ping() {
    # Succeeds once the server answers (even "access denied" means it is up).
    mariadb-admin --no-defaults --socket="$MY_SOCK" --user=root \
        --connect-timeout=2 ping >/dev/null 2>&1
}

my_pid() {
    local pid
    pid=$(head -n 1 "$MY_PID_FILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$pid"
}

my_alive() {
    # my_alive PID: a live (not zombie) mariadbd with that pid.
    local state comm
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]] || return 1
    comm=$(ps -o comm= -p "$1" 2>/dev/null) || return 1
    [[ $comm == mariadbd || $comm == mysqld ]]
}

my_running() {
    local pid
    pid=$(my_pid) || return 1
    my_alive "$pid"
}

my_init_datadir() {
    [[ -f $MY_DATA/mysql/global_priv.frm ]] && return 0
    if [[ -e $MY_DATA ]] && [[ -n $(ls -A "$MY_DATA" 2>/dev/null) ]]; then
        die "$MY_DATA exists but holds no MariaDB data directory; remove it and rerun"
    fi
    log "mariadb-install-db $MY_DATA"
    mkdir -p "$MY_DATA"
    mariadb-install-db --no-defaults --datadir="$MY_DATA" "${MY_USER_OPT[@]}" \
        --auth-root-authentication-method=normal --skip-test-db >&2 9>&- \
        || die "mariadb-install-db failed"
    rm -f "$MY_SEED_HASH_FILE" "$MY_ARGS_FILE"
}

my_stop_server() {
    local pid i
    if ! my_running; then
        log "MariaDB ($MY_DATA) is not running"
        return 0
    fi
    pid=$(my_pid)
    log "stopping MariaDB ($MY_DATA)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 120; i++)); do
        my_alive "$pid" || return 0
        sleep 0.5
    done
    die "MariaDB (pid $pid) did not stop within 60 s; see $MY_LOG"
}

my_start_server() {
    local args=() pid="" i
    mapfile -t args < <(my_server_args)
    if my_running; then
        if [[ $(my_server_args) == "$(cat "$MY_ARGS_FILE" 2>/dev/null)" ]]; then
            log "MariaDB already running on $MY_HOST:$MY_PORT"
        else
            log "MariaDB options changed; restarting it"
            my_stop_server
        fi
    fi
    if ! my_running; then
        if (exec 3<>"/dev/tcp/$MY_HOST/$MY_PORT") 2>/dev/null; then
            die "something else is already listening on $MY_HOST:$MY_PORT"
        fi
        log "starting MariaDB on $MY_HOST:$MY_PORT (log: $MY_LOG)"
        my_server_args >"$MY_ARGS_FILE"
        # Own session, no inherited stdout (callers read ours to EOF) nor fd 9 (our lock).
        if command -v setsid >/dev/null 2>&1; then
            setsid "$MY_SERVER" "${args[@]}" </dev/null >>"$MY_LOG" 2>&1 9>&- &
        else
            nohup "$MY_SERVER" "${args[@]}" </dev/null >>"$MY_LOG" 2>&1 9>&- &
        fi
        pid=$!
    fi
    for ((i = 0; i < 120; i++)); do
        if my_ping; then return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && ! my_running; then
            tail -n 30 "$MY_LOG" >&2 || true
            die "MariaDB exited during startup; see $MY_LOG"
        fi
        sleep 0.5
    done
    tail -n 30 "$MY_LOG" >&2 || true
    die "MariaDB on $MY_SOCK did not answer within 60 s; see $MY_LOG"
}

my_setup_database() {
    local host sql=""
    # Anonymous accounts (if any) would match before ours for some clients.
    for host in $(my_admin -N -B -e "SELECT host FROM mysql.user WHERE user = ''"); do
        sql+="DROP USER IF EXISTS ''@'$host';"
    done
    sql+="CREATE DATABASE IF NOT EXISTS \`$MY_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
    for host in 127.0.0.1 localhost; do
        sql+="CREATE USER IF NOT EXISTS '$MY_READER'@'$host' IDENTIFIED BY '$MY_READER_PW';"
        sql+="ALTER USER '$MY_READER'@'$host' IDENTIFIED BY '$MY_READER_PW';"
        sql+="GRANT SELECT, SHOW VIEW ON \`$MY_DB\`.* TO '$MY_READER'@'$host';"
        sql+="GRANT ALL PRIVILEGES ON \`$MY_SCRATCH_PATTERN\`.* TO '$MY_READER'@'$host';"
        # Binary log capture: a replica's grants, and its own scratch tables.
        sql+="CREATE USER IF NOT EXISTS '$MY_CDC'@'$host' IDENTIFIED BY '$MY_READER_PW';"
        sql+="ALTER USER '$MY_CDC'@'$host' IDENTIFIED BY '$MY_READER_PW';"
        sql+="GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '$MY_CDC'@'$host';"
        sql+="GRANT SELECT, SHOW VIEW ON \`$MY_DB\`.* TO '$MY_CDC'@'$host';"
        sql+="GRANT ALL PRIVILEGES ON \`$MY_SCRATCH_PATTERN\`.* TO '$MY_CDC'@'$host';"
    done
    my_admin -e "$sql" >&2 || die "could not set up the MariaDB database and users"

    [[ -f $MY_SEED ]] || die "seed file not found: $MY_SEED"
    local want have="" present
    want=$(sha256sum "$MY_SEED" | cut -d' ' -f1)
    [[ -f $MY_SEED_HASH_FILE ]] && have=$(<"$MY_SEED_HASH_FILE")
    present=$(my_admin -N -B -e "SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema = '$MY_DB' AND table_name = 'all_types'")
    if [[ $want != "$have" || $present != 1 ]]; then
        log "loading $MY_SEED into MariaDB $MY_DB"
        rm -f "$MY_SEED_HASH_FILE"
        my_admin "$MY_DB" <"$MY_SEED" >&2 || die "loading $MY_SEED into MariaDB failed"
        printf '%s\n' "$want" >"$MY_SEED_HASH_FILE"
    else
        log "MariaDB fixtures up to date (seed sha256 $want)"
    fi

    [[ -f $MY_TYPES_SEED ]] || die "seed file not found: $MY_TYPES_SEED"
    sql="CREATE DATABASE IF NOT EXISTS \`$MY_TYPES_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
    for host in 127.0.0.1 localhost; do
        sql+="GRANT SELECT, SHOW VIEW ON \`$MY_TYPES_DB\`.* TO '$MY_READER'@'$host';"
        sql+="GRANT SELECT ON \`$MY_TYPES_DB\`.* TO '$MY_CDC'@'$host';"
    done
    my_admin -e "$sql" >&2 || die "could not set up the MariaDB every-type database"
    have=""
    want=$(sha256sum "$MY_TYPES_SEED" | cut -d' ' -f1)
    [[ -f $MY_TYPES_HASH_FILE ]] && have=$(<"$MY_TYPES_HASH_FILE")
    present=$(my_admin -N -B -e "SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema = '$MY_TYPES_DB' AND table_name = 'every_type'")
    if [[ $want != "$have" || $present != 1 ]]; then
        log "loading $MY_TYPES_SEED into MariaDB $MY_TYPES_DB"
        rm -f "$MY_TYPES_HASH_FILE"
        my_admin "$MY_TYPES_DB" <"$MY_TYPES_SEED" >&2 || die "loading $MY_TYPES_SEED into MariaDB failed"
        printf '%s\n' "$want" >"$MY_TYPES_HASH_FILE"
    else
        log "MariaDB every-type fixtures up to date (seed sha256 $want)"
    fi
}

# Reader tools the tests open Rivet's files with (pyarrow, DuckDB, polars), in a venv of
# our own; reinstalled only when the pinned list changes.
PY_READERS="pyarrow==26.0.1 duckdb==2.0.1 polars==2.1.0 PyMySQL==1.1.1 moto[server]==5.2.5 azure-storage-blob==12.31.1"
ensure_python_readers() {
    local venv="$ENV_DIR/py" stamp="$ENV_DIR/py/.rivet-readers"
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$PY_READERS" ]]; then
        return
    fi
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    log "installing reader tools into $venv: $PY_READERS"
    python3 -m venv "$venv" >&2 || { apt_install python3-venv && python3 -m venv "$venv" >&2; }
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet $PY_READERS >&2
    printf '%s' "$PY_READERS" > "$stamp"
}

# The MCP client the rivet-mcp tests drive the server with (tests/e2e/mcp.rs), in the
# same venv under a stamp of its own, so changing one list does not reinstall the other.
PY_MCP="mcp==2.3.0"
ensure_python_mcp() {
    local venv="$ENV_DIR/py" stamp="$ENV_DIR/py/.rivet-mcp"
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$PY_MCP" ]]; then
        return
    fi
    ensure_python_readers
    log "installing the MCP client into $venv: $PY_MCP"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet $PY_MCP >&2
    printf '%s' "$PY_MCP" > "$stamp"
}

# --- object-store emulators ----------------------------------------------------
# moto (S3 API) from the venv on 127.0.0.1:9311 with bucket rivet-test; Azurite (Blob
# API) from npm on 127.0.0.1:10000 with container rivet-test (well-known dev account).
S3_PORT=9311
S3_BUCKET=rivet-test
AZ_PORT=10000
AZ_CONTAINER=rivet-test
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZURITE_VERSION=3.37.0

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local port=$1 what=$2
    for _ in $(seq 1 100); do
        port_open "$port" && return 0
        sleep 0.2
    done
    die "$what did not start listening on 127.0.0.1:$port (see its log in $ENV_DIR)"
}

ensure_s3() {
    if ! port_open "$S3_PORT"; then
        log "starting moto (S3) on 127.0.0.1:$S3_PORT"
        nohup "$ENV_DIR/py/bin/python" -m moto.server -H 127.0.0.1 -p "$S3_PORT" \
            >"$ENV_DIR/moto.log" 2>&1 9>&- &
        echo $! > "$ENV_DIR/moto.pid"
        wait_port "$S3_PORT" moto
    fi
    # Buckets live in moto's memory: (re)create on every run; it is a no-op when present.
    "$ENV_DIR/py/bin/python" - "$S3_PORT" "$S3_BUCKET" <<'PY' >&2
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/{sys.argv[2]}", method="PUT")
try:
    urllib.request.urlopen(req).read()
except urllib.error.HTTPError as e:
    if e.code != 409:
        raise
PY
}

ensure_azurite() {
    local dir=$ENV_DIR/azurite
    if [[ ! -x $dir/node_modules/.bin/azurite-blob ]]; then
        command -v npm >/dev/null 2>&1 || apt_install nodejs npm
        log "installing Azurite $AZURITE_VERSION into $dir"
        mkdir -p "$dir"
        npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$AZURITE_VERSION" >&2
    fi
    if ! port_open "$AZ_PORT"; then
        log "starting Azurite (Blob) on 127.0.0.1:$AZ_PORT"
        mkdir -p "$dir/data"
        nohup "$dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" \
            --location "$dir/data" --loose --skipApiVersionCheck --silent \
            >"$ENV_DIR/azurite.log" 2>&1 9>&- &
        echo $! > "$ENV_DIR/azurite.pid"
        wait_port "$AZ_PORT" Azurite
    fi
    "$ENV_DIR/py/bin/python" - "$AZ_PORT" "$AZ_ACCOUNT" "$AZ_KEY" "$AZ_CONTAINER" <<'PY' >&2
import sys
from azure.storage.blob import BlobServiceClient
port, account, key, container = sys.argv[1:]
conn = (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{account};")
svc = BlobServiceClient.from_connection_string(conn)
try:
    svc.create_container(container)
except Exception as e:
    if "ContainerAlreadyExists" not in str(e):
        raise
PY
}

# pgBouncer refuses to run as root: as root it runs as `postgres`, like the cluster.
ensure_pgbouncer() {
    mkdir -p "$PGB_DIR"
    cat > "$PGB_DIR/pgbouncer.ini.new" <<EOF
[databases]
$PG_DB = host=$PG_HOST port=$PG_PORT dbname=$PG_DB
$PG_TYPES_DB = host=$PG_HOST port=$PG_PORT dbname=$PG_TYPES_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGB_DIR/userlist.txt
pool_mode = transaction
server_round_robin = 1
default_pool_size = 4
min_pool_size = 3
max_client_conn = 200
stats_users = $PG_READER
pidfile = $PGB_DIR/pgbouncer.pid
logfile = $PGB_DIR/pgbouncer.log
EOF
    printf '"%s" "%s"\n"%s" "%s"\n' "$PG_READER" "$PG_READER_PW" "$PG_CDC_USER" "$PG_READER_PW" \
        > "$PGB_DIR/userlist.txt"
    chmod 600 "$PGB_DIR/userlist.txt"
    if [[ $EUID -eq 0 ]]; then chown -R postgres "$PGB_DIR"; fi
    if port_open "$PGB_PORT" && cmp -s "$PGB_DIR/pgbouncer.ini.new" "$PGB_DIR/pgbouncer.ini"; then
        rm -f "$PGB_DIR/pgbouncer.ini.new"
        return 0
    fi
    mv "$PGB_DIR/pgbouncer.ini.new" "$PGB_DIR/pgbouncer.ini"
    if [[ -f $PGB_DIR/pgbouncer.pid ]]; then
        kill "$(cat "$PGB_DIR/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do port_open "$PGB_PORT" || break; sleep 0.1; done
    fi
    log "starting pgBouncer (transaction pooling) on 127.0.0.1:$PGB_PORT"
    "${AS_PG[@]}" /usr/sbin/pgbouncer -d "$PGB_DIR/pgbouncer.ini" >&2 9>&-
    wait_port "$PGB_PORT" pgBouncer
}

stop_emulators() {
    local f
    for f in "$ENV_DIR/moto.pid" "$ENV_DIR/azurite.pid" "$PGB_DIR/pgbouncer.pid"; do
        [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

print_env() {
    cat <<EOF
export RIVET_TEST_PG_URL='postgres://$PG_READER:$PG_READER_PW@$PG_HOST:$PG_PORT/$PG_DB'
export RIVET_TEST_PG_CDC_URL='postgres://$PG_CDC_USER:$PG_READER_PW@$PG_HOST:$PG_PORT/$PG_DB'
export RIVET_TEST_PGBOUNCER_URL='postgres://$PG_READER:$PG_READER_PW@$PG_HOST:$PGB_PORT/$PG_DB'
export RIVET_TEST_PGBOUNCER_CDC_URL='postgres://$PG_CDC_USER:$PG_READER_PW@$PG_HOST:$PGB_PORT/$PG_DB'
export RIVET_TEST_PG_ADMIN_URL='postgres://$PG_SUPERUSER:$PG_SUPERUSER_PW@$PG_HOST:$PG_PORT/$PG_DB'
export RIVET_TEST_PG_PASSWORD='$PG_READER_PW'
export RIVET_TEST_ENV_DIR='$ENV_DIR'
export RIVET_TEST_PYTHON='$ENV_DIR/py/bin/python'
export RIVET_TEST_PG_TLS_URL='postgres://$PG_TLS_USER:$PG_TLS_PW@$PG_HOST:$PG_PORT/$PG_DB'
export RIVET_TEST_PG_CA='$PG_CA'
export RIVET_TEST_MYSQL_URL='mysql://$MY_READER:$MY_READER_PW@$MY_HOST:$MY_PORT/$MY_DB'
export RIVET_TEST_MYSQL_CDC_URL='mysql://$MY_CDC:$MY_READER_PW@$MY_HOST:$MY_PORT/$MY_DB'
export RIVET_TEST_MYSQL_ADMIN_SOCKET='$MY_SOCK'
export RIVET_TEST_PG_TYPES_URL='postgres://$PG_READER:$PG_READER_PW@$PG_HOST:$PG_PORT/$PG_TYPES_DB'
export RIVET_TEST_MYSQL_TYPES_URL='mysql://$MY_READER:$MY_READER_PW@$MY_HOST:$MY_PORT/$MY_TYPES_DB'
export RIVET_TEST_MYSQL_PASSWORD='$MY_READER_PW'
export RIVET_TEST_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export RIVET_TEST_S3_BUCKET='$S3_BUCKET'
export RIVET_TEST_AZURE_ENDPOINT='http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT'
export RIVET_TEST_AZURE_ACCOUNT='$AZ_ACCOUNT'
export RIVET_TEST_AZURE_KEY='$AZ_KEY'
export RIVET_TEST_AZURE_CONTAINER='$AZ_CONTAINER'
EOF
}

take_lock() {
    # Serialise concurrent runs (e.g. two test processes starting at once).
    mkdir -p "$ENV_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$ENV_DIR/.lock"
        flock -w 300 9 || die "timed out waiting for $ENV_DIR/.lock"
    fi
}

main() {
    local cmd=${1:-start}
    case $cmd in start | up | stop | down) take_lock ;; esac
    case $cmd in
        start | up)
            ensure_packages
            ensure_dirs
            init_cluster
            ensure_tls
            start_cluster
            setup_database
            setup_types_database
            ensure_pgbouncer
            my_init_datadir
            my_start_server
            my_setup_database
            ensure_python_readers
            ensure_python_mcp
            ensure_s3
            ensure_azurite
            print_env
            ;;
        stop | down)
            stop_cluster
            my_stop_server
            stop_emulators
            ;;
        status)
            local rc=0
            if pg_running; then log "PostgreSQL running ($PG_DATA, $PG_HOST:$PG_PORT)"; else
                log "PostgreSQL not running ($PG_DATA)"; rc=3; fi
            if my_running; then log "MariaDB running ($MY_DATA, $MY_HOST:$MY_PORT)"; else
                log "MariaDB not running ($MY_DATA)"; rc=3; fi
            exit $rc
            ;;
        env)
            print_env
            ;;
        -h | --help | help)
            sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
            ;;
        *)
            die "unknown command '$cmd' (expected start, stop, status, env)"
            ;;
    esac
}

main "$@"
