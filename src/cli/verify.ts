/**
 * `dts verify FILE.dts`: is every copy equal to its source?
 *
 * Every flow is followed to every one of its sinks. The pairs come from the plan: each table
 * the source captures, with the table its events land in — the sink's connector says which
 * (`locate`: postgres the target `schema.table`; duckdb `schema_table`, or its `table`) — the
 * same target as the source table, or the route's target when the route is a constant. Each
 * pair is compared through the verify capability of the two connectors
 * (src/connectors/compare.ts), whatever their engines.
 *
 * Nothing is skipped in silence. A sink whose connector cannot be read (a queue, a cache), a
 * source that cannot, a flow whose steps change what arrives (a filter, a map, a route that
 * depends on the event), several tables landing in one, a column pair with no exact common
 * form: each is named as not verifiable, and makes the exit code 4 unless
 * --skip-unverifiable is given.
 *
 * Exit codes: 0 every pair is equal (and everything was verified, or --skip-unverifiable),
 * 1 some pair differs (or the pipeline is invalid), 3 a server could not be reached or refused
 * a query (or a DuckDB file is in use by a running pipeline), 4 something was not verifiable.
 */
import { compareTables, type TableComparison } from "../connectors/compare.js";
import type { VerifySinkReader, VerifySourceReader } from "../connectors/capabilities.js";
import { findSink, findSource } from "../connectors/registry.js";
import type { FlowPlan, PlanExpr, SinkPlan, SourcePlan } from "../plan/types.js";
import { contextOf, formatTable, loadPipeline, runTool, type LoadedPipeline } from "./pipeline-tools.js";

export interface VerifyOptions {
  readonly skipUnverifiable: boolean;
  readonly maxKeys: number;
}

type Route = { readonly kind: "same" } | { readonly kind: "constant"; readonly target: string } | { readonly kind: "unverifiable"; readonly reason: string };

const TOOL = "dts verify";

export async function run(file: string, options: VerifyOptions): Promise<number> {
  return runTool("verify", async () => {
    const pipeline = await loadPipeline(file);
    const readers = new Readers(pipeline);
    try {
      return await verify(pipeline, readers, options);
    } finally {
      await readers.close();
    }
  });
}

async function verify(pipeline: LoadedPipeline, readers: Readers, options: VerifyOptions): Promise<number> {
  const { plan } = pipeline;
  let equal = 0;
  let different = 0;
  const unverifiable: string[] = [];
  const say = (text: string): void => void process.stdout.write(`${text}\n`);
  const notVerifiable = (what: string, reason: string): void => {
    unverifiable.push(what);
    say(`${what}: not verifiable: ${reason}\n`);
  };
  for (const flow of plan.flows) {
    const source = plan.sources.find((s) => s.name === flow.source)!;
    for (const sinkName of flow.sinks) {
      const sink = plan.sinks.find((s) => s.name === sinkName)!;
      const heading = `${source.name} -> ${sink.name}`;
      const sourceReader = await readers.source(source);
      if (typeof sourceReader === "string") {
        notVerifiable(heading, sourceReader);
        continue;
      }
      const sinkReader = await readers.sink(sink);
      if (typeof sinkReader === "string") {
        notVerifiable(heading, sinkReader);
        continue;
      }
      const route = routeOf(flow);
      if (route.kind === "unverifiable") {
        notVerifiable(heading, route.reason);
        continue;
      }
      // Which sink table each source table lands in; two landing in one cannot be compared.
      const landing = new Map<string, string[]>();
      let refused: string | undefined;
      for (const table of await readers.tables(source, sourceReader)) {
        const located = sinkReader.locate(route.kind === "constant" ? route.target : table);
        if ("unverifiable" in located) {
          refused = located.unverifiable;
          break;
        }
        landing.set(located.table, [...(landing.get(located.table) ?? []), table]);
      }
      if (refused !== undefined) {
        notVerifiable(heading, `sink ${sink.name} (${sink.connector}): ${refused}`);
        continue;
      }
      for (const [targetName, tables] of landing) {
        if (tables.length > 1) {
          notVerifiable(`${heading} ${targetName}`, `${tables.length} tables land in one table (${tables.join(", ")})`);
          continue;
        }
        const table = tables[0]!;
        const sourceTable = await sourceReader.table(table);
        if (sourceTable === undefined) {
          notVerifiable(`${source.name} ${table}`, `the source table no longer exists in ${sourceReader.where}`);
          continue;
        }
        const targetTable = await sinkReader.table(targetName);
        say(`${source.name} ${table} -> ${sink.name} ${targetTable?.name ?? targetName}`);
        const result = await compareTables(sourceReader, sourceTable, sinkReader, targetTable, { maxKeys: options.maxKeys });
        say(`${report(result, targetName, sinkReader.where)}\n`);
        if (!result.equal) different++;
        else if (result.uncompared.length > 0) unverifiable.push(`${source.name} ${table} -> ${sink.name} ${targetName} (${result.uncompared.length} column${result.uncompared.length === 1 ? "" : "s"})`);
        else equal++;
      }
    }
  }
  const parts = [`${equal} equal`, `${different} different`];
  if (unverifiable.length > 0) parts.push(`${unverifiable.length} not verifiable${options.skipUnverifiable ? " (skipped)" : ""}`);
  if (different > 0) {
    say(`DIFFERENT: ${parts.join(", ")}`);
    return 1;
  }
  if (unverifiable.length > 0 && !options.skipUnverifiable) {
    say(`NOT VERIFIED: ${parts.join(", ")}: ${unverifiable.join("; ")}; --skip-unverifiable accepts that`);
    return 4;
  }
  say(`ok: ${parts.join(", ")}`);
  return 0;
}

function report(result: TableComparison, targetName: string, where: string): string {
  const lines: string[] = [];
  for (const note of result.notes) lines.push(`  normalised: ${note}`);
  for (const column of result.uncompared) lines.push(`  NOT COMPARED: ${column}`);
  if (result.target === undefined) {
    lines.push(formatTable([["", "rows"], ["source", result.source.rows.toString()]]));
    lines.push(`  DIFFERENT: the target table ${targetName} does not exist in ${where}`);
    return lines.join("\n");
  }
  lines.push(
    formatTable([
      ["", "rows", "checksum"],
      ["source", result.source.rows.toString(), result.missingColumns.length > 0 ? "-" : result.source.sum],
      ["target", result.target.rows.toString(), result.missingColumns.length > 0 ? "-" : result.target.sum],
    ]),
  );
  if (result.equal) {
    lines.push(result.uncompared.length > 0 ? "  equal in the columns compared" : "  equal");
  } else if (result.missingColumns.length > 0) {
    lines.push(`  DIFFERENT: the target lacks column${result.missingColumns.length > 1 ? "s" : ""} ${result.missingColumns.join(", ")}`);
  } else if (result.key.length === 0) {
    lines.push("  DIFFERENT (the table has no key that was compared, so the differing rows cannot be listed)");
  } else {
    const count = result.differences.length;
    lines.push(`  DIFFERENT: ${result.moreDifferences ? `first ${count} differing keys` : `${count} differing key${count === 1 ? "" : "s"}`}`);
    if (count > 0) lines.push(formatTable(result.differences.map((d) => [d.key, d.kind]), "    "));
  }
  return lines.join("\n");
}

/** Where a flow's events land: the source table, a constant route target, or no one table. */
export function routeOf(flow: FlowPlan): Route {
  let route: Route = { kind: "same" };
  for (const step of flow.steps) {
    switch (step.kind) {
      case "filter":
        return { kind: "unverifiable", reason: `the flow filters rows (${step.text}), so the copy is not meant to equal the source` };
      case "map":
        return { kind: "unverifiable", reason: `the flow reshapes rows (${step.text}), so the copy is not meant to equal the source` };
      case "route": {
        const target = constantText(step.target);
        route = target === undefined ? { kind: "unverifiable", reason: `the route target depends on the event (${step.text})` } : { kind: "constant", target };
        break;
      }
      case "validate":
        break;
    }
  }
  return route;
}

function constantText(expr: PlanExpr): string | undefined {
  if (expr.kind === "string") return expr.value;
  if (expr.kind === "template" && expr.parts.every((part) => typeof part === "string")) return expr.parts.join("");
  return undefined;
}

/** One reader per source and sink, opened on first use; a string says why there is none. */
class Readers {
  private readonly sources = new Map<string, Promise<VerifySourceReader | string>>();
  private readonly sinks = new Map<string, Promise<VerifySinkReader | string>>();
  private readonly captured = new Map<string, Promise<readonly string[]>>();

  constructor(private readonly pipeline: LoadedPipeline) {}

  source(source: SourcePlan): Promise<VerifySourceReader | string> {
    let reader = this.sources.get(source.name);
    if (reader === undefined) {
      const capability = findSource(source.connector)?.verify;
      reader =
        capability === undefined
          ? Promise.resolve(`source ${source.name} (${source.connector}) cannot be read: the ${source.connector} connector has no verify capability`)
          : capability().then((open) => open(contextOf(this.pipeline, source, TOOL)));
      this.sources.set(source.name, reader);
    }
    return reader;
  }

  sink(sink: SinkPlan): Promise<VerifySinkReader | string> {
    let reader = this.sinks.get(sink.name);
    if (reader === undefined) {
      const capability = findSink(sink.connector)?.verify;
      reader =
        capability === undefined
          ? Promise.resolve(`sink ${sink.name} (${sink.connector}) cannot be checked: the ${sink.connector} connector has no verify capability`)
          : capability().then((open) => open(contextOf(this.pipeline, sink, TOOL)));
      this.sinks.set(sink.name, reader);
    }
    return reader;
  }

  tables(source: SourcePlan, reader: VerifySourceReader): Promise<readonly string[]> {
    let tables = this.captured.get(source.name);
    if (tables === undefined) {
      tables = reader.capturedTables();
      this.captured.set(source.name, tables);
    }
    return tables;
  }

  async close(): Promise<void> {
    const readers = await Promise.all([...this.sources.values(), ...this.sinks.values()].map((reader) => reader.catch(() => undefined)));
    await Promise.all(readers.map((reader) => (typeof reader === "object" ? reader.close().catch(() => {}) : undefined)));
  }
}
