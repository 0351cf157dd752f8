/**
 * A MariaDB server of a test's own, for what must never be done to the shared one at 3306:
 * restarting it, purging its binlogs. `createPrivateMariadb()` makes one in a fresh temporary
 * folder (mariadb-install-db, run as the `mysql` OS user: mariadbd refuses to run as root), on a
 * free port of 127.0.0.1, with the binlog settings the mysql source needs, root without a
 * password over TCP, and returns it running; `stop` shuts it down cleanly (or kills it, for a
 * crash), `start` brings it back on the same folder and port, `remove` stops it and deletes it.
 *
 * sync_binlog is off: it lives for seconds.
 * A server a test forgot to remove is killed when the test process exits. Missing binaries fail
 * the test with the reason.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { freePort } from "./private-postgres.js";

const MARIADBD = process.env.DTS_TEST_MARIADBD ?? "/usr/sbin/mariadbd";
const INSTALL_DB = process.env.DTS_TEST_MARIADB_INSTALL_DB ?? "/usr/bin/mariadb-install-db";

export interface PrivateMariadb {
  readonly port: number;
  readonly dataDir: string;
  url(database?: string): string;
  start(): Promise<void>;
  /** `clean`: mariadb-admin shutdown; `kill`: SIGKILL, a crash. */
  stop(mode?: "clean" | "kill"): Promise<void>;
  restart(): Promise<void>;
  sql(text: string): Promise<Record<string, unknown>[]>;
  remove(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function createPrivateMariadb(): Promise<PrivateMariadb> {
  for (const binary of [MARIADBD, INSTALL_DB]) if (!existsSync(binary)) throw new Error(`${binary} is missing: install mariadb-server (bash scripts/services.sh)`);
  const folder = mkdtempSync(join(tmpdir(), "dts-mariadb-"));
  chmodSync(folder, 0o755);
  const dataDir = join(folder, "data");
  const socket = join(folder, "mysqld.sock");
  const port = await freePort();
  execFileSync(INSTALL_DB, ["--no-defaults", `--datadir=${dataDir}`, "--user=mysql", "--auth-root-authentication-method=normal", "--skip-test-db"], { stdio: "pipe" });
  chownSync(folder, Number(execFileSync("id", ["-u", "mysql"]).toString().trim()), Number(execFileSync("id", ["-g", "mysql"]).toString().trim()));
  let child: ChildProcess | undefined;
  let connection: mysql.Connection | undefined;

  const connectOnce = async (): Promise<mysql.Connection> =>
    mysql.createConnection({ host: "127.0.0.1", port, user: "root", multipleStatements: true, connectTimeout: 2000 });

  const server: PrivateMariadb = {
    port,
    dataDir,
    url: (database = "") => `mysql://root@127.0.0.1:${port}/${database}`,
    async start() {
      const args = [
        "--no-defaults",
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        "--user=mysql",
        "--server-id=1",
        `--log-bin=${join(dataDir, "mysql-bin")}`,
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
                "--sync-binlog=0",
        "--innodb-buffer-pool-size=64M",
        `--pid-file=${join(folder, "mysqld.pid")}`,
        `--log-error=${join(folder, "error.log")}`,
      ];
      const started = spawn(MARIADBD, args, { stdio: "ignore" });
      child = started;
      running.add(started);
      started.once("exit", () => running.delete(started));
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          const probe = await connectOnce();
          await probe.end();
          return;
        } catch (error) {
          if (started.exitCode !== null) throw new Error(`private mariadbd exited with ${started.exitCode}; read ${join(folder, "error.log")}`);
          if (Date.now() > deadline) throw new Error(`private mariadbd on port ${port} did not answer: ${(error as Error).message}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    },
    async stop(mode = "clean") {
      await connection?.end().catch(() => {});
      connection = undefined;
      const current = child;
      if (current === undefined || current.exitCode !== null) return;
      const exited = new Promise((resolve) => current.once("exit", resolve));
      if (mode === "kill") current.kill("SIGKILL");
      else current.kill("SIGTERM"); // mariadbd shuts down cleanly on SIGTERM
      await exited;
      child = undefined;
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async sql(text) {
      connection ??= await connectOnce();
      const [rows] = await connection.query(text);
      return (Array.isArray(rows) ? rows : []) as Record<string, unknown>[];
    },
    async remove() {
      await server.stop("kill");
      rmSync(folder, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
