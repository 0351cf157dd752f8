/**
 * A PostgreSQL 15 cluster of a test's own, for what must never be done to the shared server
 * at 5432: stopping it, restarting it, cutting it off. `createPrivatePostgres()` makes one in
 * a fresh temporary folder as the `postgres` OS user (the server refuses to run as root) —
 * a copy of a data folder initdb made once per machine —
 * with trust authentication, wal_level=logical and a free port on 127.0.0.1, and returns it
 * running; `start`, `stop`, `restart` drive it with pg_ctl; `remove` stops it and deletes the folder. A second
 * cluster is a second call (fan-out tests, a primary and a replica).
 *
 * The server's own durability is off (fsync, synchronous_commit, full_page_writes): a test
 * cluster lives for seconds, and a crash of the machine loses nothing anyone needs. A stop is
 * "fast" (sessions ended, a clean checkpoint) unless the test asks for "immediate" (what a
 * power cut or a kill -9 of the postmaster leaves: crash recovery on the next start).
 *
 * A cluster a test forgot to remove is stopped when the test process exits, so none outlives
 * the test run. Missing binaries, or no `postgres` user, fail the test with the reason.
 */
import { execFile, execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

export const PG_BIN = process.env.DTS_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";
const OS_USER = "postgres";

export interface PrivatePostgres {
  readonly port: number;
  /** The data folder, owned by the `postgres` OS user. */
  readonly dataDir: string;
  /** `postgres://postgres@127.0.0.1:PORT/DATABASE` (default database `postgres`). */
  url(database?: string): string;
  /** Starts the server and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops the server: `fast` ends the sessions and checkpoints; `immediate` is a crash. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Stops, then starts; `downMs` keeps it stopped that long in between. */
  restart(options?: { mode?: "fast" | "immediate"; downMs?: number }): Promise<void>;
  readonly running: boolean;
  /** Runs SQL in a database of the cluster on a connection of its own. */
  sql<Row extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[], database?: string): Promise<Row[]>;
  /** Creates a database, returning its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server if it runs and deletes its folder; safe to call twice. */
  remove(): Promise<void>;
}

const live = new Set<string>();
let exitHookInstalled = false;

/** Stops every cluster left running when the test process ends (synchronously: the process is going). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const dataDir of live) {
      try {
        execFileSync("runuser", ["-u", OS_USER, "--", join(PG_BIN, "pg_ctl"), "-D", dataDir, "-m", "immediate", "-w", "stop"], { stdio: "ignore" });
        rmSync(dataDir, { recursive: true, force: true });
      } catch {
        // best effort: the process is exiting
      }
    }
  });
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function asPostgres(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run("runuser", ["-u", OS_USER, "--", ...args], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${args.join(" ")} failed: ${failed.stderr || failed.stdout || failed.message}`);
  }
}

/**
 * A freshly initdb'd data folder to copy (initdb takes seconds on a busy machine, a copy a
 * fraction of one), made once per machine: built beside its final name and renamed into
 * place, so that a process never copies a half-made one, and two making it at once both
 * succeed.
 */
async function template(uid: number, gid: number): Promise<string> {
  const path = join(tmpdir(), `dts-private-pg-template-${PG_BIN.replace(/[^A-Za-z0-9]+/g, "_")}`);
  if (existsSync(join(path, "PG_VERSION"))) return path;
  const building = mkdtempSync(join(tmpdir(), "dts-private-pg-template-building-"));
  chownSync(building, uid, gid);
  try {
    await asPostgres([join(PG_BIN, "initdb"), "-D", join(building, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    try {
      renameSync(join(building, "data"), path);
    } catch (error) {
      if (!existsSync(join(path, "PG_VERSION"))) throw error;
    }
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return path;
}

export async function createPrivatePostgres(options: { settings?: Readonly<Record<string, string | number>> } = {}): Promise<PrivatePostgres> {
  if (!existsSync(join(PG_BIN, "initdb"))) {
    throw new Error(`${join(PG_BIN, "initdb")} is missing: a private PostgreSQL needs the PostgreSQL 15 server binaries (apt-get install postgresql-15), or set DTS_TEST_PG_BIN`);
  }
  const parent = mkdtempSync(join(tmpdir(), "dts-private-pg-"));
  const dataDir = join(parent, "data");
  const ids = execFileSync("id", ["-u", OS_USER], { encoding: "utf8" }).trim();
  const gid = Number(execFileSync("id", ["-g", OS_USER], { encoding: "utf8" }).trim());
  chownSync(parent, Number(ids), gid);
  await asPostgres(["cp", "-a", await template(Number(ids), gid), dataDir]);
  const port = await freePort();
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${parent}'`,
    wal_level: "logical",
    max_replication_slots: 10,
    max_wal_senders: 10,
    max_connections: 50,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    shared_buffers: "'32MB'",
    logging_collector: "off",
    ...options.settings,
  };
  writeFileSync(
    join(dataDir, "postgresql.auto.conf"),
    Object.entries(settings)
      .map(([name, value]) => `${name} = ${value}`)
      .join("\n") + "\n",
  );
  chownSync(join(dataDir, "postgresql.auto.conf"), Number(ids), gid);
  live.add(dataDir);
  installExitHook();

  let running = false;
  let removed = false;
  const logFile = join(parent, "server.log");
  const url = (database = "postgres"): string => `postgres://postgres@127.0.0.1:${port}/${database}`;

  const cluster: PrivatePostgres = {
    port,
    dataDir,
    url,
    get running() {
      return running;
    },
    async start() {
      if (removed) throw new Error("the private PostgreSQL was removed");
      await asPostgres([join(PG_BIN, "pg_ctl"), "-D", dataDir, "-l", logFile, "-w", "-t", "60", "start"]);
      running = true;
    },
    async stop(mode = "fast") {
      if (!running) return;
      await asPostgres([join(PG_BIN, "pg_ctl"), "-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
      running = false;
    },
    async restart(restartOptions = {}) {
      await cluster.stop(restartOptions.mode ?? "fast");
      if (restartOptions.downMs !== undefined) await new Promise((resolve) => setTimeout(resolve, restartOptions.downMs));
      await cluster.start();
    },
    async sql(text, values, database) {
      const client = new pg.Client({ connectionString: url(database), connectionTimeoutMillis: 5000 });
      client.on("error", () => {});
      await client.connect();
      try {
        return (await client.query(text, values)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async createDatabase(name) {
      await cluster.sql(`CREATE DATABASE "${name}"`);
      return url(name);
    },
    async remove() {
      if (removed) return;
      try {
        await cluster.stop("immediate");
      } finally {
        removed = true;
        live.delete(dataDir);
        rmSync(parent, { recursive: true, force: true });
      }
    },
  };
  try {
    await cluster.start();
  } catch (error) {
    await cluster.remove().catch(() => {});
    throw error;
  }
  return cluster;
}
