/**
 * The one-line progress display for a terminal: events per second for each source and each
 * sink, redrawn in place (carriage return + erase line) at most four times a second. Log
 * lines pass through `writeLine`, which erases the progress line, prints the log line and
 * redraws, so that logs and progress share stderr without garbling each other.
 *
 * It is used only when stderr is a terminal (and stdout is not that same terminal carrying a
 * sink's output; see the CLI); elsewhere the runner writes JSON log lines and nothing else.
 */
import type { SnapshotProgress } from "./contracts.js";
import type { LineSink } from "./log.js";
import type { Metrics } from "./metrics.js";

const REDRAW_MS = 250;

interface Reading {
  readonly at: number;
  readonly sources: ReadonlyMap<string, number>;
  readonly sinks: ReadonlyMap<string, number>;
}

export class ProgressDisplay implements LineSink {
  private timer: NodeJS.Timeout | undefined;
  private last: Reading | undefined;
  private line = "";

  constructor(
    private readonly metrics: Metrics,
    private readonly stream: NodeJS.WriteStream,
  ) {}

  start(): void {
    this.last = this.read();
    this.timer = setInterval(() => this.redraw(), REDRAW_MS);
    // The display must never keep the process alive on its own.
    this.timer.unref();
  }

  /** Erases the line; the final summary is printed by the caller as ordinary log lines. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.erase();
    this.line = "";
  }

  writeLine(text: string): void {
    this.erase();
    this.stream.write(text + "\n");
    if (this.line !== "") this.stream.write(this.fit(this.line));
  }

  private redraw(): void {
    const now = this.read();
    const previous = this.last ?? now;
    const seconds = Math.max((now.at - previous.at) / 1000, 1e-3);
    const parts: string[] = [];
    for (const [name, events] of now.sources) {
      const rate = (events - (previous.sources.get(name) ?? 0)) / seconds;
      const counters = this.metrics.source(name);
      const caughtUp = counters.caughtUp ? " caught up" : "";
      const snapshot = counters.snapshot === undefined ? "" : ` ${snapshotBar(counters.snapshot)}`;
      parts.push(`${name}${snapshot} ${formatCount(events)} read ${formatRate(rate)}${caughtUp}`);
    }
    for (const [name, events] of now.sinks) {
      const rate = (events - (previous.sinks.get(name) ?? 0)) / seconds;
      parts.push(`→ ${name} ${formatCount(events)} ${formatRate(rate)}`);
    }
    if (this.metrics.deadLettered > 0) parts.push(`rejected ${formatCount(this.metrics.deadLettered)}`);
    this.last = now;
    this.line = parts.join("  │  ");
    this.stream.write("\r\x1b[2K" + this.fit(this.line));
  }

  private erase(): void {
    if (this.line !== "") this.stream.write("\r\x1b[2K");
  }

  /** A line longer than the terminal would wrap, and "\r" would then redraw only its tail. */
  private fit(text: string): string {
    // A pseudo-terminal may report 0 columns.
    const width = this.stream.columns || 80;
    return text.length < width ? text : text.slice(0, Math.max(width - 2, 0)) + "…";
  }

  private read(): Reading {
    const sources = new Map<string, number>();
    const sinks = new Map<string, number>();
    for (const [name, counters] of this.metrics.sources) sources.set(name, counters.events);
    for (const [name, counters] of this.metrics.sinks) sinks.set(name, counters.events);
    return { at: performance.now(), sources, sinks };
  }
}

/** `snapshot 2/5 public.orders [######----] 61%`, or without bar and percent when the size is unknown. */
export function snapshotBar(progress: SnapshotProgress): string {
  const head = `snapshot ${progress.tableNumber}/${progress.tables} ${progress.table}`;
  const total = progress.estimatedRows;
  if (total === undefined || total <= 0) return `${head} ${formatCount(progress.rows)} rows`;
  // The estimate may be below the truth (statistics lag): the bar then waits at 99%.
  const fraction = Math.min(progress.rows / total, 0.99);
  const filled = Math.round(fraction * BAR_WIDTH);
  return `${head} [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}%`;
}

const BAR_WIDTH = 10;

function formatRate(perSecond: number): string {
  return `${formatCount(Math.round(perSecond))}/s`;
}

function formatCount(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
}
