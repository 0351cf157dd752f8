/**
 * `dts-run --metrics PORT`: the run's figures for Prometheus, and the probes Kubernetes asks,
 * on one HTTP port.
 *
 *   /metrics  the Prometheus text format (prom-client). Almost every figure is read from the
 *             run's `Metrics` when scraped (collect callbacks), so the pipeline pays nothing per
 *             event for it; only the per-write histograms are fed as writes end (once a batch).
 *   /healthz  200 while the process serves at all (liveness: a hung event loop fails it).
 *   /readyz   200 once every source has delivered a batch or caught up, and nothing is failing
 *             right now; 503 with the reason otherwise (readiness).
 *
 * Lag in seconds is now minus the commit time of the last event read, 0 once a source is
 * caught up; a source whose events carry synthetic times (datagen) has no meaningful lag.
 */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Metrics } from "./metrics.js";

export interface MetricsEndpointOptions {
  readonly port: number;
  readonly host?: string;
  readonly pipeline: string;
  readonly runId: string;
  readonly metrics: Metrics;
  /** Connector of each source and sink by name, as labels. */
  readonly connectors: ReadonlyMap<string, string>;
}

export interface MetricsEndpoint {
  /** The port it listens on (the one asked, or the one given for 0). */
  readonly port: number;
  /** The registry's text, as /metrics serves it. */
  scrape(): Promise<string>;
  close(): Promise<void>;
}

export async function startMetricsEndpoint(options: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const { metrics, pipeline } = options;
  const registry = new Registry();
  registry.setDefaultLabels({ pipeline, run_id: options.runId });
  const connector = (name: string) => options.connectors.get(name) ?? "";
  const perSource = (name: string, help: string, read: (c: ReturnType<Metrics["source"]>) => number | undefined, type: "counter" | "gauge" = "counter") =>
    collected(registry, type, name, help, ["source", "connector"], () =>
      [...metrics.sources].flatMap(([source, c]) => {
        const value = read(c);
        return value === undefined ? [] : [[{ source, connector: connector(source) }, value] as const];
      }),
    );
  const perSink = (name: string, help: string, read: (c: ReturnType<Metrics["sink"]>) => number, type: "counter" | "gauge" = "counter") =>
    collected(registry, type, name, help, ["sink", "connector"], () => [...metrics.sinks].map(([sink, c]) => [{ sink, connector: connector(sink) }, read(c)] as const));

  perSource("dts_source_events_total", "Change events read from the source.", (c) => c.events);
  perSource("dts_source_batches_total", "Batches read from the source.", (c) => c.batches);
  perSource("dts_source_restarts_total", "Times the source was reconnected after a retriable error.", (c) => c.restarts);
  perSource("dts_source_caught_up", "1 when the source has nothing more to send right now.", (c) => (c.caughtUp ? 1 : 0), "gauge");
  perSource("dts_source_failing", "1 while the source is failing and being retried.", (c) => (c.failing ? 1 : 0), "gauge");
  perSource("dts_source_lag_seconds", "Now minus the commit time of the last event read; 0 when caught up.", (c) => (c.caughtUp ? 0 : c.lastCommitMs === undefined ? undefined : Math.max(0, (Date.now() - c.lastCommitMs) / 1000)), "gauge");
  perSource("dts_checkpoint_age_seconds", "Seconds since the source was last told a checkpoint is durable.", (c) => (c.acknowledgedMs === undefined ? undefined : (Date.now() - c.acknowledgedMs) / 1000), "gauge");
  collected(registry, "gauge", "dts_snapshot_rows", "Rows the snapshot copied of the table it is copying.", ["source", "table"], () =>
    [...metrics.sources].flatMap(([source, c]) => (c.snapshot === undefined ? [] : [[{ source, table: c.snapshot.table }, c.snapshot.rows] as const])),
  );
  collected(registry, "gauge", "dts_snapshot_table_rows_estimate", "The server's estimate of the rows of the table the snapshot copies.", ["source", "table"], () =>
    [...metrics.sources].flatMap(([source, c]) => (c.snapshot?.estimatedRows === undefined ? [] : [[{ source, table: c.snapshot.table }, c.snapshot.estimatedRows] as const])),
  );
  perSink("dts_sink_events_total", "Events the sink made durable.", (c) => c.events);
  perSink("dts_sink_writes_total", "Writes (batches) the sink made durable.", (c) => c.writes);
  perSink("dts_sink_rejected_total", "Events the sink refused.", (c) => c.rejected);
  perSink("dts_sink_retries_total", "Writes that failed with a retriable error and were tried again.", (c) => c.retries);
  perSink("dts_sink_failing", "1 while the sink is failing and being retried.", (c) => (c.failing ? 1 : 0), "gauge");
  collected(registry, "counter", "dts_step_rejected_total", "Events a filter, map or validate step rejected.", [], () => [[{}, metrics.stepRejected]]);
  collected(registry, "counter", "dts_dead_lettered_total", "Events written to the dead-letter sink.", [], () => [[{}, metrics.deadLettered]]);
  collected(registry, "counter", "dts_errors_total", "Errors met (retried or fatal), by code.", ["code"], () => [...metrics.errors].map(([code, n]) => [{ code }, n] as const));
  collected(registry, "gauge", "dts_uptime_seconds", "Seconds since the run started.", [], () => [[{}, metrics.elapsedSeconds()]]);

  const batchEvents = new Histogram({
    name: "dts_sink_batch_events",
    help: "Events per write of a sink.",
    labelNames: ["sink", "connector"],
    buckets: [1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000],
    registers: [registry],
  });
  const batchSeconds = new Histogram({
    name: "dts_sink_batch_seconds",
    help: "Seconds per write of a sink, retries included.",
    labelNames: ["sink", "connector"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  metrics.writes = {
    written(sink, events, seconds) {
      const labels = { sink, connector: connector(sink) };
      batchEvents.observe(labels, events);
      batchSeconds.observe(labels, seconds);
    },
  };

  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(`${(error as Error).message}\n`),
      );
    } else if (path === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const reason = notReady(metrics);
      response.writeHead(reason === undefined ? 200 : 503, { "content-type": "text/plain" }).end(`${reason ?? "ready"}\n`);
    } else {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: /metrics, /healthz and /readyz are served\n");
    }
  });
  const port = await listen(server, options.port, options.host ?? "0.0.0.0");
  return {
    port,
    scrape: () => registry.metrics(),
    close: () =>
      new Promise((resolve) => {
        metrics.writes = undefined;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Why the run is not ready, or undefined when it is. */
export function notReady(metrics: Metrics): string | undefined {
  for (const [name, c] of metrics.sources) {
    if (c.failing) return `source ${name} is failing and being retried`;
    if (c.batches === 0 && !c.caughtUp) return `source ${name} has not delivered anything yet`;
  }
  for (const [name, c] of metrics.sinks) if (c.failing) return `sink ${name} is failing and being retried`;
  return undefined;
}

type Labels = Record<string, string>;

/** A counter or gauge whose values are read from the run when scraped. */
function collected(registry: Registry, type: "counter" | "gauge", name: string, help: string, labelNames: readonly string[], read: () => readonly (readonly [Labels, number])[]): void {
  const configuration = {
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
  };
  if (type === "gauge") {
    new Gauge({
      ...configuration,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  } else {
    new Counter({
      ...configuration,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}
