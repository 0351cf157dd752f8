#!/usr/bin/env bash
# Make this machine's real servers ready for dts's integration tests (test/integration).
#
# Why this exists: the tests read change streams, and the servers' default settings do not
# produce any. PostgreSQL needs wal_level=logical, enough replication slots/WAL senders and a
# pg_hba rule that lets replication connections in; MariaDB needs its binlog switched on, in
# ROW format with FULL row images. Redis, RabbitMQ, Mosquitto and NATS (with JetStream) only
# need to be running. The machine has no systemd: every server is a plain daemon.
#
# Idempotent: installs only what is missing, rewrites a config file only when its content
# differs, restarts a server only when the live setting is wrong. A second run changes nothing.
#
# Usage (as root, Debian 12):  bash scripts/services.sh
# Prints one "ok" line per service on stdout; "FAIL <service>: ..." on stderr, then exit 1.

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

PG_WANT="max_replication_slots=32 max_wal_senders=32 wal_level=logical wal_sender_timeout=60000"

pg_sql() { psql -w -h "$HOST" -p 5432 -U postgres -d postgres -XAtqc "$1"; }

# Live values, in pg_settings units (ms for wal_sender_timeout), sorted by name like PG_WANT.
pg_settings_now() {
  pg_sql "select string_agg(name || '=' || setting, ' ' order by name) from pg_settings
          where name in ('wal_level','max_replication_slots','max_wal_senders','wal_sender_timeout')"
}

pg_replication_ok() {
  psql -w "host=$HOST port=5432 user=postgres dbname=postgres replication=database connect_timeout=5" \
    -XAtqc IDENTIFY_SYSTEM >/dev/null 2>&1
}

setup_postgres() {
  local ver etc log now
  ver=$(ls -v /etc/postgresql 2>/dev/null | tail -n 1) || true
  if [[ -z $ver || ! -d /etc/postgresql/$ver/main ]]; then
    fail postgres "no cluster under /etc/postgresql/<version>/main (is postgresql-15 installed?)"; return 0
  fi
  etc=/etc/postgresql/$ver/main
  log=/var/log/postgresql/postgresql-$ver-main.log

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
  pg_isready -q -h "$HOST" -p 5432 || ready=$?
  if ((ready != 0)); then
    if ((ready != 1)); then
      note postgres "not answering; starting cluster $ver/main"
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
    fi
    if ! wait_until 60 pg_isready -q -h "$HOST" -p 5432; then
      fail postgres "not accepting connections on $HOST:5432 after start; read $log"; return 0
    fi
  fi
  if ! pg_sql 'select 1' >/dev/null 2>&1; then
    fail postgres "server is up but 'psql -h $HOST -U postgres' is refused (tests expect trust auth); check $etc/pg_hba.conf"
    return 0
  fi

  # 3. Restart only when a live setting differs from what we want.
  now=$(pg_settings_now) || now=""
  if [[ $now != "$PG_WANT" ]]; then
    note postgres "restarting cluster $ver/main (live: ${now:-?})"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main restart >/dev/null 2>&1 || true
    if ! wait_until 60 pg_isready -q -h "$HOST" -p 5432; then
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

  # 4. Replication connections from 127.0.0.1. Logical ones (replication=database, what dts and
  #    pg_recvlogical use) match ordinary "host <db>" lines; physical ones need a "replication"
  #    line. If the real check is refused while normal connections are trust, add a trust line.
  if ! pg_replication_ok; then
    if grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]].*# dts$' "$etc/pg_hba.conf"; then
      fail postgres "replication connection from $HOST refused although $etc/pg_hba.conf has the dts line; read $log"
      return 0
    fi
    keep_original "$etc/pg_hba.conf"
    local rest
    rest=$(cat "$etc/pg_hba.conf")
    # Rewrite in place (keeps owner and mode); first matching line wins, so put ours on top.
    printf 'host    replication     all             %s/32            trust   # dts\n%s\n' "$HOST" "$rest" >"$etc/pg_hba.conf"
    note postgres "added 'host replication all $HOST/32 trust' to $etc/pg_hba.conf"
    if ! pg_sql 'select pg_reload_conf()' >/dev/null 2>&1 || ! wait_until 10 pg_replication_ok; then
      fail postgres "replication connection still refused after editing pg_hba.conf; read $log"; return 0
    fi
  fi

  ok postgres "$HOST:5432 (wal_level=logical, replication connections ok)"
}

# ---------------------------------------------------------------------------- MariaDB

MARIADB_LOG=/var/log/mysql/error.log
MARIADB_CNF_DIR=/etc/mysql/mariadb.conf.d

maria_alive() { mysqladmin -uroot -h"$HOST" --connect-timeout=2 ping >/dev/null 2>&1; }
maria_sql()   { mysql -uroot -h"$HOST" --connect-timeout=5 -NBe "$1"; }
maria_binlog() { maria_sql 'select @@log_bin, @@binlog_format, @@binlog_row_image' | tr '\t' ' '; }

maria_start() {
  install -d -o mysql -g mysql /run/mysqld || return 1
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || return 1
  wait_until 60 maria_alive
}

maria_stop() {
  mysqladmin -uroot shutdown 2>/dev/null || mysqladmin -uroot -h"$HOST" shutdown 2>/dev/null || true
  wait_until 60 bash -c '! pgrep -x mariadbd'
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
        fail mariadb "not answering on $HOST:3306 after start; read $MARIADB_LOG"; return 0
      fi
    fi
  fi
  if ! maria_sql 'select 1' >/dev/null 2>&1; then
    fail mariadb "root cannot log in over TCP $HOST:3306 with an empty password (tests need it): $(maria_sql 'select 1' 2>&1 | head -n 1)"
    return 0
  fi

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

  # 4. A binlog client can see a current position.
  local status
  status=$(maria_sql 'SHOW MASTER STATUS') || status=""
  if [[ -z $status ]]; then
    fail mariadb "SHOW MASTER STATUS returned no row; read $MARIADB_LOG"; return 0
  fi

  ok mariadb "$HOST:3306 (log_bin=ON binlog_format=ROW binlog_row_image=FULL, at ${status%%$'\t'*})"
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
