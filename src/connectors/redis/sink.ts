/**
 * The Redis sink: one key per row, written by one pipelined round trip per write.
 *
 * A write is planned in two passes. The first turns each event into a step — delete, a whole
 * row, or a patch (an update that lacks columns its table has, PostgreSQL's unchanged TOASTed
 * values) — with its key and, when an update changed the key, the old key it moves from. A
 * patch needs the stored row of its key (or, when it moves, of the new key if the replay of a
 * crash already moved it there, else of the old one), unless an earlier step of the same write
 * made it: those keys are read first, under WATCH, in one round trip. The second pass runs the
 * steps in order over what is known of each key and makes the commands: a JSON patch is the
 * stored document with the update's fields put in (fields.ts keeps the other values' text as
 * it is), a hash patch sets only the fields it has, a move deletes the old key and writes the
 * whole merged row at the new one.
 *
 * The commands travel as the arguments of a few calls of one Lua script (APPLY_SCRIPT: ioredis
 * costs far more per command than Redis does). The calls go in one MULTI/EXEC when the write
 * must be atomic as a whole (it stores checkpoints, read keys under WATCH, or moves a key);
 * otherwise in a plain pipeline, since each command sets a key to a value or deletes it, and
 * applying a write again from its start after a failure leaves the same keys. An EXEC that a WATCHed key aborted (another writer changed it in
 * between) is planned and tried again; one the lock's key aborted means another run took the
 * pipeline's lock.
 *
 * Which columns a table has is learned from what the sink sees: the columns of inserts,
 * snapshot rows and whole updates, and the fields of stored rows it reads. An update with all of
 * them is whole and needs no read.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { encodeJson } from "../../model/json.js";
import type { ChangeEvent } from "../../model/event.js";
import type { Row } from "../../model/value.js";
import { stringOption } from "../../runtime/connector-options.js";
import { ConnectorError, type Rejection, type SinkBatch, type SinkContext, type SinkEvent, type SinkFactory, type SinkWriter } from "../../runtime/contracts.js";
import { RedisCheckpointStore } from "./checkpoint-store.js";
import { connect, connectorError, serverLabel } from "./client.js";
import { documentOf, fieldsOf, hashText, keyText, splitDocument, type Fields, type Format, type Stored } from "./fields.js";

export const createSink: SinkFactory = (context) => new RedisSink(context);

type Step =
  | { readonly kind: "reject"; readonly index: number; readonly reason: string }
  | { readonly kind: "delete"; readonly index: number; readonly key: string; readonly event: SinkEvent }
  /** A whole row: `row` is every column. */
  | { readonly kind: "row"; readonly index: number; readonly key: string; readonly from: string | undefined; readonly row: Row; readonly event: SinkEvent }
  /** An update lacking columns its table has: merged into the stored row. */
  | { readonly kind: "patch"; readonly index: number; readonly key: string; readonly from: string | undefined; readonly row: Row; readonly event: SinkEvent };

/** What a write knows of a key: its stored fields, null when it is not there. */
type Known = Fields | null;

type Command = (string | Buffer | number)[];

/**
 * Runs a list of commands given as ARGV: for each, its argument count and then the command and
 * its arguments. The client pays for each command it sends (ioredis makes an object, a promise
 * and a reply for each: on a busy machine 6,000 SETs a second in a pipeline), so a write sends
 * its commands as a few calls of this script — atomic each, as a script is — at the server's
 * pace. Keys travel in ARGV, which Redis Cluster would not allow; the sink does not support it.
 */
const APPLY_SCRIPT = `local i = 1
local n = #ARGV
while i <= n do
  local count = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + count))
  i = i + count + 1
end
return n`;
const APPLY_SHA = createHash("sha1").update(APPLY_SCRIPT).digest("hex");

/** Commands per script call: each call holds the server for a few milliseconds at most. */
const COMMANDS_PER_CALL = 1000;

/** The commands as the ARGV of script calls. */
function scriptCalls(commands: readonly Command[]): Command[] {
  const calls: Command[] = [];
  for (let start = 0; start < commands.length; start += COMMANDS_PER_CALL) {
    const args: Command = [];
    for (const command of commands.slice(start, start + COMMANDS_PER_CALL)) {
      args.push(String(command.length));
      for (const arg of command) args.push(typeof arg === "number" ? String(arg) : arg);
    }
    calls.push(args);
  }
  return calls;
}

/** Aborted EXECs (a WATCHed key changed) before a write gives up for this attempt. */
const MAX_CONFLICTS = 20;

class RedisSink implements SinkWriter {
  readonly checkpoints: RedisCheckpointStore;
  private client: Redis | undefined;
  private readonly url: string;
  private readonly server: string;
  private readonly format: Format;
  private readonly ttl: number | undefined;
  /** Per target table: the columns seen (learned, see the file's comment). */
  private readonly columns = new Map<string, Set<string>>();

  constructor(private readonly context: SinkContext) {
    this.url = stringOption(context.options, "redis", "url")!;
    this.server = serverLabel(this.url);
    const format = stringOption(context.options, "redis", "format", "json")!;
    if (format !== "json" && format !== "hash") throw new ConnectorError(`redis: option format must be "json" or "hash", found "${format}"`, false);
    this.format = format;
    const ttl = context.options.ttl;
    if (ttl !== undefined && ttl !== null) {
      if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 1) throw new ConnectorError(`redis: option ttl must be a whole number of seconds, at least 1`, false);
      this.ttl = ttl;
    }
    this.checkpoints = new RedisCheckpointStore(this.url, context.pipeline, `dts ${context.pipeline} sink ${context.name} checkpoints`);
  }

  async start(): Promise<void> {
    this.client = await connect(this.url, { name: `dts ${this.context.pipeline} sink ${this.context.name}`, log: this.context.log });
    try {
      await this.client.script("LOAD", APPLY_SCRIPT);
    } catch (error) {
      throw connectorError(error, this.server, "loading the sink's script");
    }
  }

  async close(): Promise<void> {
    this.client?.disconnect();
    this.client = undefined;
    await this.checkpoints.close();
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    if (batch.events.length === 0 && batch.checkpoints === undefined) return [];
    const client = this.client;
    if (client === undefined) throw new ConnectorError(`sink ${this.context.name}: not started`, false);
    for (let conflicts = 0; ; conflicts++) {
      let result: Awaited<ReturnType<RedisSink["attempt"]>>;
      try {
        result = await this.attempt(client, batch);
      } catch (error) {
        await client.unwatch().catch(() => {});
        throw connectorError(error, this.server, `writing to sink ${this.context.name}`);
      }
      if (result === "lock lost") {
        // The runner holds writes and takes the lock again, or stops if another run has it.
        throw new ConnectorError(`sink ${this.context.name}: the pipeline's lock on ${this.server} is no longer this run's; nothing of the write was applied`, true);
      }
      if (result !== "conflict") return result;
      if (conflicts + 1 >= MAX_CONFLICTS) {
        throw new ConnectorError(
          `writing to sink ${this.context.name} on ${this.server}: the keys it reads kept changing under it (${MAX_CONFLICTS} aborted transactions); another writer is changing them`,
          true,
        );
      }
    }
  }

  private async attempt(client: Redis, batch: SinkBatch): Promise<readonly Rejection[] | "conflict" | "lock lost"> {
    const { steps, reads } = this.plan(batch.events);
    const lock = this.checkpoints.heldLock;
    const fence = batch.checkpoints !== undefined && lock !== undefined;
    const watched = [...reads.keys()];
    if (fence) watched.push(this.checkpoints.lockKey);
    if (watched.length > 0) await client.watch(...watched);
    const stored = reads.size > 0 ? await this.read(client, reads) : new Map<string, Known>();
    const { commands, rejections, moves } = this.commands(steps, stored);
    const storeCheckpoints = batch.checkpoints !== undefined && rejections.length === 0;
    if (storeCheckpoints) commands.push(["hset", this.checkpoints.key, ...this.checkpoints.fieldsFor(batch.checkpoints!)]);
    if (commands.length === 0) {
      if (watched.length > 0) await client.unwatch();
      return rejections;
    }
    const atomic = watched.length > 0 || storeCheckpoints || moves;
    const scripts = scriptCalls(commands);
    let results = await this.run(client, scripts, atomic);
    if (results !== null && results.some(([error]) => error !== null && /^NOSCRIPT/.test(error.message))) {
      // The server lost its script cache (it restarted): no call ran, since a missing script
      // fails before running. Loaded again, the write goes again.
      await client.script("LOAD", APPLY_SCRIPT);
      if (watched.length > 0) return "conflict";
      results = await this.run(client, scripts, atomic);
    }
    if (results === null) {
      if (fence && !(await this.checkpoints.checkLock(client))) return "lock lost";
      return "conflict";
    }
    for (const [error] of results) {
      if (error) throw connectorError(error, this.server, "applying the write");
    }
    return rejections;
  }

  /** The script calls, in one MULTI/EXEC (null: a WATCHed key changed) or one pipeline. */
  private async run(client: Redis, scripts: readonly Command[], atomic: boolean): Promise<[Error | null, unknown][] | null> {
    const calls = scripts.map((args) => ["evalsha", APPLY_SHA, "0", ...args]);
    return atomic ? await client.multi(calls).exec() : await client.pipeline(calls).exec();
  }

  // ---------------------------------------------------------------- first pass

  private plan(events: readonly SinkEvent[]): { steps: Step[]; reads: Map<string, string> } {
    const steps: Step[] = [];
    /** Keys to read before the write → their target table. */
    const reads = new Map<string, string>();
    /** Keys whose content an earlier step of the write sets (or deletes). */
    const made = new Set<string>();
    for (let index = 0; index < events.length; index++) {
      const sinkEvent = events[index]!;
      const event = sinkEvent.event;
      let key: string;
      let from: string | undefined;
      try {
        key = this.keyOf(sinkEvent);
        if (event.op === "update" && event.before !== null) {
          const old = this.keyOf({ ...sinkEvent, event: oldImage(event) });
          if (old !== key) from = old;
        }
      } catch (error) {
        steps.push({ kind: "reject", index, reason: (error as Error).message });
        continue;
      }
      if (event.op === "delete") {
        steps.push({ kind: "delete", index, key, event: sinkEvent });
        made.add(key);
        continue;
      }
      const row = event.after ?? {};
      const known = this.knownColumns(sinkEvent.target);
      if (event.op !== "update") {
        for (const column of Object.keys(row)) known.add(column);
      }
      if (event.op !== "update" || isWhole(row, known)) {
        for (const column of Object.keys(row)) known.add(column);
        steps.push({ kind: "row", index, key, from, row, event: sinkEvent });
        made.add(key);
        if (from !== undefined) made.add(from);
        continue;
      }
      steps.push({ kind: "patch", index, key, from, row, event: sinkEvent });
      if (!made.has(key)) reads.set(key, sinkEvent.target);
      if (from !== undefined && !made.has(from)) reads.set(from, sinkEvent.target);
      made.add(key);
      if (from !== undefined) made.add(from);
    }
    return { steps, reads };
  }

  private keyOf(sinkEvent: SinkEvent): string {
    const template = this.context.eventOptions.key;
    if (template !== undefined) {
      const value = template(sinkEvent);
      if (value === null) throw new Error(`sink ${this.context.name}: its key is null for this event`);
      const key = typeof value === "string" ? value : keyText(value);
      if (key === "") throw new Error(`sink ${this.context.name}: its key is empty for this event`);
      return key;
    }
    const fixed = this.context.options.key;
    if (typeof fixed === "string") return fixed;
    const parts = Object.values(sinkEvent.event.key);
    if (parts.length === 0) throw new Error(`sink ${this.context.name}: the event has no key columns, so it has no default key; set the option key`);
    return `${sinkEvent.target}:${parts.map(keyText).join(":")}`;
  }

  private knownColumns(target: string): Set<string> {
    let known = this.columns.get(target);
    if (known === undefined) this.columns.set(target, (known = new Set()));
    return known;
  }

  private async read(client: Redis, reads: ReadonlyMap<string, string>): Promise<Map<string, Known>> {
    const keys = [...reads.keys()];
    const pipeline = client.pipeline();
    for (const key of keys) {
      if (this.format === "json") pipeline.get(key);
      else pipeline.hgetallBuffer(key);
    }
    const results = (await pipeline.exec()) ?? [];
    const stored = new Map<string, Known>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const [error, value] = results[i] ?? [new Error("no reply")];
      if (error) throw connectorError(error, this.server, `reading ${key}`);
      const fields = this.format === "json" ? this.parseDocument(key, value as string | null) : hashFields(value as Record<string, Buffer>);
      stored.set(key, fields);
      if (fields !== null) {
        const known = this.knownColumns(reads.get(key)!);
        for (const column of fields.keys()) known.add(column);
      }
    }
    return stored;
  }

  private parseDocument(key: string, text: string | null): Known {
    if (text === null) return null;
    const fields = splitDocument(text);
    if (fields === undefined) {
      throw new ConnectorError(`sink ${this.context.name}: key ${key} on ${this.server} holds text that is not a JSON object, so an update cannot be merged into it; another writer uses the key — delete it or change the sink's key`, false);
    }
    return fields;
  }

  // ---------------------------------------------------------------- second pass

  private commands(steps: readonly Step[], stored: ReadonlyMap<string, Known>): { commands: Command[]; rejections: Rejection[]; moves: boolean } {
    const commands: Command[] = [];
    const rejections: Rejection[] = [];
    const known = new Map<string, Known | Row>(stored);
    let moves = false;
    let skipped = 0;
    let firstSkipped = "";
    const fieldsAt = (key: string): Known | undefined => {
      const value = known.get(key);
      if (value === undefined || value === null || value instanceof Map) return value;
      const fields = fieldsOf(value, this.format);
      known.set(key, fields);
      return fields;
    };
    for (const step of steps) {
      switch (step.kind) {
        case "reject":
          rejections.push({ index: step.index, reason: step.reason });
          break;
        case "delete":
          commands.push(["del", step.key]);
          known.set(step.key, null);
          this.publish(commands, step.event, step.key, undefined);
          break;
        case "row":
          if (step.from !== undefined) {
            moves = true;
            commands.push(["del", step.from]);
            known.set(step.from, null);
          }
          this.writeRow(commands, step.key, step.row);
          known.set(step.key, step.row);
          this.publish(commands, step.event, step.key, step.from);
          break;
        case "patch": {
          const base = (step.from !== undefined ? (fieldsAt(step.key) ?? fieldsAt(step.from)) : fieldsAt(step.key)) ?? null;
          if (base === null) {
            const missing = this.missing(step);
            if (missing !== undefined) rejections.push(missing);
            else {
              skipped++;
              firstSkipped ||= step.key;
            }
            break;
          }
          const update = fieldsOf(step.row, this.format);
          const merged: Fields = new Map(base);
          for (const [name, value] of update) merged.set(name, value);
          if (this.format === "hash") for (const [name, value] of update) if (value === null) merged.delete(name);
          if (step.from !== undefined) {
            moves = true;
            commands.push(["del", step.from]);
            known.set(step.from, null);
            this.writeFields(commands, step.key, merged);
          } else if (this.format === "json") {
            this.writeFields(commands, step.key, merged);
          } else {
            this.patchHash(commands, step.key, update);
          }
          known.set(step.key, merged);
          this.publish(commands, step.event, step.key, step.from);
          break;
        }
      }
    }
    if (skipped > 0) {
      this.context.log.warn(
        `skipped ${skipped} update${skipped === 1 ? "" : "s"} that lack columns (unchanged values the source did not send) for keys the cache does not have (expired, evicted, or deleted by a later change being replayed); the keys stay missing`,
        { first: firstSkipped },
      );
    }
    return { commands, rejections, moves };
  }

  /** An update lacking columns whose stored row is not there: skipped (undefined) or rejected. */
  private missing(step: Extract<Step, { kind: "patch" }>): Rejection | undefined {
    // A key that expires is expected to be missing; a write that may be a replay finds the
    // row deleted by a later change it goes on to.
    if (this.ttl !== undefined || this.context.mayReplay !== false) return undefined;
    const known = this.columns.get(step.event.target) ?? new Set<string>();
    const absent = [...known].filter((column) => !Object.hasOwn(step.row, column));
    return {
      index: step.index,
      reason:
        `redis key ${step.key}${step.from === undefined ? "" : ` (moved from ${step.from})`}: the update leaves out column${absent.length === 1 ? "" : "s"} ${absent.join(", ")} ` +
        `(unchanged values the source did not send, such as PostgreSQL's unchanged TOASTed values) and the cache does not have the row, so there is no stored value to keep; ` +
        `set REPLICA IDENTITY FULL on the source table so that updates carry every column`,
    };
  }

  private writeRow(commands: Command[], key: string, row: Row): void {
    if (this.format === "json") {
      commands.push(this.ttl === undefined ? ["set", key, encodeJson(row)] : ["set", key, encodeJson(row), "EX", this.ttl]);
      return;
    }
    const args: Command = ["hset", key];
    for (const name of Object.keys(row)) {
      const text = hashText(row[name]!);
      if (text !== null) args.push(name, text);
    }
    commands.push(["del", key]);
    if (args.length > 2) commands.push(args);
    if (this.ttl !== undefined && args.length > 2) commands.push(["expire", key, this.ttl]);
  }

  private writeFields(commands: Command[], key: string, fields: Fields): void {
    if (this.format === "json") {
      const document = documentOf(fields);
      commands.push(this.ttl === undefined ? ["set", key, document] : ["set", key, document, "EX", this.ttl]);
      return;
    }
    const args: Command = ["hset", key];
    for (const [name, text] of fields) if (text !== null) args.push(name, text);
    commands.push(["del", key]);
    if (args.length > 2) commands.push(args);
    if (this.ttl !== undefined && args.length > 2) commands.push(["expire", key, this.ttl]);
  }

  private patchHash(commands: Command[], key: string, update: Fields): void {
    const set: Command = ["hset", key];
    const remove: Command = ["hdel", key];
    for (const [name, text] of update) {
      if (text === null) remove.push(name);
      else set.push(name, text);
    }
    if (set.length > 2) commands.push(set);
    if (remove.length > 2) commands.push(remove);
    if (this.ttl !== undefined) commands.push(["expire", key, this.ttl]);
  }

  private publish(commands: Command[], sinkEvent: SinkEvent, key: string, from: string | undefined): void {
    const option = this.context.eventOptions.publish;
    const channel = option !== undefined ? option(sinkEvent) : this.context.options.publish;
    if (channel === undefined || channel === null || channel === "") return;
    const message: Record<string, string> = { op: sinkEvent.event.op, key, table: sinkEvent.target };
    if (from !== undefined) message.from = from;
    commands.push(["publish", typeof channel === "string" ? channel : keyText(channel), JSON.stringify(message)]);
  }
}

/** An update's event as it was before: its old key, for the key template. */
function oldImage(event: ChangeEvent): ChangeEvent {
  const before = event.before!;
  const key: Row = {};
  for (const column of Object.keys(event.key)) key[column] = Object.hasOwn(before, column) ? before[column]! : event.key[column]!;
  return { ...event, op: "delete", after: null, before, key };
}

function isWhole(row: Row, known: ReadonlySet<string>): boolean {
  if (known.size === 0) return false;
  for (const column of known) if (!Object.hasOwn(row, column)) return false;
  return true;
}

function hashFields(value: Record<string, Buffer>): Known {
  const names = Object.keys(value);
  if (names.length === 0) return null;
  const fields: Fields = new Map();
  for (const name of names) fields.set(name, value[name]! as Stored);
  return fields;
}
