/**
 * `npm run bench NAME [ARGS]`: one benchmark by name. See docs/performance.md for what each
 * measures and the figures on the reference machine.
 *
 *   pg      PostgreSQL: snapshot PG→PG against a psql COPY pipe, and the CDC drain against
 *           pg_recvlogical, as ratios
 *   upsert  the PostgreSQL sink's UNNEST and COPY upserts, at 10k and 100k rows per batch
 *   queues  the rabbitmq, nats and http sinks from a recorded jsonl stream, against minimal
 *           publishers with the same acknowledgements, as ratios
 */
const benchmarks: Readonly<Record<string, () => Promise<(args: readonly string[]) => Promise<void>>>> = {
  pg: async () => (await import("./pg.js")).benchPg,
  upsert: async () => (await import("./upsert.js")).benchUpsert,
  queues: async () => (await import("./queues.js")).benchQueues,
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv;
  const load = name === undefined ? undefined : benchmarks[name];
  if (load === undefined) {
    process.stderr.write(`usage: npm run bench ${Object.keys(benchmarks).join("|")} [args]\n`);
    return 2;
  }
  await (await load())(args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
