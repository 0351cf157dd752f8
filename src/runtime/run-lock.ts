/**
 * One run per pipeline and checkpoint location: two runs of one pipeline would read the same
 * sources from the same checkpoints and overwrite each other's. The runner asks the checkpoint
 * store for a lock before any sink starts (`CheckpointStore.lock`); a PostgreSQL store uses an
 * advisory lock, and the file store uses the lock file made here, beside the checkpoint file:
 *
 *   .dts-state.quickstart.lock    {"pid":4242,"hostname":"web1","started":"2024-05-01T10:00:00.000Z"}
 *
 * One file per pipeline, not one per checkpoint file, because the pipelines of one folder share
 * `.dts-state` and must still run at once. The file is created with O_EXCL, which only one
 * process can win (on NFS too, from NFSv3). A killed run (kill -9, power cut) cannot remove
 * it, so a lock naming a process that no longer exists on this host is stale and taken over.
 * A holder on another host cannot be checked and always counts as alive: the error says how
 * to clear it.
 *
 * The takeover removes the stale file and retries the create once. Two runs taking over the
 * same stale lock at the same instant are told apart by that create; the file is read again
 * just before it is removed so that a lock the other one has just made is left alone, which
 * leaves a window of a few microseconds between that read and the removal.
 */
import { open, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { ConnectorError, type Logger } from "./contracts.js";
import { DtsError } from "../diagnostics/errors.js";

/** Another run of the pipeline holds its lock: this one does not start (dts-run exits 1). */
export class PipelineLockedError extends DtsError {
  constructor(
    readonly pipeline: string,
    message: string,
  ) {
    super("DTS7002", message);
    this.name = "PipelineLockedError";
  }
}

/** What a lock file says about the process holding it. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  readonly started: string;
}

/** `PATH.PIPELINE.lock`: beside the checkpoint file, one per pipeline sharing it. */
export function lockFilePath(checkpointPath: string, pipeline: string): string {
  return `${checkpointPath}.${pipeline}.lock`;
}

/**
 * Per lock file, the locks this process holds or is taking. A lock naming this process's pid
 * while no other of them exists was left by an earlier process that had the same pid: a
 * restarted container, whose runner gets the same small pid every time, would otherwise see
 * its own lock as held.
 */
const lockingHere = new Map<string, number>();

/** Takes the lock file `path` for `pipeline`; resolves to the function releasing it. */
export async function lockFile(path: string, pipeline: string, log: Logger): Promise<() => Promise<void>> {
  const mine: LockHolder = { pid: process.pid, hostname: hostname(), started: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  countHere(path, +1);
  try {
    await acquire(path, text, pipeline, log);
  } catch (error) {
    countHere(path, -1);
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      // Only if it is still ours: a lock deleted by hand and then taken by another run is theirs.
      if ((await readLock(path))?.text === text) await rm(path, { force: true });
    } finally {
      countHere(path, -1);
    }
  };
}

async function acquire(path: string, text: string, pipeline: string, log: Logger): Promise<void> {
  if (await createLock(path, text)) return;
  const found = await readLock(path);
  if (found !== undefined) {
    if (found.holder === undefined || !isStale(path, found.holder)) throw lockedError(pipeline, path, found.holder);
    if ((await readLock(path))?.text === found.text) await rm(path, { force: true });
  }
  // Absent by now, unless another run took it over first: its holder has just released it,
  // or was stale and is gone.
  if (!(await createLock(path, text))) throw lockedError(pipeline, path, (await readLock(path))?.holder);
  if (found?.holder !== undefined) {
    log.warn("took over the pipeline's lock: the run that held it no longer exists", {
      pipeline,
      lock: path,
      pid: found.holder.pid,
      since: found.holder.started,
    });
  }
}

function countHere(path: string, change: 1 | -1): void {
  const count = (lockingHere.get(path) ?? 0) + change;
  if (count > 0) lockingHere.set(path, count);
  else lockingHere.delete(path);
}

/** false when the file exists already. */
async function createLock(path: string, text: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new ConnectorError(`cannot create the lock file ${path}: ${(error as Error).message}`, false, { cause: error });
  }
  try {
    await handle.writeFile(text, "utf8");
    // A power cut must not leave an empty lock that names no one and blocks every start.
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(path, { force: true });
    throw new ConnectorError(`cannot write the lock file ${path}: ${(error as Error).message}`, false, { cause: error });
  }
  await handle.close();
  return true;
}

/** undefined when there is no file; `holder` undefined when it does not say who holds it. */
async function readLock(path: string): Promise<{ text: string; holder: LockHolder | undefined } | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConnectorError(`cannot read the lock file ${path}: ${(error as Error).message}`, false, { cause: error });
  }
  return { text, holder: parseHolder(text) };
}

function parseHolder(text: string): LockHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // empty: being written right now, or damaged
  }
  const { pid, hostname, started } = (value ?? {}) as Record<string, unknown>;
  // process.kill(0 or a negative pid) would signal whole process groups: only a real pid counts.
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return undefined;
  if (typeof hostname !== "string" || typeof started !== "string") return undefined;
  return { pid, hostname, started };
}

function isStale(path: string, holder: LockHolder): boolean {
  if (holder.hostname === hostname() && holder.pid === process.pid) return lockingHere.get(path) === 1;
  return processIsGone(holder.pid, holder.hostname);
}

/** No process has `pid` on this host; false when it cannot be told (another host). */
export function processIsGone(pid: number, host: string): boolean {
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: it exists, as another user's process.
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function lockedError(pipeline: string, path: string, holder: LockHolder | undefined): PipelineLockedError {
  if (holder === undefined) {
    return new PipelineLockedError(
      pipeline,
      `pipeline "${pipeline}" is already running: its lock ${path} exists but does not say which process holds it; ` +
        `if no other dts-run of it is running, delete ${path}`,
    );
  }
  return new PipelineLockedError(
    pipeline,
    `pipeline "${pipeline}" is already running: dts-run pid ${holder.pid} on host ${holder.hostname} holds its lock ${path} ` +
      `(since ${holder.started}); stop the other dts-run (pid ${holder.pid}) or, if it is gone, delete ${path}`,
  );
}
