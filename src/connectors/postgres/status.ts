/**
 * The postgres source's status (`dts status`): where the source is, where the pipeline is, the
 * lag between them, and the WAL its slot makes the server keep.
 *
 *   snapshot     from the checkpoint's state: tables copied, the table being copied and the
 *                key after which the copy resumes
 *   source now   pg_current_wal_lsn() on the source server
 *   slot         its confirmed position, whether a run reads it, and the WAL it retains
 *                (current − restart_lsn): the server keeps that WAL until the slot moves on
 *   lag, bytes   source now − checkpoint (WAL bytes the pipeline has not made durable yet;
 *                WAL of other databases and tables counts too, as it does for the slot)
 *   lag, time    how old the oldest change not yet applied is:
 *                - nothing to apply (the bytes are only WAL the slot will skip): 0;
 *                - the pipeline is running (the slot is active): the server's own measure,
 *                  pg_stat_replication.flush_lag of the slot's WAL sender — the time between
 *                  WAL being written and the pipeline confirming it durable;
 *                - the pipeline is stopped: now − the commit time of the first transaction
 *                  after the checkpoint, read by peeking at the slot
 *                  (pg_logical_slot_peek_binary_changes, which does not consume anything).
 *
 * An inactive slot that retains WAL is reported as retained: while no run reads it, the WAL
 * grows without bound (one abandoned pipeline's slot held 2.7 GB after 12 idle minutes), and
 * `dts status` says how to remove it with `dts drop`.
 */
import type pg from "pg";
import { bigIntToLsn, lsnToBigInt } from "../../model/position.js";
import type { SourceCheckpoint } from "../../runtime/contracts.js";
import type { Status } from "../capabilities.js";
import { connect, connectorError, serverLabel } from "./client.js";
import { readSourceSettings } from "./source-settings.js";

export const status: Status = async (context, checkpoint) => {
  const settings = readSourceSettings(context);
  const rows: [string, string][] = [];
  const retained: string[] = [];
  const snapshot = describeSnapshot(checkpoint);
  if (snapshot !== undefined) rows.push(["snapshot", snapshot]);
  const client = await connect(settings.url, context.tool);
  try {
    const facts = await readSourceFacts(client, settings.slot).catch((error: unknown) => {
      throw connectorError(error, serverLabel(settings.url), "reading the WAL position");
    });
    rows.push(["source now", `${bigIntToLsn(facts.current)} (pg_current_wal_lsn)`]);
    if (facts.slot === undefined) {
      rows.push(["slot", `${settings.slot} does not exist${checkpoint?.position ? ": the changes after the checkpoint are gone" : " (created on the first run)"}`]);
    } else {
      const bytesRetained = facts.slot.restart === null ? undefined : facts.current - facts.slot.restart;
      const active = facts.slot.activePid === null ? "inactive" : `active (pid ${facts.slot.activePid})`;
      rows.push([
        "slot",
        `${settings.slot}: confirmed ${facts.slot.confirmed === null ? "-" : bigIntToLsn(facts.slot.confirmed)}, ${active}${bytesRetained === undefined ? "" : `, retains ${bytes(bytesRetained)} of WAL`}`,
      ]);
      if (facts.slot.activePid === null && bytesRetained !== undefined && bytesRetained > 0n) {
        retained.push(`replication slot ${settings.slot} is inactive and makes the server keep ${bytes(bytesRetained)} of WAL, more as the server writes`);
      }
    }
    const at = checkpoint?.position?.kind === "pg-lsn" ? lsnToBigInt(checkpoint.position.token) : undefined;
    if (at === undefined) {
      rows.push(["lag", checkpoint === undefined ? "unknown: no checkpoint yet" : "unknown: the snapshot has not reached a WAL position yet"]);
    } else {
      const behind = facts.current > at ? facts.current - at : 0n;
      rows.push(["lag", `${bytes(behind)}, ${await lagTime(client, facts, at, settings.slot, settings.publication)}`]);
    }
  } finally {
    await client.end().catch(() => {});
  }
  return { where: serverLabel(settings.url), rows, retained };
};

interface SourceFacts {
  readonly current: bigint;
  readonly slot?: { readonly confirmed: bigint | null; readonly restart: bigint | null; readonly activePid: number | null; readonly flushLagSeconds: number | null };
}

async function readSourceFacts(client: pg.Client, slot: string): Promise<SourceFacts> {
  const { rows } = await client.query<{ current: string; confirmed: string | null; restart: string | null; active_pid: number | null; flush_lag: number | null; found: boolean }>(
    `SELECT pg_current_wal_lsn()::text AS current, s.slot_name IS NOT NULL AS found,
            s.confirmed_flush_lsn::text AS confirmed, s.restart_lsn::text AS restart, s.active_pid,
            extract(epoch FROM r.flush_lag)::float8 AS flush_lag
       FROM (SELECT 1) AS one
       LEFT JOIN pg_replication_slots s ON s.slot_name = $1
       LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid`,
    [slot],
  );
  const row = rows[0]!;
  const current = lsnToBigInt(row.current);
  if (!row.found) return { current };
  return {
    current,
    slot: {
      confirmed: row.confirmed === null ? null : lsnToBigInt(row.confirmed),
      restart: row.restart === null ? null : lsnToBigInt(row.restart),
      activePid: row.active_pid,
      flushLagSeconds: row.flush_lag,
    },
  };
}

/** The lag in time, with how it was found (see the file comment). */
async function lagTime(client: pg.Client, facts: SourceFacts, at: bigint, slot: string, publication: string): Promise<string> {
  if (facts.slot === undefined) return "time unknown (no slot)";
  if (facts.slot.activePid !== null) {
    return facts.slot.flushLagSeconds === null
      ? "0 s (running; the server reports no flush lag: nothing is waiting)"
      : `${seconds(facts.slot.flushLagSeconds)} (running; pg_stat_replication.flush_lag)`;
  }
  const peeked = await firstCommitAfter(client, slot, publication, at);
  if (peeked === "none") return "0 s (no change after the checkpoint)";
  if (peeked === "unknown") return "time unknown (the slot could not be peeked at)";
  return `${seconds((Date.now() - peeked.getTime()) / 1000)} (stopped; the oldest change not applied committed at ${peeked.toISOString()})`;
}

const PG_EPOCH_MICROS = 946_684_800_000_000n; // 2000-01-01 in Unix microseconds

/**
 * The commit time of the first transaction that ends after `at`, from pgoutput's Begin
 * messages ('B', final LSN, commit time in microseconds since 2000-01-01, xid).
 */
async function firstCommitAfter(client: pg.Client, slot: string, publication: string, at: bigint): Promise<Date | "none" | "unknown"> {
  let rows: { data: Buffer }[];
  try {
    ({ rows } = await client.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, 10000, 'proto_version', '1', 'publication_names', $2)`,
      [slot, publication],
    ));
  } catch {
    return "unknown";
  }
  for (const { data } of rows) {
    if (data.length < 21 || data[0] !== 0x42 /* B */) continue;
    const finalLsn = data.readBigUInt64BE(1);
    if (finalLsn <= at) continue;
    const micros = data.readBigInt64BE(9) + PG_EPOCH_MICROS;
    return new Date(Number(micros / 1000n));
  }
  return rows.length < 10000 ? "none" : "unknown";
}

function describeSnapshot(checkpoint: SourceCheckpoint | undefined): string | undefined {
  const state = checkpoint?.state;
  const snapshot = typeof state === "object" && state !== null && !Array.isArray(state) ? state.snapshot : undefined;
  if (typeof snapshot !== "object" || snapshot === null || Array.isArray(snapshot)) return undefined;
  const { tables, tablesDone, table, lastKey } = snapshot;
  if (!Array.isArray(tables) || !Array.isArray(tablesDone)) return undefined;
  const done = `${tablesDone.length} of ${tables.length} tables copied`;
  if (typeof table !== "string") return tablesDone.length === tables.length ? `done (${done})` : `in progress: ${done}`;
  const after = Array.isArray(lastKey) ? ` after key (${lastKey.join(", ")})` : "";
  return `in progress: ${done}; copying ${table}${after}`;
}

/** Bytes in the largest unit under 1024 of it: `2.7 GB`. */
export function bytes(n: bigint): string {
  if (n < 1024n) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = Number(n) / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function seconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
