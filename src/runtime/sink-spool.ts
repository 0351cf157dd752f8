/**
 * A lagging sink's spool: its items past the in-memory limit, in order, in append-only segment
 * files beside the checkpoint state (`<checkpoint file>.spool/<pipeline>/<sink>/`), read back
 * as the sink catches up (sink-lane.ts).
 *
 * The spool is a cache, not the truth. The source is never acknowledged past the least of its
 * sinks' durable positions, so after a crash a sink resumes from its own position by reading
 * the source again, and whatever a spool holds then is discarded at start (`openSpool`: said
 * in the log, with what a torn tail cut off). That is also why one lost record could never
 * lose a change: a record is written and fsync'd before it counts, and reading stops at the
 * first one whose length or checksum is wrong.
 *
 * A record is `[u32 length][u32 crc32 of the payload][payload]`, little-endian. Appends are
 * gathered while a write is under way and go out together, then one fdatasync for all of
 * them: at most one fsync per source batch, fewer under load. A segment is closed at
 * `segmentBytes` and a new one started (its folder entry fsync'd); a segment read to its end
 * is deleted, which is what gives space back. Every file operation runs in one queue, so a
 * read never sees a record before its fsync.
 *
 * `bytes` (the segments on disk and the appends on their way) is what the cap `spool_max`
 * counts; the lane stops taking items at the cap.
 */
import { mkdir, open, readdir, rm, stat, truncate, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Plan } from "../plan/types.js";
import { crc32 } from "node:zlib";

/**
 * The folder of a pipeline's spools (one folder per sink in it): `<checkpoint file>.spool/<pipeline>`,
 * or `.dts-spool/<pipeline>` beside the pipeline when a sink holds the checkpoints.
 */
export function spoolRoot(plan: Plan, baseDir: string): string {
  const setting = plan.pipeline.checkpoint;
  const base = setting.kind === "file" ? `${resolve(baseDir, setting.path)}.spool` : resolve(baseDir, ".dts-spool");
  return join(base, plan.pipeline.name);
}

const HEADER = 8;
const SUFFIX = ".seg";
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

interface Segment {
  readonly path: string;
  /** Bytes written and fsync'd. */
  size: number;
  /** Open for appends (the last segment) and reads. */
  handle: FileHandle;
}

export interface SpoolOptions {
  readonly dir: string;
  /** A segment is closed once it holds this many bytes. */
  readonly segmentBytes?: number;
  /** Records were written and fsync'd: there is something to read. */
  readonly onFlushed?: () => void;
  /** Called after each fsync of a segment, and of the folder when a segment is created (tests, metrics). */
  readonly onSync?: (what: "segment" | "folder", path: string, records: number) => void;
}

/** What a spool left behind held, as `recoverSpool` found it. */
export interface RecoveredSpool {
  /** Whole records, and their bytes (headers included). */
  readonly records: number;
  readonly bytes: number;
  /** Bytes after the last whole record of a segment (a write cut short): cut off. */
  readonly tornBytes: number;
  /** The payloads, in order (only when asked for). */
  readonly payloads?: readonly Buffer[];
}

export class SinkSpool {
  private readonly segments: Segment[] = [];
  /** Where reading stands in `segments[0]`. */
  private readOffset = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingRecords = 0;
  /** Records fsync'd and not read yet, and their bytes. */
  private unreadRecords = 0;
  private unreadBytes = 0;
  private flushing = false;
  private queue: Promise<unknown> = Promise.resolve();
  private nextNumber = 1;
  private closed = false;
  private failure: unknown;

  private constructor(private readonly options: SpoolOptions) {}

  /** An empty spool in `dir`; whatever an earlier run left there is recovered (to report it) and removed. */
  static async open(options: SpoolOptions): Promise<{ spool: SinkSpool; leftover: RecoveredSpool | undefined }> {
    let leftover: RecoveredSpool | undefined;
    try {
      if ((await segmentFiles(options.dir)).length > 0) leftover = await recoverSpool(options.dir);
    } catch {
      leftover = undefined;
    }
    await rm(options.dir, { recursive: true, force: true });
    await mkdir(options.dir, { recursive: true });
    return { spool: new SinkSpool(options), leftover };
  }

  /** Bytes on disk and on their way there: what the cap counts. */
  get bytes(): number {
    let total = this.pendingBytes;
    for (const segment of this.segments) total += segment.size;
    return total;
  }

  /** Bytes of records not read yet. */
  get backlogBytes(): number {
    return this.unreadBytes + this.pendingBytes;
  }

  /** Records not read yet. */
  get backlogRecords(): number {
    return this.unreadRecords + this.pendingRecords;
  }

  /** Nothing to read, nothing on its way. */
  get empty(): boolean {
    return this.unreadRecords === 0 && this.pendingRecords === 0 && !this.flushing;
  }

  /** Adds a record; it is written and fsync'd soon, with whatever else comes meanwhile. */
  append(payload: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new Error("the spool is closed");
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(crc32(payload), 4);
    this.pending.push(header, payload);
    this.pendingBytes += HEADER + payload.length;
    this.pendingRecords++;
    if (!this.flushing) {
      this.flushing = true;
      void this.run(() => this.flush());
    }
  }

  /** Resolves when every record appended so far is on disk. */
  settled(): Promise<void> {
    return this.run(async () => {});
  }

  /** The next record, once it is on disk; undefined when none is. */
  next(): Promise<Buffer | undefined> {
    return this.run(() => this.read());
  }

  /** Removes the segments once everything was read (space back to the file system). */
  reset(): Promise<void> {
    return this.run(async () => {
      if (!this.empty) return;
      while (this.segments.length > 0) await this.drop(this.segments[0]!);
      this.readOffset = 0;
    });
  }

  /** Closes and removes the spool: what it held is read again from the source next time. */
  close(): Promise<void> {
    this.closed = true;
    return this.run(async () => {
      for (const segment of this.segments) await segment.handle.close().catch(() => {});
      this.segments.length = 0;
      await rm(this.options.dir, { recursive: true, force: true });
    });
  }

  /** Leaves the files as they are (a crash, in tests): closes the handles only. */
  abandon(): Promise<void> {
    this.closed = true;
    return this.run(async () => {
      for (const segment of this.segments) await segment.handle.close().catch(() => {});
    });
  }

  private run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.failure !== undefined) throw this.failure;
      return operation();
    });
    this.queue = result.catch(() => {});
    return result;
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.closed) {
        const chunks = this.pending;
        const bytes = this.pendingBytes;
        const records = this.pendingRecords;
        this.pending = [];
        this.pendingBytes = 0;
        this.pendingRecords = 0;
        const segment = await this.writable(bytes);
        const data = Buffer.concat(chunks, bytes);
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await segment.handle.write(data, written, data.length - written, segment.size + written);
          written += bytesWritten;
        }
        await segment.handle.datasync();
        this.options.onSync?.("segment", segment.path, records);
        segment.size += bytes;
        this.unreadRecords += records;
        this.unreadBytes += bytes;
        this.options.onFlushed?.();
      }
    } catch (error) {
      this.failure = error;
      throw error;
    } finally {
      this.flushing = false;
    }
  }

  /** The segment to append `bytes` to: the last one, or a new one when it is full. */
  private async writable(bytes: number): Promise<Segment> {
    const last = this.segments.at(-1);
    const limit = this.options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (last !== undefined && (last.size === 0 || last.size + bytes <= limit)) return last;
    const path = join(this.options.dir, `${String(this.nextNumber++).padStart(10, "0")}${SUFFIX}`);
    const handle = await open(path, "wx+", 0o600);
    // The new file's folder entry must survive a power cut before records in it count.
    await syncFolder(this.options.dir);
    this.options.onSync?.("folder", this.options.dir, 0);
    const segment: Segment = { path, size: 0, handle };
    this.segments.push(segment);
    return segment;
  }

  private async read(): Promise<Buffer | undefined> {
    for (;;) {
      if (this.unreadRecords === 0) return undefined;
      const segment = this.segments[0];
      if (segment === undefined) return undefined;
      if (this.readOffset >= segment.size) {
        // Read to its end and no longer written to: its space goes back.
        if (this.segments.length === 1) return undefined;
        await this.drop(segment);
        this.readOffset = 0;
        continue;
      }
      const header = Buffer.allocUnsafe(HEADER);
      await readFully(segment.handle, header, this.readOffset);
      const length = header.readUInt32LE(0);
      const payload = Buffer.allocUnsafe(length);
      await readFully(segment.handle, payload, this.readOffset + HEADER);
      if (crc32(payload) !== header.readUInt32LE(4)) throw new Error(`the spool segment ${segment.path} is damaged at byte ${this.readOffset}`);
      this.readOffset += HEADER + length;
      this.unreadRecords--;
      this.unreadBytes -= HEADER + length;
      return payload;
    }
  }

  private async drop(segment: Segment): Promise<void> {
    await segment.handle.close().catch(() => {});
    await rm(segment.path, { force: true });
    this.segments.shift();
  }
}

/**
 * The whole records of the spool in `dir`, segment by segment until the first torn or damaged
 * one (a write cut short by a crash): what follows it in its segment is cut off, so that
 * reading it again finds only whole records.
 */
export async function recoverSpool(dir: string, options: { readonly payloads?: boolean } = {}): Promise<RecoveredSpool> {
  let records = 0;
  let bytes = 0;
  let tornBytes = 0;
  const payloads: Buffer[] = [];
  for (const name of await segmentFiles(dir)) {
    const path = join(dir, name);
    const size = (await stat(path)).size;
    const handle = await open(path, "r");
    let offset = 0;
    try {
      while (offset + HEADER <= size) {
        const header = Buffer.allocUnsafe(HEADER);
        await readFully(handle, header, offset);
        const length = header.readUInt32LE(0);
        if (offset + HEADER + length > size) break;
        const payload = Buffer.allocUnsafe(length);
        await readFully(handle, payload, offset + HEADER);
        if (crc32(payload) !== header.readUInt32LE(4)) break;
        if (options.payloads === true) payloads.push(payload);
        records++;
        offset += HEADER + length;
      }
    } finally {
      await handle.close();
    }
    bytes += offset;
    if (offset < size) {
      tornBytes += size - offset;
      await truncate(path, offset);
    }
  }
  return { records, bytes, tornBytes, ...(options.payloads === true ? { payloads } : {}) };
}

async function segmentFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => name.endsWith(SUFFIX)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error(`the spool ended ${buffer.length - done} bytes early`);
    done += bytesRead;
  }
}

async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, "r");
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "EBADF") throw error;
  } finally {
    await handle?.close();
  }
}
