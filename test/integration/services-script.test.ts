/**
 * scripts/services.sh on a fresh Debian: PostgreSQL asks for a scram-sha-256 password on
 * 127.0.0.1 and MariaDB's root logs in only by unix_socket, and the tests log in over TCP
 * without a password. The script's functions run here against scratch servers made the way
 * Debian makes them — a cluster of its own (pg_createcluster, Debian's pg_hba.conf) and a
 * MariaDB data directory of its own (mariadb-install-db, root by unix_socket) — never against
 * the shared ones, which other tests are using. Each check starts from the refusal, ends in
 * the login the tests make, and a second run must change nothing.
 *
 * Needs root and Debian's postgresql-common and mariadb-server (what the script itself needs).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

const SCRIPT = resolve(import.meta.dirname, "../../scripts/services.sh");

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(file: string, args: readonly string[], timeoutMs = 120_000): Promise<Result> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, { encoding: "utf8", timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? String(error) };
  }
}

async function mustRun(file: string, args: readonly string[]): Promise<string> {
  const result = await run(file, args);
  if (result.code !== 0) throw new Error(`${file} ${args.join(" ")} exited ${result.code}:\n${result.stderr}`);
  return result.stdout;
}

/** Runs `commands` in bash after sourcing the script: its functions, with settings changed. */
function sourced(commands: string): Promise<Result> {
  return run("bash", ["-c", `source ${JSON.stringify(SCRIPT)}\n${commands}\n((\${#FAILURES[@]} == 0))`]);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

beforeAll(() => {
  if (userInfo().uid !== 0) throw new Error("scripts/services.sh and its test need root (the script edits server configs and starts daemons)");
  for (const tool of ["/usr/bin/pg_createcluster", "/usr/bin/mariadb-install-db", "/usr/sbin/mariadbd"]) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: run bash scripts/services.sh (it installs what is missing)`);
  }
});

describe("scripts/services.sh on Debian's defaults", () => {
  it("lets the tests' PostgreSQL logins in over 127.0.0.1 (trust in pg_hba.conf), then changes nothing", async () => {
    const version = readdirSync("/etc/postgresql").sort((a, b) => Number(a) - Number(b)).at(-1)!;
    const cluster = `dts_svc_${randomBytes(4).toString("hex")}`;
    const port = await freePort();
    const etc = `/etc/postgresql/${version}/${cluster}`;
    const psql = (...args: string[]) => run("psql", ["-w", "-XAtq", ...args]);
    const setUp = `PG_CLUSTER=${cluster}; PG_PORT=${port}; setup_postgres`;
    await mustRun("pg_createcluster", ["--start-conf", "manual", "--port", String(port), version, cluster, "--", "--no-sync"]);
    try {
      await mustRun("pg_ctlcluster", ["--skip-systemctl-redirect", version, cluster, "start"]);
      const refused = await psql("-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-c", "select 1");
      expect(refused.stderr, "Debian's own pg_hba.conf asks for a password").toMatch(/password/);

      const first = await sourced(setUp);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`added trust for 127.0.0.1/32 (all databases, replication) at the top of ${etc}/pg_hba.conf`);
      expect(first.stdout).toContain("restarting cluster"); // Debian's wal_level is replica
      expect(first.stdout).toMatch(/^ok {3}postgres /m);

      const plain = await psql("-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-c", "show wal_level");
      expect(plain.stdout.trim(), plain.stderr).toBe("logical");
      const replication = await psql(`host=127.0.0.1 port=${port} user=postgres dbname=postgres replication=database`, "-c", "IDENTIFY_SYSTEM");
      expect(replication.code, replication.stderr).toBe(0);
      const hba = readFileSync(`${etc}/pg_hba.conf`, "utf8");
      expect(hba.split("\n").filter((line) => line.endsWith("# dts"))).toEqual([
        "host    all             all             127.0.0.1/32            trust   # dts",
        "host    replication     all             127.0.0.1/32            trust   # dts",
      ]);
      expect(hba.endsWith(readFileSync(`${etc}/pg_hba.conf.dts-orig`, "utf8")), "Debian's lines follow, unchanged").toBe(true);

      const second = await sourced(setUp);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout, "a second run only says ok").toMatch(/^ok {3}postgres [^\n]*\n$/);
      expect(readFileSync(`${etc}/pg_hba.conf`, "utf8")).toBe(hba);
    } finally {
      await run("pg_dropcluster", ["--stop", version, cluster]);
      rmSync(etc, { recursive: true, force: true }); // what the script added: conf.d/dts.conf, pg_hba.conf.dts-orig
    }
  });

  it("lets MariaDB's root in over 127.0.0.1 without a password, whether or not host names are resolved, then changes nothing", async () => {
    const folder = mkdtempSync(join(tmpdir(), "dts-svc-mariadb-"));
    chownSync(folder, Number(await mustRun("id", ["-u", "mysql"])), Number(await mustRun("id", ["-g", "mysql"])));
    const socket = join(folder, "sock");
    const port = await freePort();
    let server: ChildProcess | undefined;
    const start = async (extra: string[]): Promise<void> => {
      const args = ["--no-defaults", "--user=mysql", `--datadir=${folder}/data`, `--socket=${socket}`, `--port=${port}`];
      server = spawn("/usr/sbin/mariadbd", [...args, "--bind-address=127.0.0.1", `--pid-file=${folder}/pid`, `--log-error=${folder}/error.log`, ...extra], { stdio: "ignore" });
      const alive = async () => (await run("mysqladmin", ["-uroot", "-h127.0.0.1", `-P${port}`, "--connect-timeout=1", "ping"])).code === 0;
      await eventually(`the scratch mariadbd on port ${port} (log: ${folder}/error.log)`, alive);
    };
    const stop = async (): Promise<void> => {
      if (server === undefined || server.exitCode !== null) return;
      const exited = new Promise((resolve) => server!.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    };
    const overTcp = () => run("mysql", ["-uroot", "-h127.0.0.1", `-P${port}`, "-NBe", "select current_user()"]);
    const letIn = `MARIADB_PORT=${port}; MARIADB_SOCKET=${socket}; maria_root_over_tcp`;
    try {
      await mustRun("mariadb-install-db", ["--no-defaults", "--user=mysql", `--datadir=${folder}/data`, "--auth-root-authentication-method=socket", "--skip-test-db"]);
      await start([]);
      const refused = await overTcp();
      expect(refused.stderr, "Debian's root takes unix_socket only").toMatch(/Access denied for user 'root'@'localhost'/);

      const first = await sourced(letIn);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`root is refused over TCP 127.0.0.1:${port}; letting it in without a password, from 127.0.0.1 only`);
      const resolved = await overTcp();
      expect(resolved.stdout.trim(), resolved.stderr).toBe("root@localhost");
      const socketLogin = await run("mysql", ["-uroot", "--protocol=socket", `-S${socket}`, "-NBe", "select current_user()"]);
      expect(socketLogin.stdout.trim(), `OS root still logs in on the socket: ${socketLogin.stderr}`).toBe("root@localhost");

      const second = await sourced(letIn);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout, "a second run changes nothing").toBe("");

      // With skip-name-resolve a login from 127.0.0.1 matches root@127.0.0.1, not root@localhost.
      await stop();
      await start(["--skip-name-resolve"]);
      const unresolved = await overTcp();
      expect(unresolved.stdout.trim(), unresolved.stderr).toBe("root@127.0.0.1");
    } finally {
      await stop();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
