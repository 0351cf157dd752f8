/**
 * `dts verify FILE.dts`: is every copy equal to its source?
 *
 * The pairs come from the plan: each flow from a PostgreSQL source to a PostgreSQL sink pairs
 * every captured table with the table its events land in — the same `schema.table`, or the
 * route's target when the route is a constant. A flow whose steps change what arrives (a
 * filter, a map, a route that depends on the event) has no table to compare with, and is
 * reported as not verifiable rather than guessed at. Each pair is compared inside the two
 * databases (src/connectors/postgres/verify.ts).
 *
 * Exit codes: 0 every verifiable pair is equal, 1 some pair differs (or the pipeline is
 * invalid), 3 a server could not be reached or refused a query.
 */
import type pg from "pg";
import { connect, connectorError, serverLabel } from "../connectors/postgres/client.js";
import { loadTable } from "../connectors/postgres/ddl.js";
import { describeTables, type TableDescription } from "../connectors/postgres/tables.js";
import { compareTables, comparedTarget, type TableComparison } from "../connectors/postgres/verify.js";
import type { FlowPlan, PlanExpr, SinkPlan, SourcePlan } from "../plan/types.js";
import { formatTable, loadPipeline, optionList, runTool, stringOptionOf, type LoadedPipeline } from "./pipeline-tools.js";

const MAX_KEYS = 20;

type Route = { readonly kind: "same" } | { readonly kind: "constant"; readonly target: string } | { readonly kind: "unverifiable"; readonly reason: string };

export async function run(file: string, flags: readonly string[]): Promise<number> {
  return runTool("verify", async () => {
    if (flags.length > 0) {
      process.stderr.write(`dts verify: unknown option ${flags[0]}\n`);
      return 2;
    }
    const pipeline = await loadPipeline(file);
    const clients = new Clients();
    try {
      return await verify(pipeline, clients);
    } finally {
      await clients.close();
    }
  });
}

async function verify(pipeline: LoadedPipeline, clients: Clients): Promise<number> {
  const { plan } = pipeline;
  let equal = 0;
  let different = 0;
  let skipped = 0;
  const described = new Map<string, TableDescription[]>();
  for (const flow of plan.flows) {
    const source = plan.sources.find((s) => s.name === flow.source)!;
    const sinks = flow.sinks.map((name) => plan.sinks.find((s) => s.name === name)!).filter((sink) => sink.connector === "postgres");
    for (const sink of sinks) {
      const heading = `${source.name} -> ${sink.name}`;
      const route = routeOf(flow);
      if (source.connector !== "postgres") {
        process.stdout.write(`${heading}: not verifiable: dts verify compares PostgreSQL sources with PostgreSQL sinks; ${source.name} is ${source.connector}\n\n`);
        skipped++;
        continue;
      }
      if (route.kind === "unverifiable") {
        process.stdout.write(`${heading}: not verifiable: ${route.reason}\n\n`);
        skipped++;
        continue;
      }
      const sourceUrl = stringOptionOf(pipeline, source, "url")!;
      const sinkUrl = stringOptionOf(pipeline, sink, "url")!;
      let tables = described.get(source.name);
      if (tables === undefined) {
        tables = await describeTables(sourceUrl, optionList(pipeline, source, "tables"));
        described.set(source.name, tables);
      }
      if (route.kind === "constant" && tables.length > 1) {
        process.stdout.write(`${heading}: not verifiable: the route sends ${tables.length} tables into one table, ${route.target}\n\n`);
        skipped++;
        continue;
      }
      for (const table of tables) {
        const target = route.kind === "constant" ? route.target : table.qualifiedName;
        const same = await comparePair(clients, source, sourceUrl, table, sink, sinkUrl, target);
        if (same) equal++;
        else different++;
      }
    }
  }
  const parts = [`${equal} equal`, `${different} different`];
  if (skipped > 0) parts.push(`${skipped} not verifiable`);
  process.stdout.write(`${different === 0 ? "ok" : "DIFFERENT"}: ${parts.join(", ")}\n`);
  return different === 0 ? 0 : 1;
}

async function comparePair(
  clients: Clients,
  source: SourcePlan,
  sourceUrl: string,
  table: TableDescription,
  sink: SinkPlan,
  sinkUrl: string,
  target: string,
): Promise<boolean> {
  const dot = target.indexOf(".");
  const [schema, name] = dot === -1 ? ["public", target] : [target.slice(0, dot), target.slice(dot + 1)];
  process.stdout.write(`${source.name} ${table.qualifiedName} -> ${sink.name} ${schema}.${name}\n`);
  const sourceClient = await clients.get(sourceUrl, "dts verify");
  const targetClient = await clients.get(sinkUrl, "dts verify");
  const targetTable = await loadTable(targetClient, schema, name);
  if (targetTable === undefined) {
    process.stdout.write(`  DIFFERENT: the target table ${schema}.${name} does not exist\n\n`);
    return false;
  }
  const columns = new Map(table.columns.filter((c) => !c.generated).map((c) => [c.name, c.type]));
  const key = table.primaryKey.length > 0 ? table.primaryKey : table.keyColumns;
  let result: TableComparison;
  try {
    result = await compareTables(sourceClient, { schema: table.schema, table: table.name, columns }, targetClient, comparedTarget(targetTable), key, { maxKeys: MAX_KEYS });
  } catch (error) {
    throw connectorError(error, `${serverLabel(sourceUrl)} and ${serverLabel(sinkUrl)}`, `comparing ${table.qualifiedName} with ${schema}.${name}`);
  }
  process.stdout.write(`${report(result, key.length > 0)}\n\n`);
  return result.equal;
}

function report(result: TableComparison, keyed: boolean): string {
  const lines = [
    formatTable([
      ["", "rows", "checksum"],
      ["source", result.sourceRows.toString(), result.sourceChecksum || "-"],
      ["target", result.targetRows.toString(), result.targetChecksum || "-"],
    ]),
  ];
  if (result.equal) {
    lines.push("  equal");
  } else if (result.missingColumns.length > 0) {
    lines.push(`  DIFFERENT: the target lacks column${result.missingColumns.length > 1 ? "s" : ""} ${result.missingColumns.join(", ")}`);
  } else if (!keyed) {
    lines.push("  DIFFERENT (the table has no key, so the differing rows cannot be listed)");
  } else {
    lines.push(`  DIFFERENT: ${result.moreDifferences ? `first ${result.differences.length} differing keys` : `${result.differences.length} differing key${result.differences.length === 1 ? "" : "s"}`}`);
    lines.push(formatTable(result.differences.map((d) => [d.key, d.kind]), "    "));
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

/** One connection per server URL, reused by every pair. */
class Clients {
  private readonly clients = new Map<string, Promise<pg.Client>>();

  get(url: string, application: string): Promise<pg.Client> {
    let client = this.clients.get(url);
    if (client === undefined) {
      client = connect(url, application);
      this.clients.set(url, client);
    }
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.then((client) => client.end()).catch(() => {})));
  }
}
