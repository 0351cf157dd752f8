#!/usr/bin/env bash
# Make this machine's real servers ready for dts's integration tests (test/integration).
#
# Why this exists: the tests read change streams, and the servers' default settings do not
# produce any. PostgreSQL needs wal_level=logical and enough replication slots/WAL senders;
# MariaDB needs its binlog switched on, in ROW format with FULL row images. Redis, RabbitMQ,
# Mosquitto and NATS (with JetStream) only need to be running. The tests log in over TCP on
# 127.0.0.1 without a password, as user postgres and as MariaDB's root, which Debian's defaults
# refuse (PostgreSQL asks for a scram-sha-256 password, MariaDB's root logs in only by
# unix_socket): this script lets exactly those logins in, from 127.0.0.1 only. The machine
# may have no systemd: every server is started as a plain daemon.
#
# Idempotent: installs only what is missing, rewrites a config file only when its content
# differs, touches logins only when the tests' login is refused, restarts a server only when a
# live setting is wrong, starts one only when it does not answer. A second run changes nothing.
#
# Usage (as root, Debian 12):  bash scripts/services.sh
# Prints one "ok" line per service on stdout; "FAIL <service>: ..." on stderr, then exit 1.
# Sourcing it defines the functions without running them (test/integration/services-script.test.ts
# runs them against scratch servers: a cluster of its own, a MariaDB data directory of its own).

set -Eeuo pipefail
trap 'echo "services.sh: unexpected failure at line $LINENO: $BASH_COMMAND" >&2' ERR

HOST=127.0.0.1
FAILURES=()

# ---------------------------------------------------------------------------- helpers

ok()   { printf 'ok   %-9s %s\n' "$1" "$2"; }
note() { printf '     %-9s %s\n' "$1" "$2"; }
fail() { printf 'FAIL %s: %s\n' "$1" "$2" >&2; FAILURES+=("$1"); }

# wait_until SECONDS COMMAND...: retry COMMAND (quietly) until it succeeds or time runs out.
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.5
  done
}

# tcp_open PORT: something accepts TCP connections on $HOST:PORT.
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# write_if_changed FILE CONTENT: succeeds (and says so) only when FILE was (re)written.
write_if_changed() {
  local file=$1 content=$2
  if [[ -f $file ]] && [[ "$(cat "$file")" == "$content" ]]; then return 1; fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file"
  note config "wrote $file"
}

# keep_original FILE: one backup of a distribution file before this script first edits it.
keep_original() { [[ -e $1.dts-orig ]] || cp -a "$1" "$1.dts-orig"; }

# ---------------------------------------------------------------------------- packages

install_missing() {
  # binary (name on PATH, or absolute path/glob) -> Debian package that provides it
  local checks=(
    "pg_ctlcluster postgresql-common"
    "/usr/lib/postgresql/*/bin/postgres postgresql-15"
    "psql postgresql-client-15"
    "pg_isready postgresql-client-15"
    "pg_recvlogical postgresql-client-15"
    "/usr/sbin/mariadbd mariadb-server"
    "mysql mariadb-client"
    "mysqladmin mariadb-client"
    "redis-server redis-server"
    "redis-cli redis-tools"
    "rabbitmq-server rabbitmq-server"
    "rabbitmq-diagnostics rabbitmq-server"
    "mosquitto mosquitto"
    "/usr/sbin/nats-server nats-server"
  )
  local entry bin pkg missing=()
  for entry in "${checks[@]}"; do
    read -r bin pkg <<<"$entry"
    if [[ $bin == /* ]]; then
      # shellcheck disable=SC2086  # the glob is meant to expand
      if compgen -G "$bin" >/dev/null; then continue; fi
    elif command -v "$bin" >/dev/null 2>&1 || [[ -x /usr/sbin/$bin ]]; then
      continue
    fi
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then return 0; fi

  note install "${missing[*]}"
  if ! apt-get update -q >/tmp/dts-services-apt.log 2>&1 ||
     ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>/tmp/dts-services-apt.log 2>&1; then
    fail packages "apt-get install ${missing[*]} failed; read /tmp/dts-services-apt.log"
  fi
}

# ---------------------------------------------------------------------------- PostgreSQL

PG_CLUSTER=main    # Debian's cluster name (pg_lsclusters); the script's test sets another
PG_PORT=5432
PG_WANT="max_replication_slots=32 max_wal_senders=32 wal_level=logical wal_sender_timeout=60000"

pg_sql() { psql -w -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -XAtqc "$1"; }

# Live values, in pg_settings units (ms for wal_sender_timeout), sorted by name like PG_WANT.
pg_settings_now() {
  pg_sql "select string_agg(name || '=' || setting, ' ' order by name) from pg_settings
          where name in ('wal_level','max_replication_slots','max_wal_senders','wal_sender_timeout')"
}

pg_replication_ok() {
  psql -w "host=$HOST port=$PG_PORT user=postgres dbname=postgres replication=database connect_timeout=5" \
    -XAtqc IDENTIFY_SYSTEM >/dev/null 2>&1
}

# The logins the tests make: a plain one and a logical replication one, over TCP, no password.
pg_logins_ok() { pg_sql 'select 1' >/dev/null 2>&1 && pg_replication_ok; }

# What this script puts at the top of pg_hba.conf (the first matching line wins): trust from
# 127.0.0.1 only, for every database and for replication. Lines ending in "# dts" are ours.
pg_hba_block() {
  printf '%s\n' \
    "# added by dts scripts/services.sh: the tests log in over TCP from 127.0.0.1 without a password" \
    "host    all             all             $HOST/32            trust   # dts" \
    "host    replication     all             $HOST/32            trust   # dts"
}

setup_postgres() {
  local ver etc log now
  ver=$(ls -v /etc/postgresql 2>/dev/null | tail -n 1) || true
  if [[ -z $ver || ! -d /etc/postgresql/$ver/$PG_CLUSTER ]]; then
    fail postgres "no cluster under /etc/postgresql/<version>/$PG_CLUSTER (is postgresql-15 installed?)"; return 0
  fi
  etc=/etc/postgresql/$ver/$PG_CLUSTER
  log=/var/log/postgresql/postgresql-$ver-$PG_CLUSTER.log

  # 1. Settings for logical decoding, in conf.d (Debian's postgresql.conf has include_dir = 'conf.d').
  if ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'conf\.d'" "$etc/postgresql.conf"; then
    keep_original "$etc/postgresql.conf"
    printf "\ninclude_dir = 'conf.d'\t# added by dts scripts/services.sh\n" >>"$etc/postgresql.conf"
    note postgres "added include_dir = 'conf.d' to $etc/postgresql.conf"
  fi
  write_if_changed "$etc/conf.d/dts.conf" "# dts integration tests (scripts/services.sh): logical replication
wal_level = logical
max_replication_slots = 32
max_wal_senders = 32
wal_sender_timeout = 60s" || true

  # 2. Running? pg_isready: 0 accepting, 1 starting up / rejecting, 2 no answer.
  local ready=0
  pg_isready -q -h "$HOST" -p "$PG_PORT" || ready=$?
  if ((ready != 0)); then
    if ((ready != 1)); then
      note postgres "not answering; starting cluster $ver/$PG_CLUSTER"
      pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" start >/dev/null 2>&1 || true
    fi
    if ! wait_until 60 pg_isready -q -h "$HOST" -p "$PG_PORT"; then
      fail postgres "not accepting connections on $HOST:$PG_PORT after start; read $log"; return 0
    fi
  fi

  # 3. The tests' logins. Refused (Debian asks for a scram-sha-256 password on 127.0.0.1): put
  #    our trust lines on top of pg_hba.conf, any earlier copy of them removed, and reload
  #    (a reload keeps every connection; no restart).
  if ! pg_logins_ok; then
    local hba=$etc/pg_hba.conf rest
    if [[ "$(head -n 3 "$hba")" == "$(pg_hba_block)" ]]; then
      fail postgres "'psql -h $HOST -p $PG_PORT -U postgres' (or its replication=database login) is refused although $hba starts with the dts trust lines; read $log"
      return 0
    fi
    keep_original "$hba"
    rest=$(grep -v -e '# dts$' -e '^# added by dts scripts/services.sh' "$hba") || true
    # Rewritten in place, so the file keeps its owner and mode.
    { pg_hba_block; printf '%s\n' "$rest"; } >"$hba"
    note postgres "added trust for $HOST/32 (all databases, replication) at the top of $hba; reloading"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" reload >/dev/null 2>&1 || true
    if ! wait_until 10 pg_logins_ok; then
      fail postgres "'psql -h $HOST -p $PG_PORT -U postgres' still refused after the reload; read $log"; return 0
    fi
  fi

  # 4. Restart only when a live setting differs from what we want.
  now=$(pg_settings_now) || now=""
  if [[ $now != "$PG_WANT" ]]; then
    note postgres "restarting cluster $ver/$PG_CLUSTER (live: ${now:-?})"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" restart >/dev/null 2>&1 || true
    if ! wait_until 60 pg_isready -q -h "$HOST" -p "$PG_PORT"; then
      fail postgres "did not come back after restart; read $log"; return 0
    fi
    now=$(pg_settings_now) || now=""
    if [[ $now != "$PG_WANT" ]]; then
      local src
      src=$(pg_sql "select string_agg(name || '=' || setting || ' from ' || coalesce(sourcefile, source), '; ')
                    from pg_settings where name in ('wal_level','max_replication_slots','max_wal_senders','wal_sender_timeout')") || true
      fail postgres "settings still wrong after restart: $src (something overrides $etc/conf.d/dts.conf, e.g. postgresql.auto.conf)"
      return 0
    fi
  fi

  ok postgres "$HOST:$PG_PORT (wal_level=logical, trust and replication logins ok)"
}

# ---------------------------------------------------------------------------- MariaDB

MARIADB_LOG=/var/log/mysql/error.log
MARIADB_CNF_DIR=/etc/mysql/mariadb.conf.d
MARIADB_PORT=3306
MARIADB_SOCKET=/run/mysqld/mysqld.sock

# mysqladmin ping succeeds whenever the server answers, even when it refuses the login.
maria_alive() { mysqladmin -uroot -h"$HOST" -P"$MARIADB_PORT" --connect-timeout=2 ping >/dev/null 2>&1; }
# As the tests log in: root, TCP, no password.
maria_sql()   { mysql -uroot -h"$HOST" -P"$MARIADB_PORT" --connect-timeout=5 -NBe "$1"; }
# As Debian's root logs in: OS root on the socket (unix_socket).
maria_socket_sql() { mysql -uroot --protocol=socket -S"$MARIADB_SOCKET" --connect-timeout=5 -NBe "$1"; }
maria_binlog() { maria_sql 'select @@log_bin, @@binlog_format, @@binlog_row_image' | tr '\t' ' '; }

maria_start() {
  install -d -o mysql -g mysql /run/mysqld || return 1
  # --user: Debian's own config does not name the user, and mariadbd refuses to run as root.
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || return 1
  wait_until 60 maria_alive
}

maria_stop() {
  mysqladmin -uroot -S"$MARIADB_SOCKET" shutdown 2>/dev/null || mysqladmin -uroot -h"$HOST" -P"$MARIADB_PORT" shutdown 2>/dev/null || true
  wait_until 60 bash -c '! pgrep -x mariadbd'
}

# Root over TCP from 127.0.0.1 without a password, as the tests log in. Debian's root@localhost
# takes unix_socket only (its native password is 'invalid'), so over TCP it is refused. Over
# the socket, as OS root, we let root@localhost also take an empty native password, and add
# root@127.0.0.1 with one: which of the two a TCP login from 127.0.0.1 matches depends on
# whether the server resolves host names (skip-name-resolve), so both must let it in. The
# server binds 127.0.0.1 (Debian's bind-address), so this opens nothing to other hosts.
maria_root_over_tcp() {
  if maria_sql 'select 1' >/dev/null 2>&1; then return 0; fi
  note mariadb "root is refused over TCP $HOST:$MARIADB_PORT; letting it in without a password, from $HOST only"
  local out
  if ! out=$(maria_socket_sql "ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
      CREATE USER IF NOT EXISTS 'root'@'$HOST' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'$HOST' WITH GRANT OPTION;" 2>&1); then
    fail mariadb "could not change root's login over the socket $MARIADB_SOCKET as OS root: ${out:-no message}"; return 1
  fi
  if ! out=$(maria_sql 'select 1' 2>&1); then
    fail mariadb "root still cannot log in over TCP $HOST:$MARIADB_PORT with an empty password: ${out%%$'\n'*}"; return 1
  fi
}

setup_mariadb() {
  # 1. Binlog settings. Debian's my.cnf includes mariadb.conf.d; this machine's trimmed one may not.
  local my_cnf=/etc/mysql/my.cnf
  if [[ -f $my_cnf ]] && ! grep -Eq "^[[:space:]]*!includedir[[:space:]]+$MARIADB_CNF_DIR/?[[:space:]]*$" "$my_cnf"; then
    keep_original "$my_cnf"
    printf '\n# added by dts scripts/services.sh\n!includedir %s/\n' "$MARIADB_CNF_DIR" >>"$my_cnf"
    note mariadb "added '!includedir $MARIADB_CNF_DIR/' to $my_cnf"
  fi
  write_if_changed "$MARIADB_CNF_DIR/60-dts.cnf" "# dts integration tests (scripts/services.sh): binlog for change data capture
[mysqld]
server_id        = 1
log_bin          = mysql-bin
binlog_format    = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
expire_logs_days = 2" || true
  if ! mariadbd --print-defaults 2>/dev/null | grep -q -- '--binlog_format=ROW'; then
    fail mariadb "mariadbd does not read $MARIADB_CNF_DIR/60-dts.cnf (see 'mariadbd --print-defaults')"; return 0
  fi

  # 2. Running?
  if ! maria_alive; then
    if pgrep -x mariadbd >/dev/null && wait_until 30 maria_alive; then
      :  # was still starting up
    else
      note mariadb "not answering; starting mariadbd"
      if ! maria_start; then
        fail mariadb "not answering on $HOST:$MARIADB_PORT after start; read $MARIADB_LOG"; return 0
      fi
    fi
  fi
  maria_root_over_tcp || return 0

  # 3. Restart only when the live binlog settings are wrong.
  local now
  now=$(maria_binlog) || now=""
  if [[ $now != "1 ROW FULL" ]]; then
    note mariadb "restarting mariadbd (live log_bin/binlog_format/binlog_row_image: ${now:-?})"
    if ! maria_stop; then
      fail mariadb "mariadbd did not stop after 'mysqladmin shutdown'; read $MARIADB_LOG"; return 0
    fi
    if ! maria_start; then
      fail mariadb "did not come back after restart; read $MARIADB_LOG"; return 0
    fi
    now=$(maria_binlog) || now=""
    if [[ $now != "1 ROW FULL" ]]; then
      fail mariadb "binlog settings still '$now' after restart (want '1 ROW FULL'); read $MARIADB_LOG"; return 0
    fi
  fi

  # binlog_row_metadata is dynamic: set it live rather than restarting for it (the file above
  # keeps it across restarts). Without FULL, row images carry no column names (mysql source).
  if [[ $(maria_sql 'select @@binlog_row_metadata') != FULL ]]; then
    maria_sql 'SET GLOBAL binlog_row_metadata = FULL' || { fail mariadb "could not SET GLOBAL binlog_row_metadata = FULL"; return 0; }
    note mariadb "set binlog_row_metadata = FULL (live)"
  fi

  # 4. A binlog client can see a current position.
  local status
  status=$(maria_sql 'SHOW MASTER STATUS') || status=""
  if [[ -z $status ]]; then
    fail mariadb "SHOW MASTER STATUS returned no row; read $MARIADB_LOG"; return 0
  fi

  ok mariadb "$HOST:$MARIADB_PORT (log_bin=ON binlog_format=ROW binlog_row_image=FULL binlog_row_metadata=FULL, at ${status%%$'\t'*})"
}

# ---------------------------------------------------------------------------- the others

redis_ok() { [[ $(redis-cli -h "$HOST" -p 6379 ping 2>/dev/null) == PONG ]]; }

setup_redis() {
  if ! redis_ok; then
    note redis "not answering; starting redis-server"
    install -d /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
    if ! wait_until 20 redis_ok; then
      fail redis "no PONG on $HOST:6379; read /var/log/redis/ci.log"; return 0
    fi
  fi
  ok redis "$HOST:6379"
}

setup_rabbitmq() {
  if ! tcp_open 5672; then
    note rabbitmq "not answering; starting rabbitmq-server (takes ~20 s)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    if ! wait_until 90 tcp_open 5672; then
      fail rabbitmq "nothing on $HOST:5672; read /var/log/rabbitmq/rabbit@*.log"; return 0
    fi
  fi
  ok rabbitmq "$HOST:5672"
}

setup_mosquitto() {
  if ! tcp_open 1883; then
    note mosquitto "not answering; starting mosquitto"
    # Debian's mosquitto.conf writes its pid file there; /run starts empty after a reboot.
    if id -u mosquitto >/dev/null 2>&1; then install -d -o mosquitto -g mosquitto /run/mosquitto; fi
    mosquitto -d -c /etc/mosquitto/mosquitto.conf >/dev/null 2>&1 || true
    if ! wait_until 20 tcp_open 1883; then
      fail mosquitto "nothing on $HOST:1883; read /var/log/mosquitto/mosquitto.log"; return 0
    fi
  fi
  ok mosquitto "$HOST:1883"
}

setup_nats() {
  if ! tcp_open 4222; then
    note nats "not answering; starting nats-server (JetStream)"
    install -d /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log >/dev/null 2>&1 || true
    if ! wait_until 20 tcp_open 4222; then
      fail nats "nothing on $HOST:4222; read /var/log/nats-server.log"; return 0
    fi
  fi
  ok nats "$HOST:4222 (JetStream)"
}

# ---------------------------------------------------------------------------- main

main() {
  if ((EUID != 0)); then
    echo "services.sh: run as root (it installs packages, edits server configs, starts daemons)" >&2
    exit 1
  fi

  install_missing
  setup_postgres
  setup_mariadb
  setup_redis
  setup_rabbitmq
  setup_mosquitto
  setup_nats
  # Kafka: a KRaft broker from Maven Central's jars, all its logic in scripts/kafka.sh.
  bash "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" start || FAILURES+=(kafka)

  if ((${#FAILURES[@]} > 0)); then
    echo "services.sh: not ready: ${FAILURES[*]}" >&2
    exit 1
  fi
}

# Run, unless sourced (then only the functions and settings above are defined).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
