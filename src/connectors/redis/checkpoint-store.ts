/**
 * Checkpoints kept in Redis (`checkpoint: "redis"`), in one hash per pipeline:
 *
 *   dts:checkpoints:<pipeline>   field = source name,
 *                                value = {"checkpoint": {"position", "state"}, "saved_at": ISO}
 *
 * The sink writes its field inside the same MULTI as the events it covers (`saveCommand`), so
 * the data and the position commit together or not at all. `load` and `save` use a
 * connection of their own, so that a save never lands between a write's WATCH and its EXEC.
 *
 * The pipeline's lock is the key `dts:lock:<pipeline>`, holding {"id", "name", "pid", "host",
 * "started"}: the CLIENT ID and the unique CLIENT SETNAME of a connection kept open for it. Like
 * PostgreSQL's session lock, it lasts as long as that connection: a lock whose connection is
 * gone (`CLIENT LIST ID` does not show it under that name — ids start again from 1 after a
 * restart, so the name is what tells) is stale and taken over with a compare-and-set script,
 * so a killed run leaves no lock behind. The lock is fenced: each write that stores
 * checkpoints WATCHes the lock key, so a run whose lock another run took over cannot commit.
 * When the lock's connection drops (the server restarted), the runner takes it again
 * (`retaking`); a lock still naming this run's own previous connection, which the server has
 * not noticed is gone, is this run's and is taken over.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import type { JsonValue } from "../../model/json-value.js";
import { ConnectorError, type CheckpointStore, type Logger, type SourceCheckpoint } from "../../runtime/contracts.js";
import { PipelineLockedError, processIsGone } from "../../runtime/run-lock.js";
import type { CheckpointStoreFactory } from "../capabilities.js";
import { connect, connectorError, serverLabel } from "./client.js";

export function checkpointKey(pipeline: string): string {
  return `dts:checkpoints:${pipeline}`;
}

export function lockKey(pipeline: string): string {
  return `dts:lock:${pipeline}`;
}

interface LockHolder {
  readonly id: number;
  readonly name: string;
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

/** Sets KEYS[1] to ARGV[2] only while it still holds ARGV[1] (or nothing, when ARGV[1] is empty). */
const COMPARE_AND_SET = `local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0`;

/** Deletes KEYS[1] only while it holds ARGV[1]. */
const COMPARE_AND_DELETE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class RedisCheckpointStore implements CheckpointStore {
  private client: Redis | undefined;
  private readonly server: string;
  readonly key: string;
  readonly lockKey: string;
  /** The lock's value while this run holds it: what a write's WATCH must still find. */
  heldLock: string | undefined;
  /** The lock's connection name this run used last, to recognise it if it lingers. */
  private lockName: string | undefined;
  private lostHandler: ((error: Error) => void) | undefined;

  constructor(
    private readonly url: string,
    private readonly pipeline: string,
    private readonly connectionName: string,
  ) {
    this.server = serverLabel(url);
    this.key = checkpointKey(pipeline);
    this.lockKey = lockKey(pipeline);
  }

  get location(): string {
    return `the Redis hash ${this.key}`;
  }

  /** The fields to HSET into `key`, in the write's MULTI. */
  fieldsFor(checkpoints: Readonly<Record<string, SourceCheckpoint>>): string[] {
    const savedAt = new Date().toISOString();
    const args: string[] = [];
    for (const [source, checkpoint] of Object.entries(checkpoints)) {
      args.push(source, JSON.stringify({ checkpoint: checkpointJson(checkpoint), saved_at: savedAt }));
    }
    return args;
  }

  async load(): Promise<Readonly<Record<string, SourceCheckpoint>>> {
    const stored = await this.read("reading the checkpoints");
    return Object.fromEntries([...stored].map(([source, entry]) => [source, entry.checkpoint]));
  }

  async savedAt(): Promise<ReadonlyMap<string, Date>> {
    const stored = await this.read("reading the checkpoints");
    return new Map([...stored].map(([source, entry]) => [source, entry.savedAt]));
  }

  async save(checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    const fields = this.fieldsFor(checkpoints);
    if (fields.length === 0) return;
    try {
      const client = await this.connection();
      if (this.heldLock === undefined) {
        await client.hset(this.key, ...fields);
        return;
      }
      // Fenced like a write: stored only while this run still holds the lock.
      await client.watch(this.lockKey);
      if ((await client.get(this.lockKey)) !== this.heldLock) {
        await client.unwatch();
        throw this.lockTaken();
      }
      const done = await client.multi().hset(this.key, ...fields).exec();
      if (done === null) throw this.lockTaken();
    } catch (error) {
      throw this.failure(error, "saving the checkpoints");
    }
  }

  async forget(): Promise<boolean> {
    try {
      return (await (await this.connection()).del(this.key)) > 0;
    } catch (error) {
      throw this.failure(error, "removing the checkpoints");
    }
  }

  async lock(options: { readonly log: Logger; readonly onLost: (error: Error) => void; readonly retaking?: boolean }): Promise<() => Promise<void>> {
    const name = `dts-lock-${randomBytes(8).toString("hex")}`;
    let client: Redis;
    try {
      client = await connect(this.url, { name });
    } catch (error) {
      // The first thing a run asks of this server: one that refuses at start is most likely a
      // wrong URL or a stopped server, said at once; while retaking, it is restarting.
      if (!options.retaking && error instanceof ConnectorError && /ECONNREFUSED|ENOTFOUND/.test(error.message)) {
        throw new ConnectorError(`taking the pipeline's lock: ${error.message}`, false, { cause: error.cause });
      }
      throw error;
    }
    let value: string;
    try {
      const id = Number(await client.client("ID"));
      value = JSON.stringify({ id, name, pid: process.pid, host: hostname(), started: new Date().toISOString() } satisfies LockHolder);
      if ((await client.set(this.lockKey, value, "NX")) !== "OK") await this.takeOver(client, value, options);
    } catch (error) {
      client.disconnect();
      throw error instanceof PipelineLockedError ? error : connectorError(error, this.server, "taking the pipeline's lock");
    }
    this.heldLock = value;
    this.lockName = name;
    let ended = false;
    const lost = (): void => {
      if (ended) return;
      ended = true;
      if (this.heldLock === value) this.heldLock = undefined;
      options.onLost(new ConnectorError(`the connection holding the lock of pipeline "${this.pipeline}" on ${this.server} ended`, true));
    };
    this.lostHandler = lost;
    client.on("close", lost);
    return async () => {
      if (ended) return;
      ended = true;
      this.heldLock = undefined;
      await client.eval(COMPARE_AND_DELETE, 1, this.lockKey, value).catch(() => {});
      client.disconnect();
    };
  }

  /** A write found the lock key changed: whether this run still holds it (else the lock is lost, and said so). */
  async checkLock(client: Redis): Promise<boolean> {
    const held = this.heldLock;
    if (held === undefined) return false;
    if ((await client.get(this.lockKey)) === held) return true;
    this.heldLock = undefined;
    this.lostHandler?.(this.lockTaken());
    return false;
  }

  /** Takes the lock from a holder whose connection is gone, or throws. */
  private async takeOver(client: Redis, value: string, options: { readonly log: Logger; readonly retaking?: boolean }): Promise<void> {
    const current = await client.get(this.lockKey);
    if (current === null) {
      if (Number(await client.eval(COMPARE_AND_SET, 1, this.lockKey, "", value)) === 1) return;
      throw new ConnectorError(`the lock of pipeline "${this.pipeline}" on ${this.server} changed while being taken`, true);
    }
    const holder = parseHolder(current);
    if (holder === undefined) {
      throw new PipelineLockedError(this.pipeline, `pipeline "${this.pipeline}" cannot take its lock: ${this.lockKey} in ${this.server} holds a value dts did not write; if no dts-run of it runs, DEL ${this.lockKey}`);
    }
    const alive = await connectionAlive(client, holder);
    if (alive && options.retaking && holder.name === this.lockName) {
      // This run's own previous connection, which the server has not noticed is gone.
      options.log.warn("the pipeline's lock is still held by this run's previous connection; ending it", { client_id: holder.id });
      await client.client("KILL", "ID", String(holder.id)).catch(() => {});
    } else if (alive) {
      throw this.lockedError(holder);
    } else {
      options.log.info("taking over the pipeline's lock from a connection that is gone", { pid: holder.pid, host: holder.host });
    }
    if (Number(await client.eval(COMPARE_AND_SET, 1, this.lockKey, current, value)) !== 1) {
      throw new ConnectorError(`the lock of pipeline "${this.pipeline}" on ${this.server} changed while being taken over`, true);
    }
  }

  private lockedError(holder: LockHolder): Error {
    const running = `pipeline "${this.pipeline}" is already running`;
    const lock = `its lock ${this.lockKey} in ${this.server}`;
    if (processIsGone(holder.pid, holder.host)) {
      return new ConnectorError(
        `the lock of pipeline "${this.pipeline}" in ${this.server} is still held by connection ${holder.id} of dts-run pid ${holder.pid}, which no longer runs; ` +
          `if the server does not end it, run CLIENT KILL ID ${holder.id}`,
        true,
      );
    }
    return new PipelineLockedError(
      this.pipeline,
      `${running}: dts-run pid ${holder.pid} on host ${holder.host} holds ${lock} (since ${holder.started}), on connection ${holder.id}; ` +
        `stop the other dts-run (pid ${holder.pid}) or, if it is gone, end its connection: CLIENT KILL ID ${holder.id}`,
    );
  }

  private lockTaken(): ConnectorError {
    return new ConnectorError(`the lock of pipeline "${this.pipeline}" on ${this.server} was taken by another run`, true);
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    client?.disconnect();
  }

  private async read(doing: string): Promise<Map<string, { checkpoint: SourceCheckpoint; savedAt: Date }>> {
    let stored: Record<string, string>;
    try {
      stored = await (await this.connection()).hgetall(this.key);
    } catch (error) {
      throw this.failure(error, doing);
    }
    const out = new Map<string, { checkpoint: SourceCheckpoint; savedAt: Date }>();
    for (const [source, text] of Object.entries(stored)) out.set(source, this.parse(source, text));
    return out;
  }

  private parse(source: string, text: string): { checkpoint: SourceCheckpoint; savedAt: Date } {
    const malformed = (): ConnectorError =>
      new ConnectorError(
        `the checkpoint of source "${source}" in ${this.key} on ${this.server} is malformed; delete it (HDEL ${this.key} ${source}) to start that source from the beginning`,
        false,
      );
    let entry: { checkpoint?: { position?: unknown; state?: JsonValue }; saved_at?: unknown };
    try {
      entry = JSON.parse(text) as typeof entry;
    } catch {
      throw malformed();
    }
    const position = entry?.checkpoint?.position as { kind?: unknown; token?: unknown } | null | undefined;
    if (position === undefined || (position !== null && (typeof position.kind !== "string" || typeof position.token !== "string"))) throw malformed();
    const checkpoint: SourceCheckpoint = {
      position: position === null ? null : { kind: position.kind as string, token: position.token as string },
      ...(entry.checkpoint!.state !== undefined ? { state: entry.checkpoint!.state } : {}),
    };
    return { checkpoint, savedAt: new Date(typeof entry.saved_at === "string" ? entry.saved_at : 0) };
  }

  private async connection(): Promise<Redis> {
    if (this.client !== undefined) return this.client;
    this.client = await connect(this.url, { name: this.connectionName });
    return this.client;
  }

  private failure(error: unknown, doing: string): ConnectorError {
    return connectorError(error, this.server, doing);
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(text) as Partial<LockHolder>;
    if (typeof holder.id === "number" && typeof holder.name === "string") return holder as LockHolder;
  } catch {
    // not ours: treated as a holder that cannot be checked
  }
  return undefined;
}

/** Whether the connection that took the lock is still connected (same id and name). */
async function connectionAlive(client: Redis, holder: LockHolder): Promise<boolean> {
  const listed = String(await client.client("LIST", "ID", String(holder.id)));
  return new RegExp(`(^|\\s)name=${holder.name}(\\s|$)`).test(listed);
}

export function checkpointJson(checkpoint: SourceCheckpoint): JsonValue {
  const out: { [key: string]: JsonValue } = {
    position: checkpoint.position === null ? null : { kind: checkpoint.position.kind, token: checkpoint.position.token },
  };
  if (checkpoint.state !== undefined) out.state = checkpoint.state;
  return out;
}

/** The store of a sink's server, for the tools (`dts status`, `dts drop`). */
export const openCheckpointStore: CheckpointStoreFactory = (context) => {
  const url = context.options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError(`redis sink ${context.name}: option url is required`, false);
  return new RedisCheckpointStore(url, context.pipeline, `dts ${context.tool}`);
};
