/**
 * The change stream: a logical replication connection reading the slot with pgoutput, turned
 * into batches of change events, with memory bounded whatever the backlog.
 *
 * The protocol is spoken directly on a node-postgres client opened with `replication=database`
 * (START_REPLICATION, then CopyBoth: XLogData `w` and keepalive `k` frames in, standby status
 * updates `r` out), for flow control (why no library: docs/performance.md, "The change stream
 * reads at the sinks' pace"). Each frame is decoded into events on arrival into a queue, and
 * when the queue holds `queueEvents` events or `queueBytes` bytes of WAL messages, the socket
 * itself is paused; TCP then pushes back on the walsender. The heap holds at most the queue plus
 * one socket read. While paused we still send status updates on a timer: the server measures
 * `wal_sender_timeout` from our last message, not from its last read.
 *
 * Positions. Every event of a transaction carries the transaction's commit LSN (the LSN of its
 * commit record, which pgoutput sends in Begin): one position per transaction, increasing in
 * stream order, the same for every event of it. A batch's checkpoint is the commit's *end* LSN,
 * the first WAL byte after the transaction; acknowledging it makes the slot's
 * `confirmed_flush_lsn` that value, and the server never sends again a transaction whose
 * commit record starts before it. Resuming at a checkpoint C, a transaction is skipped when its
 * commit LSN is below C (the server may still send it), so nothing is applied twice that was
 * durable, and nothing after C is skipped.
 *
 * Batches end at transaction boundaries: consecutive small transactions share a batch (up to
 * `batchEvents` events), carrying the last one's checkpoint; a larger transaction is split
 * into batches without checkpoint, its last part carrying it.
 *
 * Markers. Two things need a point in the stream that is not a captured change: the caught-up
 * signal (`--until-caught-up`) and the heartbeat (a slot on a quiet database must move, or the
 * server keeps all WAL written since, by every database, for it). Both write a non-transactional
 * logical message (`pg_logical_emit_message(false, 'dts_heartbeat', '<slot>:<instance>:<n>')`)
 * at the server's current WAL position; pgoutput sends it (`messages 'true'`) once everything
 * before it has been decoded. When ours arrives, everything up to the moment it was written has
 * been delivered, so it becomes a batch without events, `caughtUp: true`, whose checkpoint is the
 * message's LSN: once the runtime has made everything before it durable and acknowledges it,
 * the slot moves past the quiet stretch. A probe is written when the stream has been idle for
 * `idleProbeMs` after new data; a heartbeat every `heartbeatMs` without captured changes.
 *
 * Unchanged TOASTed values (a large value an UPDATE did not touch, which the server does not
 * send) are left out of `after`: absent, so unchanged — a sink keeps the stored value (see
 * SinkWriter). With REPLICA IDENTITY FULL the old row carries them, and `after` is completed
 * from it.
 *
 * Schema changes. A Relation message that shows a captured table's columns or name changed
 * (relation-schemas.ts) becomes a `SchemaChange` on the batch with the next events, which it
 * precedes: a transaction with events before the change is handed over in two parts there, and
 * such a batch is never merged after another, so that a sink applies the change at that point.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { ConnectorError, type Logger, type SchemaChange, type SourceBatch, type SourceCheckpoint } from "../../runtime/contracts.js";
import type { JsonValue } from "../../model/json-value.js";
import type { ChangeEvent, SourceInfo } from "../../model/event.js";
import { bigIntToLsn, pgLsnPosition, type Position } from "../../model/position.js";
import { Timestamp } from "../../model/timestamp.js";
import { setField, type Row, type Value } from "../../model/value.js";
import { connect, describeAddress, endQuietly, messageOf, queryError, quoteIdentifier, quoteLiteral, type ServerAddress } from "./connection.js";
import { takeCopyData } from "./copy-wire.js";
import { parseValue, rowShape, ValueDecodeError, type RowShape, type TypeRegistry } from "./decode.js";
import {
  parseKeepalive,
  parsePgOutput,
  parseXLogData,
  PG_EPOCH_OFFSET_MICROS,
  PgOutputError,
  PRIMARY_KEEPALIVE,
  standbyStatusUpdate,
  UNCHANGED_TOAST,
  XLOG_DATA,
  type PgOutputMessage,
  type ReplicaIdentityCode,
  type TupleValue,
} from "./pgoutput.js";
import { RelationSchemas } from "./relation-schemas.js";
import type { TableDescription } from "./tables.js";

export const MARKER_PREFIX = "dts_heartbeat";

export interface StreamLimits {
  /** Events per batch at most; a larger transaction is split. */
  readonly batchEvents: number;
  /** The socket is paused while this many events are queued... */
  readonly queueEvents: number;
  /** ...or this many bytes of pgoutput messages; it resumes below half of both. */
  readonly queueBytes: number;
  readonly statusIntervalMs: number;
  /** Idle time after new data before a caught-up probe is written. */
  readonly idleProbeMs: number;
  /** 0: no heartbeat. */
  readonly heartbeatMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  batchEvents: 2000,
  queueEvents: 10_000,
  queueBytes: 16 * 1024 * 1024,
  statusIntervalMs: 10_000,
  idleProbeMs: 100,
  heartbeatMs: 10_000,
};

type Query = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

export interface StreamOptions {
  readonly url: string;
  readonly address: ServerAddress;
  readonly application: string;
  readonly slot: string;
  readonly publication: string;
  /** Where to start; transactions whose commit LSN is below it are skipped. */
  readonly start: bigint;
  /** The flush position to report until something newer is acknowledged. */
  readonly acknowledged: bigint;
  /** Captured tables by `schema.table`; changes of others (a shared publication) are ignored. */
  readonly tables: ReadonlyMap<string, TableDescription>;
  /** The WAL position read just after `tables` were described (relation-schemas.ts). */
  readonly describedAt: bigint;
  /** Told of each schema change of a captured table, when it is found (before its batch is taken). */
  readonly onSchemaChange?: (change: SchemaChange) => void;
  /** Every checkpoint's state: `{ tables }` (see snapshot.ts's CheckpointState). */
  readonly checkpointState: JsonValue;
  readonly types: TypeRegistry;
  /** The catalog connection: loads types, writes markers. */
  readonly catalog: Query;
  readonly database: string;
  readonly resuming: boolean;
  readonly log: Logger;
  readonly limits: StreamLimits;
}

interface Relation {
  readonly qualifiedName: string;
  readonly captured: boolean;
  readonly schema: string;
  readonly table: string;
  readonly shape: RowShape;
  /** Columns the old tuple carries with REPLICA IDENTITY DEFAULT/INDEX. */
  readonly identityIndexes: readonly number[];
  /** Columns of the event's `key`. */
  readonly keyIndexes: readonly number[];
  readonly replicaIdentity: ReplicaIdentityCode;
}

/** Events queued for the consumer; a transaction, part of one, or a marker. */
interface Unit {
  readonly events: ChangeEvent[];
  bytes: number;
  /** Changes of captured tables before the unit's events: a unit with them starts a batch. */
  schemaChanges?: SchemaChange[];
  checkpoint?: SourceCheckpoint;
  caughtUp?: boolean;
}

interface Transaction {
  readonly position: Position;
  readonly commitLsn: bigint;
  readonly ts: Timestamp;
  readonly xid: string;
  readonly skip: boolean;
  unit: Unit;
  readonly sources: Map<number, SourceInfo>;
  captured: number;
}

/** The parts of node-postgres's connection this uses (not in its type declarations). */
interface PgConnection {
  readonly stream: { pause(): void; resume(): void; destroy(): void };
  once(event: "replicationStart", listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
}

export interface StreamStats {
  readonly queuedEvents: number;
  readonly queuedBytes: number;
  readonly paused: boolean;
  /** How many times the socket was paused because the queue was full. */
  readonly pauses: number;
  readonly acknowledged: string;
  readonly received: string;
}

export class ReplicationStream {
  private client: pg.Client | undefined;
  private connection: PgConnection | undefined;
  private readonly relations = new Map<number, Relation>();
  private transaction: Transaction | null = null;
  private readonly ready: Unit[] = [];
  private head = 0;
  private queuedEvents = 0;
  private queuedBytes = 0;
  private paused = false;
  private pauses = 0;
  /** Frames that arrived while a relation's types were being looked up, in order. */
  private backlog: Buffer[] = [];
  private blocked = false;
  private received: bigint;
  private acknowledged: bigint;
  private failure: ConnectorError | undefined;
  private closing = false;
  private wake: (() => void) | undefined;
  private startFailed: ((error: ConnectorError) => void) | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly instance = randomBytes(6).toString("hex");
  private markerSequence = 0;
  private markerOutstanding = false;
  private markerWarned = false;
  /** Data arrived since the last marker was written: a probe is worth writing when idle. */
  private dataSinceMarker = true;
  private changesSinceHeartbeat = false;
  private readonly truncateWarned = new Set<string>();
  private readonly schemas: RelationSchemas;
  /** Schema changes found, waiting for the next event (they go before it). */
  private pendingChanges: SchemaChange[] = [];

  constructor(private readonly options: StreamOptions) {
    this.received = options.start;
    this.acknowledged = options.acknowledged;
    this.schemas = new RelationSchemas({ tables: options.tables.values(), describedAt: options.describedAt, catalog: options.catalog, log: options.log });
  }

  /** Opens the replication connection and starts streaming from `options.start`. */
  async start(): Promise<void> {
    const { url, address, slot, publication, log } = this.options;
    const client = await connect(url, { role: "replication", application: this.options.application, resuming: this.options.resuming });
    this.client = client;
    const connection = (client as unknown as { connection: PgConnection }).connection;
    this.connection = connection;
    client.on("error", (error: unknown) => this.fail(queryError(error, address, "replication connection")));
    client.on("end", () => {
      if (!this.closing) this.fail(new ConnectorError(`PostgreSQL at ${describeAddress(address)}: the replication connection closed`, true));
    });
    // Frames whole, a large one in a buffer of its own size (copy-wire.ts), not node-postgres' doubling one.
    takeCopyData(connection.stream as unknown as NodeJS.ReadableStream, (frame) => this.onFrame(frame));
    const started = new Promise<void>((resolve, reject) => {
      connection.once("replicationStart", resolve);
      this.startFailed = reject;
    });
    const command =
      `START_REPLICATION SLOT ${quoteIdentifier(slot)} LOGICAL ${bigIntToLsn(this.options.start)} ` +
      `(proto_version '1', publication_names ${quoteLiteral(quoteIdentifier(publication))}, messages 'true')`;
    client.query(command).then(
      () => this.fail(new ConnectorError(`PostgreSQL at ${describeAddress(address)} ended the replication stream of slot ${slot}`, true)),
      (error: unknown) => this.fail(this.streamError(error)),
    );
    try {
      await started;
    } catch (error) {
      await this.close();
      throw error;
    }
    this.startFailed = undefined;
    log.info("streaming changes", { slot, publication, from: bigIntToLsn(this.options.start) });
    this.sendStatus(false);
    const { statusIntervalMs, heartbeatMs } = this.options.limits;
    this.every(statusIntervalMs, () => this.sendStatus(false));
    if (heartbeatMs > 0) {
      this.every(heartbeatMs, () => {
        if (!this.changesSinceHeartbeat) this.writeMarker("heartbeat");
        this.changesSinceHeartbeat = false;
      });
    }
  }

  /** The next batch; null once `signal` aborts or the stream is closed. Throws the stream's failure. */
  async next(signal: AbortSignal): Promise<SourceBatch | null> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (signal.aborted || this.closing) return null;
      const batch = this.take();
      if (batch !== undefined) return batch;
      const idle = this.transaction === null && !this.markerOutstanding && this.dataSinceMarker;
      const woken = await this.sleep(signal, idle ? this.options.limits.idleProbeMs : undefined);
      if (!woken && this.head >= this.ready.length && this.transaction === null && this.dataSinceMarker) this.writeMarker("probe");
    }
  }

  /** Everything up to `lsn` is durable: the slot may release the WAL before it. */
  acknowledge(lsn: bigint): void {
    if (lsn <= this.acknowledged) return;
    this.acknowledged = lsn;
    this.sendStatus(false);
  }

  stats(): StreamStats {
    return {
      queuedEvents: this.queuedEvents,
      queuedBytes: this.queuedBytes,
      paused: this.paused,
      pauses: this.pauses,
      acknowledged: bigIntToLsn(this.acknowledged),
      received: bigIntToLsn(this.received),
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    this.wake?.();
    this.startFailed?.(new ConnectorError(`the replication stream of slot ${this.options.slot} was closed while starting`, false));
    const client = this.client;
    if (client === undefined) return;
    // A paused socket never sees the server's end of the connection; let it flow to the end.
    if (this.paused) this.connection?.stream.resume();
    this.backlog = [];
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      endQuietly(client),
      new Promise<void>((resolve) => {
        timeout = setTimeout(() => {
          this.connection?.stream.destroy();
          resolve();
        }, 2000);
      }),
    ]);
    clearTimeout(timeout);
  }

  // ------------------------------------------------------------------ incoming frames

  private onFrame(frame: Buffer): void {
    if (this.closing || this.failure !== undefined) return;
    if (this.blocked || this.backlog.length > 0) {
      // The frame is ours (takeCopyData never reuses its memory): kept as it is.
      this.backlog.push(frame);
      return;
    }
    this.processFrame(frame);
    this.updateFlow();
  }

  private processFrame(frame: Buffer): void {
    try {
      const kind = frame[0];
      if (kind === XLOG_DATA) {
        const header = parseXLogData(frame);
        if (header.walEnd > this.received) this.received = header.walEnd;
        this.handle(parsePgOutput(frame, header.payloadOffset), frame.length - header.payloadOffset);
      } else if (kind === PRIMARY_KEEPALIVE) {
        const keepalive = parseKeepalive(frame);
        if (keepalive.walEnd > this.received) this.received = keepalive.walEnd;
        if (keepalive.replyRequested) this.sendStatus(false);
      }
    } catch (error) {
      if (error instanceof ConnectorError) this.fail(error);
      else if (error instanceof ValueDecodeError || error instanceof PgOutputError) this.fail(new ConnectorError(`slot ${this.options.slot}: ${error.message}`, false, { cause: error }));
      else this.fail(new ConnectorError(`slot ${this.options.slot}: ${messageOf(error)}`, false, { cause: error }));
    }
  }

  private handle(message: PgOutputMessage, bytes: number): void {
    switch (message.tag) {
      case "begin": {
        const position = pgLsnPosition(message.finalLsn);
        this.transaction = {
          position,
          commitLsn: message.finalLsn,
          ts: new Timestamp(message.commitTime + PG_EPOCH_OFFSET_MICROS, true),
          xid: String(message.xid),
          skip: message.finalLsn < this.options.start,
          unit: { events: [], bytes: 0 },
          sources: new Map(),
          captured: 0,
        };
        return;
      }
      case "commit": {
        const transaction = this.transaction;
        this.transaction = null;
        if (transaction === null || transaction.skip) return;
        if (transaction.captured === 0) return;
        transaction.unit.checkpoint = { position: pgLsnPosition(message.endLsn), state: this.options.checkpointState };
        this.push(transaction.unit);
        this.dataSinceMarker = true;
        this.changesSinceHeartbeat = true;
        return;
      }
      case "relation":
        this.relation(message);
        return;
      case "insert":
      case "update":
      case "delete":
        this.change(message, bytes);
        return;
      case "truncate":
        this.truncate(message.relationIds);
        return;
      case "message":
        if (!message.transactional && message.prefix === MARKER_PREFIX) this.marker(message.lsn, message.content.toString("utf8"));
        return;
      case "type":
      case "origin":
        return;
      default: {
        const unreachable: never = message;
        return unreachable;
      }
    }
  }

  private relation(message: Extract<PgOutputMessage, { tag: "relation" }>): void {
    const missing = this.options.types.missing(message.columns.map((column) => column.typeOid));
    const transaction = this.transaction;
    const changed = this.schemas.captured(message.relationId, `${message.schema}.${message.table}`)
      ? this.schemas.observe(message, { commitLsn: transaction?.commitLsn ?? null, replayed: transaction?.skip === true })
      : undefined;
    if (missing.length === 0 && changed === undefined) {
      this.relations.set(message.relationId, this.describeRelation(message));
      return;
    }
    // A type created after start (a new enum, domain, array), or a table whose columns changed:
    // look them up before decoding on.
    this.blocked = true;
    this.updateFlow();
    const types = missing.length === 0 ? undefined : this.options.types.load(this.options.catalog as (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>, missing);
    Promise.all([types, changed])
      .then(([, change]) => {
        this.relations.set(message.relationId, this.describeRelation(message));
        if (change !== undefined) {
          this.pendingChanges.push(change);
          this.options.onSchemaChange?.(change);
        }
        this.blocked = false;
        while (!this.blocked && this.backlog.length > 0 && this.failure === undefined) this.processFrame(this.backlog.shift()!);
        this.updateFlow();
      })
      .catch((error: unknown) => this.fail(queryError(error, this.options.address, `looking up the columns and types of ${message.schema}.${message.table}`)));
  }

  private describeRelation(message: Extract<PgOutputMessage, { tag: "relation" }>): Relation {
    const qualifiedName = `${message.schema}.${message.table}`;
    const captured = this.schemas.captured(message.relationId, qualifiedName);
    const primaryKey = this.schemas.primaryKey(message.relationId, qualifiedName);
    const names = message.columns.map((column) => column.name);
    const identityIndexes = message.columns.flatMap((column, i) => (column.isKey ? [i] : []));
    let keyIndexes: number[];
    if (primaryKey.length > 0 && primaryKey.every((key) => names.includes(key))) {
      keyIndexes = primaryKey.map((key) => names.indexOf(key));
    } else if (identityIndexes.length > 0 && message.replicaIdentity !== "f") {
      keyIndexes = identityIndexes;
    } else {
      keyIndexes = names.map((_, i) => i);
    }
    return {
      qualifiedName,
      captured,
      schema: message.schema,
      table: message.table,
      shape: rowShape(qualifiedName, names, message.columns.map((column) => this.options.types.column(column.typeOid).parse)),
      identityIndexes,
      keyIndexes,
      replicaIdentity: message.replicaIdentity,
    };
  }

  private change(message: Extract<PgOutputMessage, { tag: "insert" | "update" | "delete" }>, bytes: number): void {
    const transaction = this.transaction;
    if (transaction === null) throw new PgOutputError(`${message.tag} outside a transaction`);
    if (transaction.skip) return;
    const relation = this.relations.get(message.relationId);
    if (relation === undefined) throw new PgOutputError(`${message.tag} of relation ${message.relationId} before its Relation message`);
    if (!relation.captured) return;
    let event: ChangeEvent;
    switch (message.tag) {
      case "insert": {
        const after = this.row(relation, message.tuple, null);
        event = { op: "insert", before: null, after, key: this.key(relation, after, null), source: this.source(transaction, message.relationId, relation) };
        break;
      }
      case "update": {
        const before = message.old === null ? null : message.oldKind === "O" ? this.row(relation, message.old, null) : this.identityRow(relation, message.old);
        const after = this.row(relation, message.tuple, message.oldKind === "O" ? before : null);
        event = { op: "update", before, after, key: this.key(relation, after, before), source: this.source(transaction, message.relationId, relation) };
        break;
      }
      case "delete": {
        const before = message.oldKind === "O" ? this.row(relation, message.old, null) : this.identityRow(relation, message.old);
        event = { op: "delete", before, after: null, key: this.key(relation, before, null), source: this.source(transaction, message.relationId, relation) };
        break;
      }
    }
    transaction.captured++;
    let unit = transaction.unit;
    if (this.pendingChanges.length > 0) {
      // The change comes between this transaction's earlier events and this one: a batch of
      // its own from here, so that a sink applies it at that point (rows that existed take an
      // added column's DEFAULT; those inserted after it come with their values).
      if (unit.events.length > 0) {
        this.push(unit);
        unit = transaction.unit = { events: [], bytes: 0 };
      }
      unit.schemaChanges = this.pendingChanges;
      this.pendingChanges = [];
    }
    if (unit.events.length >= this.options.limits.batchEvents) {
      // Too big for one batch: hand the part so far over without a checkpoint.
      this.push(unit);
      unit = transaction.unit = { events: [], bytes: 0 };
    }
    unit.events.push(event);
    unit.bytes += bytes;
    this.queuedEvents++;
    this.queuedBytes += bytes;
  }

  private row(relation: Relation, tuple: readonly TupleValue[], fill: Row | null): Row {
    const row: Row = {};
    const { names, parsers, unsafeNames } = relation.shape;
    let i = 0;
    try {
      for (; i < names.length; i++) {
        const text = tuple[i];
        let value: Value;
        if (text === UNCHANGED_TOAST) {
          if (fill === null || !Object.hasOwn(fill, names[i]!)) continue;
          value = fill[names[i]!]!;
        } else {
          value = text === null || text === undefined ? null : parseValue(parsers[i]!, text);
        }
        if (unsafeNames) setField(row, names[i]!, value);
        else row[names[i]!] = value;
      }
    } catch (error) {
      throw new ValueDecodeError(relation.qualifiedName, names[i]!, String(tuple[i]), error);
    }
    return row;
  }

  /** The old key of a `K` tuple: only the identity columns (the others are sent as NULL). */
  private identityRow(relation: Relation, tuple: readonly TupleValue[]): Row {
    const row: Row = {};
    const { names, parsers } = relation.shape;
    for (const i of relation.identityIndexes) {
      const text = tuple[i];
      try {
        setField(row, names[i]!, text === null || text === undefined || text === UNCHANGED_TOAST ? null : parseValue(parsers[i]!, text));
      } catch (error) {
        throw new ValueDecodeError(relation.qualifiedName, names[i]!, String(text), error);
      }
    }
    return row;
  }

  private key(relation: Relation, row: Row, fallback: Row | null): Row {
    const key: Row = {};
    const names = relation.shape.names;
    for (const i of relation.keyIndexes) {
      const name = names[i]!;
      setField(key, name, Object.hasOwn(row, name) ? row[name]! : fallback !== null && Object.hasOwn(fallback, name) ? fallback[name]! : null);
    }
    return key;
  }

  private source(transaction: Transaction, relationId: number, relation: Relation): SourceInfo {
    let source = transaction.sources.get(relationId);
    if (source === undefined) {
      source = {
        connector: "postgres",
        db: this.options.database,
        schema: relation.schema,
        table: relation.table,
        position: transaction.position,
        ts: transaction.ts,
        txid: transaction.xid,
      };
      transaction.sources.set(relationId, source);
    }
    return source;
  }

  private truncate(relationIds: readonly number[]): void {
    const names = relationIds.flatMap((id) => {
      const relation = this.relations.get(id);
      return relation !== undefined && relation.captured ? [relation.qualifiedName] : [];
    });
    const fresh = names.filter((name) => !this.truncateWarned.has(name));
    if (fresh.length === 0) return;
    for (const name of fresh) this.truncateWarned.add(name);
    this.options.log.warn("TRUNCATE is not captured: change events have no truncate operation, so sinks keep the rows", { tables: fresh });
  }

  private marker(lsn: bigint, content: string): void {
    if (!content.startsWith(`${this.options.slot}:${this.instance}:`)) return;
    this.markerOutstanding = false;
    if (this.transaction !== null) return;
    this.push({ events: [], bytes: 0, checkpoint: { position: pgLsnPosition(lsn), state: this.options.checkpointState }, caughtUp: true });
  }

  private writeMarker(reason: "probe" | "heartbeat"): void {
    if (this.markerOutstanding || this.closing || this.failure !== undefined) return;
    this.markerOutstanding = true;
    this.dataSinceMarker = false;
    const content = `${this.options.slot}:${this.instance}:${++this.markerSequence}`;
    this.options.catalog(`SELECT pg_catalog.pg_logical_emit_message(false, $1, $2)`, [MARKER_PREFIX, content]).catch((error: unknown) => {
      this.markerOutstanding = false;
      if (this.closing || this.markerWarned) return;
      this.markerWarned = true;
      this.options.log.warn(`could not write a ${reason} marker (pg_logical_emit_message): the slot does not move on a quiet database, and the stream cannot tell when it has caught up`, {
        error: messageOf(error),
      });
    });
  }

  // ------------------------------------------------------------------ the queue

  private push(unit: Unit): void {
    this.ready.push(unit);
    this.wake?.();
  }

  /** The next batch from the queue: whole transactions up to `batchEvents`, or one part of a large one. */
  private take(): SourceBatch | undefined {
    if (this.head >= this.ready.length) return undefined;
    const first = this.ready[this.head++]!;
    let events = first.events;
    let bytes = first.bytes;
    let checkpoint = first.checkpoint;
    let caughtUp = first.caughtUp === true;
    const limit = this.options.limits.batchEvents;
    while (checkpoint !== undefined && !caughtUp && this.head < this.ready.length) {
      const next = this.ready[this.head]!;
      if (next.checkpoint === undefined || next.schemaChanges !== undefined || events.length + next.events.length > limit) break;
      if (next.events.length > 0) events = events.length === 0 ? next.events : events.concat(next.events);
      bytes += next.bytes;
      checkpoint = next.checkpoint;
      caughtUp = next.caughtUp === true;
      this.head++;
    }
    if (this.head === this.ready.length) {
      this.ready.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.ready.splice(0, this.head);
      this.head = 0;
    }
    this.queuedEvents -= events.length;
    this.queuedBytes -= bytes;
    this.updateFlow();
    return {
      events,
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      ...(caughtUp ? { caughtUp } : {}),
      ...(first.schemaChanges !== undefined ? { schemaChanges: first.schemaChanges } : {}),
    };
  }

  private updateFlow(): void {
    const stream = this.connection?.stream;
    if (stream === undefined || this.closing) return;
    const { queueEvents, queueBytes } = this.options.limits;
    if (!this.paused && (this.blocked || this.queuedEvents >= queueEvents || this.queuedBytes >= queueBytes)) {
      stream.pause();
      this.paused = true;
      if (!this.blocked) this.pauses++;
    } else if (this.paused && !this.blocked && this.queuedEvents <= queueEvents / 2 && this.queuedBytes <= queueBytes / 2) {
      stream.resume();
      this.paused = false;
    }
  }

  // ------------------------------------------------------------------ plumbing

  private sendStatus(replyRequested: boolean): void {
    if (this.connection === undefined || this.closing || this.failure !== undefined) return;
    const written = this.received > this.acknowledged ? this.received : this.acknowledged;
    const nowMicros = BigInt(Date.now()) * 1000n;
    try {
      this.connection.sendCopyFromChunk(standbyStatusUpdate(written, this.acknowledged, this.acknowledged, replyRequested, nowMicros));
    } catch (error) {
      this.fail(queryError(error, this.options.address, "sending a status update"));
    }
  }

  private streamError(error: unknown): ConnectorError {
    const code = (error as { code?: string }).code;
    const where = `PostgreSQL at ${describeAddress(this.options.address)}`;
    if (code === "55006") {
      return new ConnectorError(`${where}: replication slot ${this.options.slot} is in use by another process: ${messageOf(error)}`, false, { cause: error });
    }
    if (code === "42704") {
      return new ConnectorError(`${where}: ${messageOf(error)} (slot ${this.options.slot}, publication ${this.options.publication})`, false, { cause: error });
    }
    return queryError(error, this.options.address, `streaming slot ${this.options.slot}`);
  }

  private fail(error: ConnectorError): void {
    if (this.failure !== undefined || this.closing) return;
    this.failure = error;
    this.startFailed?.(error);
    this.wake?.();
  }

  private sleep(signal: AbortSignal, timeoutMs: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (woken: boolean): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.wake = undefined;
        resolve(woken);
      };
      const onAbort = (): void => done(true);
      this.wake = () => done(true);
      signal.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) timer = setTimeout(() => done(false), timeoutMs);
    });
  }

  private every(ms: number, action: () => void): void {
    const timer = setInterval(action, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
