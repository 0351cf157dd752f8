/**
 * The embedded default checkpoint store: one JSON file beside the pipeline holding every
 * source's checkpoint, keyed by pipeline, because several pipelines live in one folder and
 * share the default `.dts-state`:
 *
 *   {"dts_checkpoints":2,"pipelines":{"quickstart":{"sources":{"shop":{"position":{...},"state":...}}}}}
 *
 * A save re-reads the file and replaces only its own pipeline's entry. Two pipelines saving
 * at the same instant can make one of them keep an older position of the other; that only
 * means the other replays a little more after a restart (sinks are idempotent and a source
 * never resumes before what it acknowledged), never that anything is skipped.
 *
 * Two runs of one pipeline must not share its entry at all: `lock` keeps the second from
 * starting (run-lock.ts).
 *
 * A save must leave either the old file or the new one, never a torn mix, whatever moment the
 * process or the machine dies at: so the text goes to a temporary file in the same folder
 * (rename is atomic only within one file system), which is fsync'd, renamed over the old
 * file, and then the folder is fsync'd so that the rename itself survives a power cut.
 */
import { open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { JsonValue } from "../model/json-value.js";
import { ConnectorError, type CheckpointStore, type Logger, type SourceCheckpoint } from "./contracts.js";
import { lockFile, lockFilePath } from "./run-lock.js";

const FORMAT_VERSION = 2;

export class FileCheckpointStore implements CheckpointStore {
  private readonly checkpoints = new Map<string, SourceCheckpoint>();
  private saves = 0;

  /** `path` is absolute (the runner resolves it against the pipeline file's folder). */
  constructor(
    readonly path: string,
    private readonly pipeline: string,
  ) {}

  get location(): string {
    return this.path;
  }

  /** The lock file `PATH.PIPELINE.lock` beside the checkpoint file (run-lock.ts). */
  lock(options: { readonly log: Logger }): Promise<() => Promise<void>> {
    return lockFile(lockFilePath(this.path, this.pipeline), this.pipeline, options.log);
  }

  async load(): Promise<Readonly<Record<string, SourceCheckpoint>>> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new ConnectorError(`cannot read the checkpoint file ${this.path}: ${(error as Error).message}`, false, { cause: error });
    }
    const sources = parseCheckpointFile(text, this.path, this.pipeline);
    for (const [name, checkpoint] of Object.entries(sources)) this.checkpoints.set(name, checkpoint);
    return sources;
  }

  /**
   * Stores the given sources' checkpoints; sources not named keep the checkpoint they had, so
   * the coordinator may save one source without knowing the others.
   */
  async save(checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    for (const [name, checkpoint] of Object.entries(checkpoints)) this.checkpoints.set(name, checkpoint);
    const sources: Record<string, JsonValue> = {};
    for (const name of [...this.checkpoints.keys()].sort()) sources[name] = checkpointJson(this.checkpoints.get(name)!);
    const pipelines = await this.otherPipelines();
    pipelines[this.pipeline] = { sources };
    const ordered: Record<string, JsonValue> = {};
    for (const name of Object.keys(pipelines).sort()) ordered[name] = pipelines[name]!;
    const text = JSON.stringify({ dts_checkpoints: FORMAT_VERSION, pipelines: ordered }) + "\n";
    await writeFileAtomically(this.path, text, `.${basename(this.path)}.${process.pid}.${this.saves++}.tmp`);
  }

  /** The file's modification time, for every source of the pipeline: one file holds them all. */
  async savedAt(): Promise<ReadonlyMap<string, Date>> {
    const sources = await this.load();
    let saved: Date;
    try {
      saved = (await stat(this.path)).mtime;
    } catch {
      return new Map();
    }
    return new Map(Object.keys(sources).map((name) => [name, saved]));
  }

  /**
   * Removes the pipeline's entry; the file goes when no other pipeline's entry is left. Like a
   * save, it rewrites the file atomically around the other pipelines' entries as they are on disk.
   */
  async forget(): Promise<boolean> {
    await this.load(); // a damaged file is said, not overwritten
    if (!(await this.hasEntry())) return false;
    this.checkpoints.clear();
    const pipelines = await this.otherPipelines();
    if (Object.keys(pipelines).length === 0) {
      await rm(this.path, { force: true });
      return true;
    }
    const ordered: Record<string, JsonValue> = {};
    for (const name of Object.keys(pipelines).sort()) ordered[name] = pipelines[name]!;
    await writeFileAtomically(this.path, JSON.stringify({ dts_checkpoints: FORMAT_VERSION, pipelines: ordered }) + "\n", `.${basename(this.path)}.${process.pid}.${this.saves++}.tmp`);
    return true;
  }

  /** The file holds an entry for the pipeline (an empty one too). */
  private async hasEntry(): Promise<boolean> {
    try {
      const document: unknown = JSON.parse(await readFile(this.path, "utf8"));
      return isObject(document) && isObject(document.pipelines) && Object.hasOwn(document.pipelines, this.pipeline);
    } catch {
      return false;
    }
  }

  /** The entries of the other pipelines sharing the file, as they are on disk now. */
  private async otherPipelines(): Promise<Record<string, JsonValue>> {
    let document: unknown;
    try {
      document = JSON.parse(await readFile(this.path, "utf8"));
    } catch {
      return {}; // absent, or unreadable: load() has already refused a damaged file
    }
    if (!isObject(document) || document.dts_checkpoints !== FORMAT_VERSION || !isObject(document.pipelines)) return {};
    const others = { ...(document.pipelines as Record<string, JsonValue>) };
    delete others[this.pipeline];
    return others;
  }
}

function checkpointJson(checkpoint: SourceCheckpoint): JsonValue {
  const out: { [key: string]: JsonValue } = {
    position: checkpoint.position === null ? null : { kind: checkpoint.position.kind, token: checkpoint.position.token },
  };
  if (checkpoint.state !== undefined) out.state = checkpoint.state;
  return out;
}

export function parseCheckpointFile(text: string, path: string, pipeline: string): Record<string, SourceCheckpoint> {
  const fail = (problem: string): never => {
    throw new ConnectorError(
      `the checkpoint file ${path} ${problem}; move it away to start from the beginning`,
      false,
    );
  };
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return fail(`is not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(document) || document.dts_checkpoints !== FORMAT_VERSION || !isObject(document.pipelines)) {
    return fail(`is not a dts checkpoint file of version ${FORMAT_VERSION}`);
  }
  const entry = document.pipelines[pipeline];
  if (entry === undefined) return {};
  if (!isObject(entry) || !isObject(entry.sources)) return fail(`has a malformed entry for pipeline "${pipeline}"`);
  const sources = entry.sources;
  const result: Record<string, SourceCheckpoint> = {};
  for (const [name, entry] of Object.entries(sources)) {
    if (!isObject(entry)) return fail(`has a malformed checkpoint for source "${name}"`);
    const position = entry.position;
    if (position !== null && !(isObject(position) && typeof position.kind === "string" && typeof position.token === "string")) {
      return fail(`has a malformed position for source "${name}"`);
    }
    result[name] = {
      position: position === null ? null : { kind: position.kind as string, token: position.token as string },
      ...(entry.state !== undefined ? { state: entry.state as JsonValue } : {}),
    };
  }
  return result;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Replaces `path` with `text` so that a crash at any point leaves the old or the new file. */
export async function writeFileAtomically(path: string, text: string, tempName: string): Promise<void> {
  const folder = dirname(path);
  const temp = join(folder, tempName);
  try {
    const handle = await open(temp, "w", 0o644);
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw new ConnectorError(`cannot write the checkpoint file ${path}: ${(error as Error).message}`, isTransient(error), {
      cause: error,
    });
  }
  await syncFolder(folder);
}

async function syncFolder(folder: string): Promise<void> {
  let handle;
  try {
    handle = await open(folder, "r");
    await handle.sync();
  } catch (error) {
    // Some file systems (and Windows) cannot fsync a directory; the rename is then as durable
    // as the platform makes it, which is all we can do.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "EBADF") throw error;
  } finally {
    await handle?.close();
  }
}

function isTransient(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EAGAIN" || code === "EBUSY" || code === "EMFILE" || code === "ENFILE" || code === "EINTR";
}
