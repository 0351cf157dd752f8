/**
 * `dts status FILE.dts`: per source, where the pipeline is, where the source is, and the lag.
 *
 *   checkpoint   the last durable checkpoint, from the pipeline's store: the checkpoint file
 *                beside the pipeline, or dts.checkpoints in the sink named by
 *                `checkpoint: "postgres"`
 *   source now   pg_current_wal_lsn() on the source server
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
 * Exit codes: 0, 1 invalid pipeline, 3 a server could not be reached.
 */
import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import type pg from "pg";
import { readStoredCheckpoints } from "../connectors/postgres/checkpoint-store.js";
import { connect, connectorError, serverLabel } from "../connectors/postgres/client.js";
import { deriveName } from "../connectors/postgres/slot.js";
import { bigIntToLsn, lsnToBigInt } from "../model/position.js";
import type { SourcePlan } from "../plan/types.js";
import type { SourceCheckpoint } from "../runtime/contracts.js";
import { parseCheckpointFile } from "../runtime/file-checkpoint-store.js";
import { formatTable, loadPipeline, runTool, stringOptionOf, ToolError, type LoadedPipeline } from "./pipeline-tools.js";

interface Checkpoints {
  /** Where they are kept, for the heading. */
  readonly where: string;
  readonly bySource: ReadonlyMap<string, SourceCheckpoint>;
  /** When each was saved, where the store knows it. */
  readonly savedAt: ReadonlyMap<string, Date>;
}

export async function run(file: string, flags: readonly string[]): Promise<number> {
  return runTool("status", async () => {
    if (flags.length > 0) throw new ToolError(`unknown option ${flags[0]}`, 2);
    const pipeline = await loadPipeline(file);
    const checkpoints = await readCheckpoints(pipeline);
    process.stdout.write(`pipeline ${pipeline.plan.pipeline.name}: checkpoints ${checkpoints.where}\n`);
    for (const source of pipeline.plan.sources) {
      process.stdout.write(`\n${await sourceStatus(pipeline, source, checkpoints)}\n`);
    }
    return 0;
  });
}

async function readCheckpoints(pipeline: LoadedPipeline): Promise<Checkpoints> {
  const setting = pipeline.plan.pipeline.checkpoint;
  if (setting.kind === "file") {
    const path = resolve(pipeline.baseDir, setting.path);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { where: `in ${path} (none yet)`, bySource: new Map(), savedAt: new Map() };
      throw new ToolError(`cannot read ${path}: ${(error as Error).message}`, 1);
    }
    const saved = (await stat(path)).mtime;
    const bySource = new Map(Object.entries(parseCheckpointFile(text, path, pipeline.plan.pipeline.name)));
    return { where: `in ${path}`, bySource, savedAt: new Map([...bySource.keys()].map((name) => [name, saved])) };
  }
  const sink = pipeline.plan.sinks.find((s) => s.name === setting.sink)!;
  if (setting.kind !== "postgres") {
    return { where: `in sink ${sink.name} (${setting.kind}): dts status reads file and postgres checkpoints only`, bySource: new Map(), savedAt: new Map() };
  }
  const url = stringOptionOf(pipeline, sink, "url")!;
  const client = await connect(url, "dts status");
  try {
    const stored = await readStoredCheckpoints(client, pipeline.plan.pipeline.name, serverLabel(url)).catch((error: unknown) => {
      throw connectorError(error, serverLabel(url), "reading dts.checkpoints");
    });
    return {
      where: `in dts.checkpoints of sink ${sink.name} (${serverLabel(url)})`,
      bySource: new Map(stored.map((row) => [row.source, row.checkpoint])),
      savedAt: new Map(stored.map((row) => [row.source, row.updatedAt])),
    };
  } finally {
    await client.end().catch(() => {});
  }
}

async function sourceStatus(pipeline: LoadedPipeline, source: SourcePlan, checkpoints: Checkpoints): Promise<string> {
  const checkpoint = checkpoints.bySource.get(source.name);
  const savedAt = checkpoints.savedAt.get(source.name);
  const rows: string[][] = [["checkpoint", describeCheckpoint(checkpoint, savedAt)]];
  const snapshot = describeSnapshot(checkpoint);
  if (snapshot !== undefined) rows.push(["snapshot", snapshot]);
  if (source.connector !== "postgres") {
    rows.push(["source now", `not available for ${source.connector} sources`]);
    return `source ${source.name} (${source.connector})\n${formatTable(rows)}`;
  }
  const url = stringOptionOf(pipeline, source, "url")!;
  const slot = stringOptionOf(pipeline, source, "slot") ?? deriveName(pipeline.plan.pipeline.name, source.name);
  const publication = stringOptionOf(pipeline, source, "publication") ?? deriveName(pipeline.plan.pipeline.name, source.name);
  const client = await connect(url, "dts status");
  try {
    const facts = await readSourceFacts(client, slot).catch((error: unknown) => {
      throw connectorError(error, serverLabel(url), "reading the WAL position");
    });
    rows.push(["source now", `${bigIntToLsn(facts.current)} (pg_current_wal_lsn)`]);
    if (facts.slot === undefined) {
      rows.push(["slot", `${slot} does not exist${checkpoint?.position ? ": the changes after the checkpoint are gone" : " (created on the first run)"}`]);
    } else {
      const retained = facts.slot.restart === null ? "" : `, retains ${bytes(facts.current - facts.slot.restart)} of WAL`;
      rows.push([
        "slot",
        `${slot}: confirmed ${facts.slot.confirmed === null ? "-" : bigIntToLsn(facts.slot.confirmed)}, ${facts.slot.activePid === null ? "inactive" : `active (pid ${facts.slot.activePid})`}${retained}`,
      ]);
    }
    const at = checkpoint?.position?.kind === "pg-lsn" ? lsnToBigInt(checkpoint.position.token) : undefined;
    if (at === undefined) {
      rows.push(["lag", checkpoint === undefined ? "unknown: no checkpoint yet" : "unknown: the snapshot has not reached a WAL position yet"]);
    } else {
      const behind = facts.current > at ? facts.current - at : 0n;
      rows.push(["lag", `${bytes(behind)}, ${await lagTime(client, facts, at, slot, publication)}`]);
    }
  } finally {
    await client.end().catch(() => {});
  }
  return `source ${source.name} (postgres, ${serverLabel(url)})\n${formatTable(rows)}`;
}

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

function describeCheckpoint(checkpoint: SourceCheckpoint | undefined, savedAt: Date | undefined): string {
  if (checkpoint === undefined) return "none (the pipeline has not made anything durable yet)";
  const position = checkpoint.position === null ? "no position yet" : `${checkpoint.position.token} (${checkpoint.position.kind})`;
  if (savedAt === undefined) return position;
  return `${position}, saved ${savedAt.toISOString()} (${seconds((Date.now() - savedAt.getTime()) / 1000)} ago)`;
}

function describeSnapshot(checkpoint: SourceCheckpoint | undefined): string | undefined {
  const state = checkpoint?.state as { snapshot?: { tables?: unknown; tablesDone?: unknown; table?: unknown; lastKey?: unknown } } | undefined;
  const snapshot = state?.snapshot;
  if (snapshot === undefined || !Array.isArray(snapshot.tables) || !Array.isArray(snapshot.tablesDone)) return undefined;
  const done = `${snapshot.tablesDone.length} of ${snapshot.tables.length} tables copied`;
  if (typeof snapshot.table !== "string") return snapshot.tablesDone.length === snapshot.tables.length ? `done (${done})` : `in progress: ${done}`;
  const after = Array.isArray(snapshot.lastKey) ? ` after key (${snapshot.lastKey.join(", ")})` : "";
  return `in progress: ${done}; copying ${snapshot.table}${after}`;
}

function bytes(n: bigint): string {
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
