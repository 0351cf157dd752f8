/**
 * A redis-server of a test's own, for what must never be done to the shared one at 6379:
 * stopping it, killing it, restarting it. `createPrivateRedis()` starts one on a free port of
 * 127.0.0.1 with its data in a fresh temporary folder and returns it running; `stop` ends it
 * (`"graceful"`: SIGTERM, which writes the append-only file out; `"kill"`: SIGKILL, a crash),
 * `start` brings it back on the same port with the same data, `remove` stops it and deletes
 * the folder.
 *
 * The server persists every write before answering (`appendonly yes`, `appendfsync always`):
 * the durability a sink that keeps its checkpoints in Redis needs, so that a crash of the
 * server loses nothing it acknowledged. A server a test forgot to remove is killed when the
 * test process exits. A missing redis-server binary fails the test with the reason.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./private-postgres.js";

export const REDIS_SERVER = process.env.DTS_TEST_REDIS_SERVER ?? "/usr/bin/redis-server";

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** The server's process id while it runs. */
  readonly pid: number | undefined;
  /** Starts the server and waits until it answers PING (after loading its data). */
  start(): Promise<void>;
  /** `graceful`: SIGTERM (the server saves and exits); `kill`: SIGKILL. Waits for the exit. */
  stop(mode?: "graceful" | "kill"): Promise<void>;
  /** A client of this server (the caller disconnects it). */
  client(): Promise<Redis>;
  remove(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

export async function createPrivateRedis(): Promise<PrivateRedis> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: a private Redis needs redis-server (apt-get install redis-server), or set DTS_TEST_REDIS_SERVER`);
  const dir = mkdtempSync(join(tmpdir(), "dts-private-redis-"));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let removed = false;
  installExitHook();

  const connectOnce = async (): Promise<Redis | undefined> => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    client.on("error", () => {});
    try {
      await client.connect();
      if ((await client.ping()) === "PONG") return client;
    } catch {
      // not up yet, or still loading
    }
    client.disconnect();
    return undefined;
  };

  const server: PrivateRedis = {
    port,
    url,
    get running() {
      return child !== undefined;
    },
    get pid() {
      return child?.pid;
    },
    async start() {
      if (removed) throw new Error("the private Redis was removed");
      if (child !== undefined) return;
      let output = "";
      const started = spawn(
        REDIS_SERVER,
        ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--protected-mode", "no"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      started.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output = (output + chunk).slice(-4000)));
      started.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output = (output + chunk).slice(-4000)));
      child = started;
      live.add(started);
      exited = new Promise((resolve) => started.on("exit", () => resolve()));
      void exited.then(() => {
        live.delete(started);
        if (child === started) child = undefined;
      });
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (child !== started) throw new Error(`redis-server on port ${port} exited at start:\n${output}`);
        const client = await connectOnce();
        if (client !== undefined) {
          client.disconnect();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`redis-server on port ${port} did not answer within 30 s:\n${output}`);
    },
    async stop(mode = "graceful") {
      const running = child;
      if (running === undefined) return;
      running.kill(mode === "kill" ? "SIGKILL" : "SIGTERM");
      await exited;
    },
    async client() {
      const client = await connectOnce();
      if (client === undefined) throw new Error(`the private Redis at ${url} does not answer`);
      return client;
    },
    async remove() {
      if (removed) return;
      try {
        await server.stop("kill");
      } finally {
        removed = true;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    await server.start();
  } catch (error) {
    await server.remove().catch(() => {});
    throw error;
  }
  return server;
}
