/**
 * The jsonl source: replays a file the jsonl sink wrote with `format: "event"`.
 *
 * Each line is one `decodeEvent`; events keep the positions recorded in them, so a replay
 * looks to the steps and sinks like the original stream. Transactions are recovered from the
 * recorded txids: consecutive events with the same txid are one transaction, an event without
 * a txid is one on its own. A batch holds whole transactions (up to about `BATCH_EVENTS`
 * events) and its checkpoint is the line number of its last event (`state: {line}`), with
 * that event's recorded position; a transaction longer than `MAX_BATCH_EVENTS` is split, and
 * only its last part carries a checkpoint. The end of the file ends the last transaction.
 *
 * On resume the source skips the checkpoint's lines and checks that the event on the last
 * skipped line has the checkpoint's position: a file that was replaced or rewritten since
 * would otherwise resume at an arbitrary place, silently.
 */
import { resolve } from "node:path";
import type { ChangeEvent } from "../../model/event.js";
import { decodeEvent } from "../../model/json.js";
import { positionsEqual } from "../../model/position.js";
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
import { fileProblem, LineReader } from "./line-reader.js";

const BATCH_EVENTS = 1024;
const MAX_BATCH_EVENTS = 4096;

export const createSource: SourceFactory = (context) => new JsonlSource(context);

class JsonlSource implements SourceReader {
  private readonly path: string;
  private readonly resumeLine: number;
  private reader: LineReader | undefined;

  constructor(private readonly context: SourceContext) {
    this.path = resolve(context.baseDir ?? ".", optionsOf(sourceSpec, context.options, `source ${context.name}`).path);
    this.resumeLine = resumeLine(context.resume, this.path);
  }

  async start(): Promise<void> {
    try {
      this.reader = await LineReader.open(this.path);
    } catch (error) {
      throw new ConnectorError(`jsonl: cannot open ${this.path}: ${fileProblem(error)}`, false, { cause: error });
    }
  }

  batches(): AsyncIterable<SourceBatch> {
    return this.read();
  }

  private async *read(): AsyncGenerator<SourceBatch> {
    const reader = this.reader;
    if (reader === undefined) throw new Error("jsonl source: batches() before start()");
    const { signal } = this.context;
    let lineNumber = 0;
    for (; lineNumber < this.resumeLine; lineNumber++) {
      const line = await reader.next();
      if (line === undefined) {
        throw new ConnectorError(`jsonl: ${this.path} has ${lineNumber} lines, but the checkpoint is at line ${this.resumeLine}; was the file replaced?`, false);
      }
      if (lineNumber + 1 === this.resumeLine) this.checkResumeLine(line, lineNumber + 1);
    }

    let events: ChangeEvent[] = [];
    /** Events of `events` up to the last transaction end seen, and that end's line. */
    let complete = 0;
    let completeLine = 0;
    let previous: ChangeEvent | undefined;
    let previousLine = 0;
    for (;;) {
      if (signal.aborted) return;
      const line = await reader.next();
      if (line === undefined) break;
      lineNumber++;
      if (line.trim() === "") continue;
      const event = this.decode(line, lineNumber);
      if (previous !== undefined && endsTransactionBefore(previous, event)) {
        complete = events.length;
        completeLine = previousLine;
        if (complete >= BATCH_EVENTS) {
          yield this.batch(events.splice(0, complete), completeLine, false);
          complete = 0;
        }
      }
      events.push(event);
      previous = event;
      previousLine = lineNumber;
      if (events.length >= MAX_BATCH_EVENTS) {
        // A transaction too long for one batch: send what there is, without a checkpoint
        // unless a transaction ended inside it.
        if (complete > 0) {
          yield this.batch(events.splice(0, complete), completeLine, false);
          complete = 0;
        } else {
          yield { events };
          events = [];
        }
      }
    }
    // The end of the file ends the last transaction.
    if (events.length > 0) yield this.batch(events, previousLine, true);
    else yield { events: [], caughtUp: true };
  }

  private batch(events: ChangeEvent[], line: number, caughtUp: boolean): SourceBatch {
    const last = events[events.length - 1]!;
    const checkpoint: SourceCheckpoint = { position: last.source.position, state: { line } };
    return caughtUp ? { events, checkpoint, caughtUp } : { events, checkpoint };
  }

  private decode(line: string, lineNumber: number): ChangeEvent {
    try {
      return decodeEvent(line);
    } catch (error) {
      throw new ConnectorError(`jsonl: ${this.path}:${lineNumber}: not a change event: ${(error as Error).message}`, false, { cause: error });
    }
  }

  private checkResumeLine(line: string, lineNumber: number): void {
    const expected = this.context.resume?.position;
    if (expected === null || expected === undefined || line.trim() === "") return;
    const event = this.decode(line, lineNumber);
    if (!positionsEqual(event.source.position, expected)) {
      throw new ConnectorError(
        `jsonl: ${this.path}:${lineNumber} holds position ${event.source.position.token}, but the checkpoint says ${expected.token}; was the file replaced?`,
        false,
      );
    }
  }

  async acknowledge(): Promise<void> {}

  async close(): Promise<void> {
    await this.reader?.close();
    this.reader = undefined;
  }
}

/** Whether a transaction ends between two consecutive events. */
function endsTransactionBefore(previous: ChangeEvent, next: ChangeEvent): boolean {
  const a = previous.source.txid;
  return a === undefined || a !== next.source.txid;
}

function resumeLine(resume: SourceCheckpoint | null, path: string): number {
  if (resume === null) return 0;
  const state = resume.state;
  const line = typeof state === "object" && state !== null && !Array.isArray(state) ? state["line"] : undefined;
  if (typeof line !== "number" || !Number.isSafeInteger(line) || line < 0) {
    throw new ConnectorError(`jsonl: the checkpoint for ${path} has no line number; was the source's connector changed?`, false);
  }
  return line;
}
