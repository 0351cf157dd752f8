/**
 * The discard sink: counts what it is given and keeps nothing. Every write resolves at once,
 * so the rest of the pipeline is measured without the cost of a destination.
 */
import type { SinkBatch, SinkContext, SinkFactory, SinkWriter } from "../../runtime/contracts.js";

export const createSink: SinkFactory = (context) => new DiscardSink(context);

export class DiscardSink implements SinkWriter {
  /** Events received, for whoever holds the writer (tests, the summary's log line). */
  events = 0;

  constructor(private readonly context: SinkContext) {}

  async start(): Promise<void> {}

  async write(batch: SinkBatch): Promise<readonly []> {
    this.events += batch.events.length;
    return [];
  }

  async close(): Promise<void> {
    this.context.log.debug("discarded", { events: this.events });
  }
}
