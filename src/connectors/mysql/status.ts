/**
 * The mysql source's status (`dts status`): where the source is, where the pipeline is, the lag
 * between them, and the binlogs the server keeps.
 *
 *   snapshot     from the checkpoint's state: tables copied, the table being copied and the key
 *                after which the copy resumes
 *   source now   SHOW MASTER STATUS, with the GTID state
 *   binlogs      SHOW BINARY LOGS: how many, their size, the oldest, and when they expire. The
 *                server keeps them by its own expiry, not for the pipeline: a checkpoint whose
 *                file is gone is said loudly (the changes after it are lost)
 *   lag, bytes   the binlog bytes from the checkpoint to the end (other databases' too)
 *   lag, time    0 when there are none; else now − the time of the first event after the
 *                checkpoint, read from the binlog by a short replica connection of its own
 */
import ZongJi from "@vlasky/zongji";
import type { SourceCheckpoint } from "../../runtime/contracts.js";
import type { Status } from "../capabilities.js";
import { connect, connectorError, serverLabel } from "./connection.js";
import { comparePoints, describePoint, positionPoint, type BinlogPoint } from "./position.js";
import { readSourceSettings } from "./source-settings.js";

export const status: Status = async (context, checkpoint) => {
  const settings = readSourceSettings(context);
  const server = serverLabel(settings.url);
  const rows: [string, string][] = [];
  const retained: string[] = [];
  const snapshot = describeSnapshot(checkpoint);
  if (snapshot !== undefined) rows.push(["snapshot", snapshot]);
  const connection = await connect(settings.url, { purpose: context.tool });
  try {
    const query = async (sql: string): Promise<Record<string, unknown>[]> => ((await connection.query(sql)) as unknown as [Record<string, unknown>[]])[0];
    const master = await query("SHOW MASTER STATUS").catch((error: unknown) => {
      throw connectorError(error, server, "reading the binlog position");
    });
    if (master.length === 0) {
      rows.push(["source now", "no binlog: log_bin is OFF"]);
      return { where: server, rows, retained };
    }
    const [version] = await query("SELECT VERSION() AS v");
    const [gtid] = await query(/mariadb/i.test(String(version?.v)) ? "SELECT @@GLOBAL.gtid_binlog_pos AS g" : "SELECT @@GLOBAL.gtid_executed AS g");
    const end: BinlogPoint = { file: String(master[0]!.File), offset: Number(master[0]!.Position), gtids: String(gtid?.g ?? "").replace(/\s+/g, "") };
    rows.push(["source now", describePoint(end)]);
    const logs = (await query("SHOW BINARY LOGS")).map((row) => ({ file: String(row.Log_name), size: Number(row.File_size) }));
    const total = logs.reduce((sum, log) => sum + log.size, 0);
    const [expiry] = await query("SELECT IFNULL(@@GLOBAL.binlog_expire_logs_seconds, 0) AS s").catch(() => [{ s: 0 }]);
    const expires = Number(expiry?.s ?? 0);
    rows.push(["binlogs", `${logs.length} files, ${bytes(total)}, oldest ${logs[0]?.file ?? "none"}${expires > 0 ? `; expire after ${Math.round(expires / 3600)} h` : "; never expire"}`]);
    const at = checkpoint?.position != null && checkpoint.position.kind === "mysql-binlog" ? positionPoint(checkpoint.position) : undefined;
    if (at === undefined) {
      rows.push(["lag", checkpoint === undefined ? "unknown: no checkpoint yet" : "unknown: the checkpoint has no binlog position"]);
      return { where: server, rows, retained };
    }
    rows.push(["checkpoint", describePoint(at)]);
    if (!logs.some((log) => log.file === at.file)) {
      rows.push(["lag", `unknown: ${at.file} is no longer on the server`]);
      retained.push(`the binlog ${at.file} of the pipeline's checkpoint has been purged: the changes after it are lost; copy the tables again (dts drop, then a run with snapshot "initial")`);
      return { where: server, rows, retained };
    }
    let behind = 0;
    for (const log of logs) {
      if (comparePoints({ file: log.file, offset: 0 }, { file: at.file, offset: 0 }) < 0) continue;
      const from = log.file === at.file ? at.offset : 0;
      const to = log.file === end.file ? end.offset : log.size;
      behind += Math.max(0, to - from);
    }
    const seconds = behind === 0 ? 0 : await firstEventAge(settings.url, at, settings.serverId);
    rows.push(["lag", `${bytes(behind)}, ${seconds === undefined ? "time unknown" : `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`}`]);
    return { where: server, rows, retained };
  } finally {
    await connection.end().catch(() => {});
  }
};

/** Seconds since the first event after `at` was written; undefined when none comes within 3 s. */
async function firstEventAge(url: string, at: BinlogPoint, pipelineServerId: number): Promise<number | undefined> {
  const parsed = new URL(url);
  const zongji = new ZongJi({
    host: parsed.hostname,
    port: parsed.port === "" ? 3306 : Number(parsed.port),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  } as never) as unknown as { on(event: string, listener: (...args: never[]) => void): void; start(options: object): void; stop(): void };
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: number | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        zongji.stop();
      } catch {
        // already stopped
      }
      resolve(value);
    };
    const timer = setTimeout(() => finish(undefined), 3000);
    zongji.on("error", () => finish(undefined));
    zongji.on("binlog", (event: { timestamp: number; nextPosition: number; getEventName(): string }) => {
      const name = event.getEventName();
      if (event.timestamp > 0 && name !== "rotate" && name !== "format" && name !== "mariadbgtidlist" && name !== "binlogcheckpoint") {
        finish(Math.max(0, (Date.now() - event.timestamp) / 1000));
      }
    });
    // A replica id of its own: a second connection with the pipeline's id would end the pipeline's.
    zongji.start({ serverId: ((pipelineServerId + 7919) % 2 ** 31) + 1, filename: at.file, position: at.offset });
  });
}

function describeSnapshot(checkpoint: SourceCheckpoint | undefined): string | undefined {
  const state = checkpoint?.state;
  const snapshot = typeof state === "object" && state !== null && !Array.isArray(state) ? state.snapshot : undefined;
  if (typeof snapshot !== "object" || snapshot === null || Array.isArray(snapshot)) return undefined;
  const { tables, tablesDone, table, lastKey } = snapshot;
  if (!Array.isArray(tables) || !Array.isArray(tablesDone)) return undefined;
  const done = `${tablesDone.length} of ${tables.length} tables copied`;
  if (typeof table !== "string") return tablesDone.length === tables.length ? `done (${done})` : `in progress: ${done}`;
  const after = Array.isArray(lastKey) ? ` after key (${lastKey.map((key) => JSON.stringify(key)).join(", ")})` : "";
  return `in progress: ${done}; copying ${table}${after}`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
