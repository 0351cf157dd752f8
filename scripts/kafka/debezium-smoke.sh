#!/usr/bin/env bash
# End-to-end check of scripts/kafka.sh + scripts/debezium.sh, run by hand (not by the test
# suite: the first run downloads ~50 MB and every run starts a JVM for ~20 s). In a throwaway
# PostgreSQL database it snapshots three rows with Debezium, then updates, deletes and
# inserts one row each, reads the topic back with kafkajs and checks every envelope (op,
# before, after, source) against what was written. Leaves nothing behind: the worker, its
# slot, the database and the topic go in any case.
#
# Usage: bash scripts/kafka/debezium-smoke.sh      (PostgreSQL 127.0.0.1:5432 as in the tests)
set -Euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

run=$$_$RANDOM
db=dts_dbz_smoke_$run
worker=smoke-$run
prefix=dts_dbz_smoke_$run
topic=$prefix.public.accounts
psql_db() { psql -w -h "${DTS_TEST_PG_HOST:-127.0.0.1}" -p "${DTS_TEST_PG_PORT:-5432}" -U "${DTS_TEST_PG_USER:-postgres}" -XAtq -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

cleanup() {
  bash scripts/debezium.sh stop "$worker" >/dev/null 2>&1
  psql_db postgres "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = '$db'" >/dev/null 2>&1
  psql_db postgres "drop database if exists $db" >/dev/null 2>&1
  node --input-type=module -e "
    import { Kafka, logLevel } from 'kafkajs';
    const admin = new Kafka({ brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING }).admin();
    await admin.connect(); await admin.deleteTopics({ topics: ['$topic'] }).catch(() => {}); await admin.disconnect();" 2>/dev/null
}
trap cleanup EXIT

bash scripts/kafka.sh || exit 1
psql_db postgres "create database $db" || exit 1
psql_db "$db" "
  create table public.accounts (id int primary key, owner text not null, balance numeric(12,2), opened date, tags text[]);
  alter table public.accounts replica identity full;
  insert into public.accounts values (1, 'ada', 100.50, '2024-01-02', '{a,b}'), (2, 'bob', null, '2023-05-06', null), (3, 'cy', 7.25, null, '{}');" || exit 1

bash scripts/debezium.sh start "$worker" --database "$db" --topic-prefix "$prefix" \
  --tables public.accounts --drop-slot-on-stop --set decimal.handling.mode=string || exit 1
psql_db "$db" "
  update public.accounts set balance = 200.00, tags = '{z}' where id = 1;
  delete from public.accounts where id = 2;
  insert into public.accounts values (4, 'dee', 0.01, '2025-12-31', '{x,y}');" || exit 1

# 3 snapshot reads + update + delete + its tombstone + insert.
node scripts/kafka/read-topic.mjs "$topic" 7 20000 >"/tmp/$prefix.jsonl" || exit 1
node --input-type=module - "/tmp/$prefix.jsonl" <<'EOF' || exit 1
import { readFileSync } from "node:fs";
const lines = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const byKey = (id) => lines.filter((m) => m.key?.id === id).sort((a, b) => Number(a.offset) - Number(b.offset));
const day = (iso) => Date.parse(iso) / 86400000;
const expect = {
  1: [["r", null, { id: 1, owner: "ada", balance: "100.50", opened: day("2024-01-02"), tags: ["a", "b"] }],
      ["u", { id: 1, owner: "ada", balance: "100.50", opened: day("2024-01-02"), tags: ["a", "b"] },
            { id: 1, owner: "ada", balance: "200.00", opened: day("2024-01-02"), tags: ["z"] }]],
  2: [["r", null, { id: 2, owner: "bob", balance: null, opened: day("2023-05-06"), tags: null }],
      ["d", { id: 2, owner: "bob", balance: null, opened: day("2023-05-06"), tags: null }, null],
      "tombstone"],
  3: [["r", null, { id: 3, owner: "cy", balance: "7.25", opened: null, tags: [] }]],
  4: [["c", null, { id: 4, owner: "dee", balance: "0.01", opened: day("2025-12-31"), tags: ["x", "y"] }]],
};
const problems = [];
for (const [id, want] of Object.entries(expect)) {
  const got = byKey(Number(id));
  if (got.length !== want.length) problems.push(`id ${id}: ${got.length} messages, want ${want.length}`);
  want.forEach((w, i) => {
    const m = got[i];
    if (!m) return;
    if (w === "tombstone") { if (m.value !== null) problems.push(`id ${id} #${i}: want a tombstone`); return; }
    const [op, before, after] = w;
    const v = m.value;
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    if (v?.op !== op || !same(v.before, before) || !same(v.after, after) || v.source?.table !== "accounts" || typeof v.ts_ms !== "number")
      problems.push(`id ${id} #${i}: got ${JSON.stringify({ op: v?.op, before: v?.before, after: v?.after })}, want ${JSON.stringify({ op, before, after })}`);
  });
}
if (problems.length) { console.error("debezium-smoke: FAILED\n  " + problems.join("\n  ")); process.exit(1); }
console.log(`debezium-smoke: ok, ${lines.length} messages as expected (r r r u d tombstone c); the update:`);
console.log(JSON.stringify(byKey(1)[1].value, null, 2));
EOF
rm -f "/tmp/$prefix.jsonl"
