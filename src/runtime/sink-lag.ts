/**
 * Where each sink stands, for the people watching a fan-out: every `LAG_LOG_MS` the run logs
 * each sink that is behind (events, bytes and seconds of lag, spool size, its position), and
 * every `STATUS_WRITE_MS` it writes the same for every sink to `status.json` in its spool
 * folder, which `dts status` (another process) reads while the run is going. The file is
 * rewritten whole through a rename, and removed when the run stops: its absence means no run.
 */
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SourceCheckpoint } from "./contracts.js";
import type { RunLogger } from "./log.js";
import type { LaneLag, SinkLane } from "./sink-lane.js";

export const LAG_LOG_MS = 10_000;
export const STATUS_WRITE_MS = 2_000;
const STATUS_FILE = "status.json";

/** A sink as `status.json` holds it. */
export interface SinkLagReport extends LaneLag {
  readonly spooling: boolean;
  /** Its own durable position in each source's stream. */
  readonly positions: Readonly<Record<string, { readonly kind: string; readonly token: string } | null>>;
}

export interface LagReport {
  readonly pipeline: string;
  readonly pid: number;
  readonly updated_at: string;
  readonly sinks: Readonly<Record<string, SinkLagReport>>;
}

export class SinkLagReporter {
  private logTimer: NodeJS.Timeout | undefined;
  private writeTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: {
      readonly pipeline: string;
      readonly lanes: ReadonlyMap<string, SinkLane>;
      /** Each sink's durable positions, by sink then source. */
      readonly positions: () => ReadonlyMap<string, ReadonlyMap<string, SourceCheckpoint | null>>;
      readonly log: RunLogger;
      /** The folder of `status.json`; none written when absent. */
      readonly folder?: string;
    },
  ) {}

  start(): void {
    this.logTimer = setInterval(() => this.logLagging(), LAG_LOG_MS);
    this.logTimer.unref();
    if (this.options.folder !== undefined) {
      this.writeTimer = setInterval(() => void this.write(), STATUS_WRITE_MS);
      this.writeTimer.unref();
      void this.write();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.logTimer);
    clearInterval(this.writeTimer);
    await this.writing;
    if (this.options.folder !== undefined) await rm(join(this.options.folder, STATUS_FILE), { force: true }).catch(() => {});
  }

  report(): LagReport {
    const positions = this.options.positions();
    const sinks: Record<string, SinkLagReport> = {};
    for (const [name, lane] of this.options.lanes) {
      const own: Record<string, { kind: string; token: string } | null> = {};
      for (const [source, checkpoint] of positions.get(name) ?? []) own[source] = checkpoint?.position ?? null;
      sinks[name] = { ...lane.lag(), spooling: lane.isSpooling(), positions: own };
    }
    return { pipeline: this.options.pipeline, pid: process.pid, updated_at: new Date().toISOString(), sinks };
  }

  private logLagging(): void {
    const report = this.report();
    for (const [sink, lag] of Object.entries(report.sinks)) {
      if (lag.events === 0 && !lag.spooling) continue;
      if (lag.seconds < 1 && !lag.spooling) continue;
      this.options.log.info("sink is behind", {
        sink,
        lag_events: lag.events,
        lag_bytes: lag.bytes,
        lag_seconds: Math.round(lag.seconds * 10) / 10,
        spool_bytes: lag.spoolBytes,
        positions: lag.positions,
      });
    }
  }

  private write(): Promise<void> {
    const folder = this.options.folder!;
    this.writing = this.writing.then(async () => {
      const path = join(folder, STATUS_FILE);
      const temp = `${path}.${process.pid}.tmp`;
      try {
        await writeFile(temp, JSON.stringify(this.report()) + "\n");
        await rename(temp, path);
      } catch (error) {
        this.options.log.debug("writing the sinks' status failed", { error: (error as Error).message });
      }
    });
    return this.writing;
  }
}

export function lagStatusPath(folder: string): string {
  return join(folder, STATUS_FILE);
}
