/**
 * The datagen source: the `shop` workload (workload.ts) cut into batches.
 *
 * A batch ends at a transaction end whenever it can, so that nearly every batch carries a
 * checkpoint (position = the sequence number of its last event); only a transaction larger
 * than a whole batch is split, and the batches inside it carry none. The last batch says
 * `caughtUp`, then the iteration ends.
 *
 * Resume regenerates the stream from the start and skips the events up to the checkpoint's
 * position — cheap next to writing them, and exact because the stream is deterministic.
 *
 * With `changes_per_second` the source paces itself against a monotonic clock from its
 * start (so a slow moment is made up, not accumulated), in batches of about 50 ms worth of
 * events. Without it, it yields to the event loop once per batch so that a pipeline into a
 * sink that costs nothing (discard) still hears signals and timers.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { ChangeEvent } from "../../model/event.js";
import { seqPosition } from "../../model/position.js";
import { optionsOf } from "../options.js";
import { sourceSpec } from "./spec.js";
import {
  ConnectorError,
  type SourceBatch,
  type SourceCheckpoint,
  type SourceContext,
  type SourceFactory,
  type SourceReader,
} from "../../runtime/contracts.js";
import { sleep } from "../../runtime/retry.js";
import { ShopWorkload } from "./workload.js";

/** Events per batch when running as fast as possible. */
const BATCH_EVENTS = 1024;
/** A transaction longer than this is split across batches (without checkpoints inside it). */
const MAX_BATCH_EVENTS = 4096;
/** With a rate, a batch holds about this much time's worth of events. */
const PACED_BATCH_MS = 50;

export const createSource: SourceFactory = (context) => new DatagenSource(context);

class DatagenSource implements SourceReader {
  private readonly rows: number;
  private readonly rate: number;
  private readonly seed: bigint;
  private readonly transactionSize: number;
  private readonly resumeAfter: number;

  constructor(private readonly context: SourceContext) {
    // Checked and defaulted once against the spec (connectors/options.ts); "shop" is the one workload.
    const options = optionsOf(sourceSpec, context.options, `source ${context.name}`);
    this.rows = options.rows;
    this.rate = options.changes_per_second;
    this.seed = options.seed;
    this.transactionSize = options.transaction_size;
    this.resumeAfter = resumePosition(context.resume);
  }

  async start(): Promise<void> {}

  batches(): AsyncIterable<SourceBatch> {
    return this.generate();
  }

  private async *generate(): AsyncGenerator<SourceBatch> {
    const { signal, log } = this.context;
    const workload = new ShopWorkload({ rows: this.rows, seed: this.seed, transactionSize: this.transactionSize });
    while (workload.position < this.resumeAfter && workload.next() !== undefined) {
      // skipping what the checkpoint covers
    }
    if (this.resumeAfter > 0) log.info("datagen resumed", { after: this.resumeAfter, of: this.rows });

    const paced = this.rate > 0;
    const target = paced ? Math.max(1, Math.round((this.rate * PACED_BATCH_MS) / 1000)) : BATCH_EVENTS;
    const startedAt = performance.now();
    const firstSeq = workload.position;
    let events: ChangeEvent[] = [];
    let checkpointSeq = 0;
    for (;;) {
      if (signal.aborted) return;
      const change = workload.next();
      if (change !== undefined) {
        events.push(change.event);
        if (change.endsTransaction) checkpointSeq = change.seq;
        const atEnd = change.endsTransaction && events.length >= target;
        if (!atEnd && events.length < MAX_BATCH_EVENTS) continue;
      } else if (events.length === 0) {
        // Nothing at all was left to send (a resume at the very end): say so, then end.
        yield { events, caughtUp: true };
        return;
      }

      if (paced) {
        // Event n is due at start + n / rate: sleep until the last one of this batch is due.
        const due = startedAt + ((workload.position - firstSeq) * 1000) / this.rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait, signal);
        if (signal.aborted) return;
      } else {
        await yieldToEventLoop();
      }
      const last = change === undefined;
      const batch: SourceBatch = {
        events,
        ...(checkpointSeq > 0 ? { checkpoint: checkpoint(checkpointSeq) } : {}),
        ...(last ? { caughtUp: true } : {}),
      };
      yield batch;
      if (last) return;
      events = [];
      checkpointSeq = 0;
    }
  }

  async acknowledge(): Promise<void> {}

  async close(): Promise<void> {}
}

function checkpoint(seq: number): SourceCheckpoint {
  return { position: seqPosition(seq) };
}

function resumePosition(resume: SourceCheckpoint | null): number {
  const position = resume?.position;
  if (position === undefined || position === null) return 0;
  if (position.kind !== "seq" || !/^\d+$/.test(position.token)) {
    throw new ConnectorError(
      `datagen: the checkpoint holds a ${position.kind} position (${position.token}), not a datagen sequence number; was the source's connector changed?`,
      false,
    );
  }
  return Number(position.token);
}
