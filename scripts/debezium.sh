#!/usr/bin/env bash
# Debezium's PostgreSQL connector in a Kafka Connect standalone worker: the peer that dts's
# interop test and benchmark run side by side with dts. A test and benchmark tool only, never
# a dependency of dts.
#
# The jars (Kafka Connect 4.3 + Debezium 3.6.1.Final, scripts/kafka/connect/pom.xml, ~50 MB)
# are fetched on first use into $CACHE/connect-libs (see scripts/kafka.sh for CACHE), not by
# scripts/services.sh: only the tests and benchmarks that start Debezium need them.
#
# Each worker NAME lives in its own folder, ${TMPDIR:-/tmp}/dts-debezium-NAME: worker and
# connector properties, offsets.dat (file offset storage), connect.log, connect.pid. Its
# records use the JSON converter with schemas disabled, so a message's key is the row's key
# as JSON and its value the plain Debezium envelope {before, after, source, op, ts_ms, ...}.
# Topics are PREFIX.SCHEMA.TABLE on the broker of scripts/kafka.sh (127.0.0.1:9092), which
# must be running. The REST listener takes a free port (printed, and in the folder's rest.url).
#
# Usage:
#   bash scripts/debezium.sh start NAME --database DB --topic-prefix PREFIX
#        [--slot SLOT] [--publication PUB] [--tables public.a,public.b]
#        [--snapshot-mode initial|no_data|...] [--drop-slot-on-stop] [--set KEY=VALUE]...
#     Starts the worker and waits until the connector's task runs (snapshot under way).
#     Defaults: slot and publication dts_dbz_NAME (created by Debezium; the publication for
#     --tables only, else for all tables), snapshot mode initial. --set adds or overrides any
#     connector property, e.g. --set decimal.handling.mode=string.
#   bash scripts/debezium.sh status NAME     the connector's REST status (JSON)
#   bash scripts/debezium.sh stop NAME [--keep]
#     Stops the worker (Connect commits its offsets on the way out) and removes its folder
#     unless --keep. The replication slot stays unless --drop-slot-on-stop was given at start:
#     drop it (or the database) yourself.
#   bash scripts/debezium.sh fetch           only fetch the jars
# PostgreSQL: 127.0.0.1:5432, user postgres, no password, unless DTS_TEST_PG_HOST /
# DTS_TEST_PG_PORT / DTS_TEST_PG_USER / DTS_TEST_PG_PASSWORD say otherwise (as in the tests).
# Heap: DTS_DEBEZIUM_HEAP (default -Xmx512m -Xms64m).

set -Euo pipefail
# shellcheck source=scripts/kafka.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka.sh"

DBZ_HEAP=${DTS_DEBEZIUM_HEAP:--Xmx512m -Xms64m}

die() { printf 'debezium: %s\n' "$1" >&2; exit 1; }

dbz_fetch() {
  mkdir -p "$KAFKA_CACHE"
  # Two tests fetching at once would both download; the second waits and finds the jars.
  exec 8>"$KAFKA_CACHE/.connect-fetch.lock"
  flock -w 600 8 || die "another fetch holds $KAFKA_CACHE/.connect-fetch.lock for 10 minutes"
  kafka_fetch connect-libs "$KAFKA_SCRIPTS/kafka/connect/pom.xml" >&2 || exit 1
  exec 8>&-
}

dbz_dir() {
  [[ $1 =~ ^[A-Za-z0-9_-]+$ ]] || die "worker name '$1' must be letters, digits, _ or - (it names a folder, a slot and a publication)"
  echo "${TMPDIR:-/tmp}/dts-debezium-$1"
}

dbz_pid() {
  local dir=$1 pid
  pid=$(cat "$dir/connect.pid" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ConnectStandalone $dir/worker.properties" &&
    echo "$pid"
}

# The connector's status from the REST API, or nothing while the worker has no listener yet.
dbz_status_json() {
  local dir=$1 name=$2 url
  url=$(cat "$dir/rest.url" 2>/dev/null) || return 1
  curl -fsS --max-time 5 "$url/connectors/$name/status" 2>/dev/null
}

# The log's first errors and their causes: in standalone mode a connector whose configuration
# or database check fails stops the whole worker, and the reason is buried in its log.
dbz_errors() {
  local dir=$1
  { grep -E '(ERROR|Caused by|Exception:|FATAL)' "$dir/connect.log" 2>/dev/null | cut -c1-300 | head -n 8
    tail -n 3 "$dir/connect.out" 2>/dev/null; } | sed 's/^/       | /' >&2
}

dbz_start() {
  local name=$1; shift
  local dir database="" prefix="" slot="" publication="" tables="" snapshot=initial drop_slot=false
  local -a extra=()
  dir=$(dbz_dir "$name")
  while (($#)); do
    case $1 in
      --database) database=$2; shift 2 ;;
      --topic-prefix) prefix=$2; shift 2 ;;
      --slot) slot=$2; shift 2 ;;
      --publication) publication=$2; shift 2 ;;
      --tables) tables=$2; shift 2 ;;
      --snapshot-mode) snapshot=$2; shift 2 ;;
      --drop-slot-on-stop) drop_slot=true; shift ;;
      --set) [[ $2 == *=* ]] || die "--set wants KEY=VALUE, got '$2'"; extra+=("$2"); shift 2 ;;
      *) die "start: unknown option '$1' (see the header of scripts/debezium.sh)" ;;
    esac
  done
  [[ -n $database ]] || die "start $name: --database is required"
  [[ -n $prefix ]] || die "start $name: --topic-prefix is required"
  local lower=${name,,}
  slot=${slot:-dts_dbz_${lower//-/_}}
  publication=${publication:-dts_dbz_${lower//-/_}}
  if dbz_pid "$dir" >/dev/null; then die "worker $name already runs (folder $dir); stop it first"; fi

  dbz_fetch
  local probe
  probe=$(kafka_probe) || die "the Kafka broker at $KAFKA_BOOTSTRAP does not answer ($probe); run: bash scripts/kafka.sh"

  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/worker.properties" <<EOF
# Kafka Connect standalone worker for Debezium, written by scripts/debezium.sh.
bootstrap.servers=$KAFKA_BOOTSTRAP
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
offset.storage.file.filename=$dir/offsets.dat
offset.flush.interval.ms=1000
# Port 0: the system picks a free one, so workers for several tests never collide.
listeners=http://127.0.0.1:0
# Everything is on the class path (no plugin.path isolation); service_load finds the
# connectors and converters by their ServiceLoader manifests instead of scanning every jar.
plugin.discovery=service_load
EOF
  {
    echo "# Debezium PostgreSQL connector, written by scripts/debezium.sh."
    echo "name=$name"
    echo "connector.class=io.debezium.connector.postgresql.PostgresConnector"
    echo "tasks.max=1"
    echo "plugin.name=pgoutput"
    echo "database.hostname=${DTS_TEST_PG_HOST:-127.0.0.1}"
    echo "database.port=${DTS_TEST_PG_PORT:-5432}"
    echo "database.user=${DTS_TEST_PG_USER:-postgres}"
    echo "database.password=${DTS_TEST_PG_PASSWORD:-}"
    echo "database.dbname=$database"
    echo "topic.prefix=$prefix"
    echo "slot.name=$slot"
    echo "slot.drop.on.stop=$drop_slot"
    echo "publication.name=$publication"
    if [[ -n $tables ]]; then
      echo "table.include.list=$tables"
      echo "publication.autocreate.mode=filtered"
    else
      echo "publication.autocreate.mode=all_tables"
    fi
    echo "snapshot.mode=$snapshot"
    local kv
    for kv in "${extra[@]}"; do echo "$kv"; done
  } >"$dir/connector.properties"

  local started=$SECONDS pid
  setsid bash -c 'echo $$ >"$1/connect.pid"; shift; exec "$@"' _ "$dir" \
    java $DBZ_HEAP $KAFKA_JVM_OPTS \
    -Ddts.log.file="$dir/connect.log" \
    -Dlog4j2.configurationFile="$KAFKA_SCRIPTS/kafka/log4j2.properties" \
    -cp "$KAFKA_CACHE/connect-libs/*" org.apache.kafka.connect.cli.ConnectStandalone \
    "$dir/worker.properties" "$dir/connector.properties" \
    </dev/null >"$dir/connect.out" 2>&1 &
  for _ in $(seq 50); do
    pid=$(cat "$dir/connect.pid" 2>/dev/null) && [[ -n $pid ]] && break
    sleep 0.1
  done

  # Wait for the REST listener (its port is in the log), then for the task to run.
  local deadline=$((SECONDS + 120)) url="" status="" state
  while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "debezium: worker $name (pid $pid) exited at start; read $dir/connect.log" >&2
      dbz_errors "$dir"
      exit 1
    fi
    if [[ -z $url ]]; then
      url=$(grep -o 'REST server listening at http://[0-9.:]*' "$dir/connect.log" 2>/dev/null | head -n 1 | cut -d' ' -f5)
      [[ -n $url ]] && echo "${url%/}" >"$dir/rest.url"
    fi
    if [[ -n $url ]] && status=$(dbz_status_json "$dir" "$name"); then
      state=$(node -e 'const s=JSON.parse(process.argv[1]); console.log(s.connector.state + " " + (s.tasks[0]?.state ?? "NONE"))' "$status")
      case $state in
        "RUNNING RUNNING") break ;;
        *FAILED*)
          echo "debezium: connector $name failed ($state); read $dir/connect.log" >&2
          node -e 'const s=JSON.parse(process.argv[1]); for (const t of [s.connector, ...s.tasks]) if (t.trace) console.error(t.trace.split("\n").slice(0, 8).join("\n"))' "$status"
          dbz_stop "$name" --keep >/dev/null
          exit 1 ;;
      esac
    fi
    if ((SECONDS >= deadline)); then
      echo "debezium: connector $name not running after 120 s (status: ${status:-no REST answer}); read $dir/connect.log" >&2
      dbz_stop "$name" --keep >/dev/null
      exit 1
    fi
    sleep 0.5
  done
  echo "debezium $name: running (pid $pid, REST $(cat "$dir/rest.url"), slot $slot, publication $publication, topics $prefix.*, started in $((SECONDS - started)) s, folder $dir)"
}

dbz_stop() {
  local name=$1 keep=false dir pid deadline
  [[ ${2:-} == --keep ]] && keep=true
  dir=$(dbz_dir "$name")
  if pid=$(dbz_pid "$dir"); then
    kill "$pid" 2>/dev/null
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then kill -9 "$pid" 2>/dev/null; break; fi
      sleep 0.3
    done
    echo "debezium $name: stopped pid $pid"
  else
    echo "debezium $name: not running"
  fi
  if [[ $keep == false ]]; then rm -rf "$dir"; fi
}

case ${1:-} in
  fetch) dbz_fetch ;;
  start) [[ -n ${2:-} ]] || die "usage: start NAME --database DB --topic-prefix PREFIX [...]"; dbz_start "${@:2}" ;;
  stop) [[ -n ${2:-} ]] || die "usage: stop NAME [--keep]"; dbz_stop "${@:2}" ;;
  status)
    [[ -n ${2:-} ]] || die "usage: status NAME"
    dbz_status_json "$(dbz_dir "$2")" "$2" || die "worker $2 has no REST answer (not running?)"; echo ;;
  *) echo "usage: bash scripts/debezium.sh fetch | start NAME --database DB --topic-prefix PREFIX [...] | status NAME | stop NAME [--keep]" >&2; exit 2 ;;
esac
