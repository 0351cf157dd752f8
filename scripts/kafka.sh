#!/usr/bin/env bash
# A real Apache Kafka broker for dts's tests and benchmarks, from Maven Central's jars.
#
# Why jars and not a package: Debian has no Kafka, and the distribution tarball is only a thin
# shell wrapper around `java -cp 'libs/*' kafka.Kafka server.properties`. So this script asks
# Maven for kafka_2.13 and its run-time dependencies (scripts/kafka/pom.xml) and runs that
# command itself: one KRaft node that is both broker and controller (no ZooKeeper).
#
#   jars      $CACHE/broker-libs   (CACHE = /var/cache/dts/kafka as root, else ~/.cache/dts/kafka;
#                                   fetched again only when scripts/kafka/pom.xml changes)
#   state     $STATE               (STATE = /var/lib/dts/kafka as root, else ~/.local/state/dts/kafka):
#             server.properties, log4j2.properties, data/ (KRaft metadata and topics,
#             formatted once), broker.pid, broker.log (capped at 3 x 20 MB), broker.out (JVM
#             stdout/stderr: crashes)
#   listener  PLAINTEXT 127.0.0.1:9092, controller 127.0.0.1:9093
#   topics    auto-created on first use with 3 partitions; every replication factor and
#             min ISR is 1 (one node); kept 24 h.
#
# Idempotent like scripts/services.sh, which calls `bash scripts/kafka.sh` after its other
# servers: a fast no-op when the broker is up with the current settings, a start when its
# process died, a restart when this script's broker settings or jars changed. Before saying
# "ok" it checks that the broker serves metadata (scripts/kafka/probe.mjs, a kafkajs admin
# client: run `npm ci` first), not just that the port is open. Concurrent callers wait on a lock.
#
# Usage:  bash scripts/kafka.sh [start]   ensure the broker runs; "ok   kafka ..." or "FAIL kafka: ..."
#         bash scripts/kafka.sh status    probe only (exit 1 when not serving)
#         bash scripts/kafka.sh stop      stop the broker (shared: only when nobody else uses it)
#         bash scripts/kafka.sh fetch     only fetch the jars
# Sourcing it (scripts/debezium.sh does) defines the kafka_* functions and runs nothing.
# Overrides: DTS_KAFKA_CACHE, DTS_KAFKA_STATE, DTS_KAFKA_HEAP (default -Xmx512m -Xms128m).

KAFKA_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ((EUID == 0)); then
  KAFKA_CACHE=${DTS_KAFKA_CACHE:-/var/cache/dts/kafka}
  KAFKA_STATE=${DTS_KAFKA_STATE:-/var/lib/dts/kafka}
else
  KAFKA_CACHE=${DTS_KAFKA_CACHE:-$HOME/.cache/dts/kafka}
  KAFKA_STATE=${DTS_KAFKA_STATE:-$HOME/.local/state/dts/kafka}
fi
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
KAFKA_HEAP=${DTS_KAFKA_HEAP:--Xmx512m -Xms128m}
# What bin/kafka-run-class.sh passes (KAFKA_JVM_PERFORMANCE_OPTS), minus the heap it sets.
KAFKA_JVM_OPTS="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"

# ---------------------------------------------------------------------------- output

kafka_ok()   { printf 'ok   %-9s %s\n' kafka "$1"; }
kafka_note() { printf '     %-9s %s\n' kafka "$1"; }
kafka_fail() { printf 'FAIL kafka: %s\n' "$1" >&2; }

# kafka_tail FILE: its last lines, indented, for a failure message.
kafka_tail() { [[ -s $1 ]] && tail -n "${2:-15}" "$1" | sed 's/^/       | /' >&2; return 0; }

# ---------------------------------------------------------------------------- jars

# Content only, not paths: every checkout of the repository (main, worktrees) must agree, or
# each would fetch again and restart the shared broker.
kafka_sha() { cat "$@" | sha256sum | cut -c1-16; }

# kafka_fetch NAME POM: $KAFKA_CACHE/NAME holds POM's run-time jars; Maven runs only when the
# folder is missing or was filled from a different POM. Fills a temporary folder first, so an
# interrupted download never leaves a half folder that looks complete.
kafka_fetch() {
  local name=$1 pom=$2 dir=$KAFKA_CACHE/$1 want tmp started log
  want=$(kafka_sha "$pom")
  if [[ -f $dir/.pom-sha && $(cat "$dir/.pom-sha") == "$want" ]]; then return 0; fi
  for tool in java mvn; do
    if ! command -v "$tool" >/dev/null; then
      kafka_fail "'$tool' is not installed (needs Java 17+ and Maven: apt-get install openjdk-17-jdk-headless maven)"
      return 1
    fi
  done
  mkdir -p "$KAFKA_CACHE"
  tmp=$(mktemp -d "$KAFKA_CACHE/.$name.XXXXXX")
  log=$KAFKA_CACHE/$name.fetch.log
  started=$SECONDS
  kafka_note "fetching $name jars from Maven Central ($(basename "$(dirname "$pom")")/$(basename "$pom"))"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$log" 2>&1; then
    rm -rf "$tmp"
    kafka_fail "mvn could not fetch the jars of $pom; read $log"
    kafka_tail "$log"
    return 1
  fi
  echo "$want" >"$tmp/.pom-sha"
  rm -rf "$dir" && mv "$tmp" "$dir"
  kafka_note "$name: $(find "$dir" -name '*.jar' | wc -l) jars, $(du -sh "$dir" | cut -f1) in $((SECONDS - started)) s -> $dir"
}

kafka_version() {
  local jar
  jar=$(find "$KAFKA_CACHE/broker-libs" -name 'kafka_2.13-*.jar' | head -n 1)
  jar=${jar##*/kafka_2.13-}
  echo "${jar%.jar}"
}

# ---------------------------------------------------------------------------- probe

# kafka_probe [SECONDS]: prints "cluster ..., N broker(s), M topic(s)" when the broker serves
# metadata (scripts/kafka/probe.mjs, a kafkajs admin client); retries until SECONDS (default:
# one try) have passed, or until the process KAFKA_WAIT_PID (if set) has exited.
kafka_probe() {
  local wait=${1:-0} out deadline
  if ! command -v node >/dev/null; then echo "node is not installed (the probe uses kafkajs)"; return 1; fi
  if [[ ! -d $KAFKA_SCRIPTS/../node_modules/kafkajs ]]; then
    echo "kafkajs is missing from $(cd "$KAFKA_SCRIPTS/.." && pwd)/node_modules (the probe uses it); run: npm ci"
    return 1
  fi
  deadline=$((SECONDS + wait))
  while true; do
    if out=$(node "$KAFKA_SCRIPTS/kafka/probe.mjs" "$KAFKA_BOOTSTRAP" 2>&1); then
      echo "$out"; return 0
    fi
    if ((SECONDS >= deadline)) || { [[ -n ${KAFKA_WAIT_PID:-} ]] && ! kill -0 "$KAFKA_WAIT_PID" 2>/dev/null; }; then
      echo "$out" | tail -n 1; return 1
    fi
    sleep 1
  done
}

# ---------------------------------------------------------------------------- config

kafka_server_properties() {
  cat <<EOF
# Written by scripts/kafka.sh; edit that script, not this file.
# One KRaft node that is both broker and controller, for tests on 127.0.0.1.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_STATE/data

# Topics appear on first use (a producer's or consumer's metadata request), with 3 partitions
# so that per-key ordering is exercised; tests that need one partition create their topic.
auto.create.topics.enable=true
num.partitions=3
delete.topic.enable=true

# A single node: every internal topic and every default has one replica, and a write is
# acknowledged by that one replica.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumer groups form at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0

# Two cores on this machine, shared with the other servers.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1

# The broker outlives test runs; topics they leave behind go after a day.
log.retention.hours=24
log.segment.bytes=67108864
log.retention.check.interval.ms=300000
EOF
}

# The broker reads its configuration from $KAFKA_STATE, not from this checkout, which may be a
# worktree that is gone by the time the broker restarts.
kafka_write_config() {
  local file content
  mkdir -p "$KAFKA_STATE/data"
  for file in server.properties log4j2.properties; do
    if [[ $file == server.properties ]]; then content=$(kafka_server_properties); else content=$(cat "$KAFKA_SCRIPTS/kafka/log4j2.properties"); fi
    if [[ -f $KAFKA_STATE/$file ]] && [[ "$(cat "$KAFKA_STATE/$file")" == "$content" ]]; then continue; fi
    printf '%s\n' "$content" >"$KAFKA_STATE/$file"
    kafka_note "wrote $KAFKA_STATE/$file"
  done
}

# What the running broker must have been started with: jars, settings, JVM options.
kafka_stamp() {
  { cat "$KAFKA_CACHE/broker-libs/.pom-sha" "$KAFKA_STATE/server.properties" "$KAFKA_STATE/log4j2.properties"
    echo "$KAFKA_HEAP $KAFKA_JVM_OPTS"; } | sha256sum | cut -c1-16
}

# Formats the KRaft log directory once (meta.properties holds the cluster id and node id).
kafka_format() {
  [[ -f $KAFKA_STATE/data/meta.properties ]] && return 0
  local id out
  id=$(java -cp "$KAFKA_CACHE/broker-libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null) || true
  if [[ -z $id ]]; then kafka_fail "kafka.tools.StorageTool random-uuid printed nothing"; return 1; fi
  if ! out=$(java -Dlog4j2.level=warn -cp "$KAFKA_CACHE/broker-libs/*" kafka.tools.StorageTool format \
               -t "$id" -c "$KAFKA_STATE/server.properties" 2>&1); then
    kafka_fail "could not format $KAFKA_STATE/data: $out"
    return 1
  fi
  kafka_note "formatted $KAFKA_STATE/data (cluster $id)"
}

# ---------------------------------------------------------------------------- process

# kafka_pid: the pid of the broker this script started, if it still runs.
kafka_pid() {
  local pid
  pid=$(cat "$KAFKA_STATE/broker.pid" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $KAFKA_STATE/server.properties" &&
    echo "$pid"
}

# Who listens on the port, when it is not our broker: "pid N (command)".
kafka_port_owner() {
  local port=$1 line
  line=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1)
  [[ -z $line ]] && return 1
  if [[ $line =~ pid=([0-9]+) ]]; then
    echo "pid ${BASH_REMATCH[1]} ($(tr '\0' ' ' <"/proc/${BASH_REMATCH[1]}/cmdline" 2>/dev/null | cut -c1-120))"
  else
    echo "an unknown process"
  fi
}

kafka_stop_pid() {
  local pid=$1 deadline
  kill "$pid" 2>/dev/null || return 0
  # A controlled shutdown takes a few seconds; after 60 s it is stuck.
  deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then kill -9 "$pid" 2>/dev/null; sleep 1; break; fi
    sleep 0.5
  done
  rm -f "$KAFKA_STATE/broker.pid" "$KAFKA_STATE/broker.stamp"
}

kafka_launch() {
  local stamp=$1 pid
  # setsid: the broker must outlive the shell (and CI step) that started it. 9>&-: it must
  # not inherit the lock descriptor, or it would hold the lock for as long as it runs.
  setsid bash -c 'echo $$ >"$1/broker.pid"; shift; exec "$@"' _ "$KAFKA_STATE" \
    java $KAFKA_HEAP $KAFKA_JVM_OPTS \
    -Ddts.log.file="$KAFKA_STATE/broker.log" \
    -Dlog4j2.configurationFile="$KAFKA_STATE/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_STATE" \
    -cp "$KAFKA_CACHE/broker-libs/*" kafka.Kafka "$KAFKA_STATE/server.properties" \
    </dev/null >"$KAFKA_STATE/broker.out" 2>&1 9>&- &
  for _ in $(seq 50); do
    pid=$(cat "$KAFKA_STATE/broker.pid" 2>/dev/null) && [[ -n $pid ]] && break
    sleep 0.1
  done
  echo "$stamp" >"$KAFKA_STATE/broker.stamp"
  echo "$pid"
}

# ---------------------------------------------------------------------------- entry points

# kafka_start: make sure the broker serves 127.0.0.1:9092 with the current jars and settings.
kafka_start() {
  kafka_fetch broker-libs "$KAFKA_SCRIPTS/kafka/pom.xml" || return 1
  kafka_write_config
  local pid stamp probe owner started
  stamp=$(kafka_stamp)
  if pid=$(kafka_pid); then
    if [[ $(cat "$KAFKA_STATE/broker.stamp" 2>/dev/null) != "$stamp" ]]; then
      kafka_note "restarting the broker (pid $pid): its jars or settings changed"
      kafka_stop_pid "$pid"
    elif probe=$(KAFKA_WAIT_PID=$pid kafka_probe 30); then
      kafka_ok "$KAFKA_BOOTSTRAP (Kafka $(kafka_version) KRaft, pid $pid, $probe)"
      return 0
    else
      kafka_note "the broker (pid $pid) does not serve metadata ($probe); restarting it"
      kafka_stop_pid "$pid"
    fi
  elif [[ -s $KAFKA_STATE/broker.pid ]]; then
    kafka_note "the broker died (pid $(cat "$KAFKA_STATE/broker.pid")); starting it again"
    kafka_tail "$KAFKA_STATE/broker.out" 5
    rm -f "$KAFKA_STATE/broker.pid"
  fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if owner=$(kafka_port_owner "$port"); then
      kafka_fail "$KAFKA_HOST:$port is taken by $owner, not by the broker this script starts; stop it or free the port"
      return 1
    fi
  done
  kafka_format || return 1
  started=$SECONDS
  pid=$(kafka_launch "$stamp")
  if ! probe=$(KAFKA_WAIT_PID=$pid kafka_probe 90); then
    if kill -0 "$pid" 2>/dev/null; then
      kafka_fail "the broker (pid $pid) started but serves no metadata on $KAFKA_BOOTSTRAP after 90 s ($probe); read $KAFKA_STATE/broker.log"
    else
      kafka_fail "the broker exited at start; read $KAFKA_STATE/broker.log and $KAFKA_STATE/broker.out"
      rm -f "$KAFKA_STATE/broker.pid"
    fi
    kafka_tail "$KAFKA_STATE/broker.out"
    return 1
  fi
  kafka_ok "$KAFKA_BOOTSTRAP (Kafka $(kafka_version) KRaft, pid $pid, started in $((SECONDS - started)) s, $probe)"
}

kafka_main() {
  set -Euo pipefail
  mkdir -p "$KAFKA_STATE"
  # One caller at a time: two test runs starting the broker at once would both format and
  # launch it, and the second would lose the port.
  exec 9>"$KAFKA_STATE/.lock"
  if ! flock -w 300 9; then kafka_fail "another scripts/kafka.sh holds $KAFKA_STATE/.lock for 5 minutes"; return 1; fi
  case ${1:-start} in
    start) kafka_start ;;
    fetch) kafka_fetch broker-libs "$KAFKA_SCRIPTS/kafka/pom.xml" ;;
    status)
      local probe
      if probe=$(kafka_probe); then echo "kafka $KAFKA_BOOTSTRAP: $probe"; else echo "kafka $KAFKA_BOOTSTRAP: not serving ($probe)" >&2; return 1; fi ;;
    stop)
      local pid
      if pid=$(kafka_pid); then kafka_stop_pid "$pid"; echo "kafka: stopped pid $pid"; else echo "kafka: not running"; fi ;;
    *) echo "usage: bash scripts/kafka.sh [start|status|stop|fetch]" >&2; return 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  kafka_main "$@"
fi
