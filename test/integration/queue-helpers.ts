/**
 * Shared by the message sink tests (rabbitmq, nats, http): a TCP proxy a test can cut to make
 * a shared server unreachable for its own pipeline only (the servers themselves are never
 * stopped: other suites use them), the check of a received stream against a reference run,
 * and reading a pipeline's file checkpoint.
 *
 * The stream check is what "at-least-once, duplicates only after the last checkpoint" means,
 * event by event: walking the received messages, each is either the next reference event or a
 * rewind to an earlier one, and a rewind may only land on the event right after a position the
 * pipeline had saved (`resumePoints`); reaching the end means nothing was lost. Comparing
 * bodies as text with the reference run's jsonl lines compares every value.
 */
import { readFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { decodeEvent } from "../../src/model/json.js";

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted so far. */
  connections = 0;

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const port = await freePort();
    const proxy = new TcpProxy(port, target);
    await proxy.listen();
    return proxy;
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      this.connections++;
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => socket.destroy());
      }
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  /** Drops every connection and refuses new ones until `restore`. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  async restore(): Promise<void> {
    await this.listen();
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** The seq positions a datagen pipeline's file checkpoint holds for `source`, or null before any. */
export function savedSeq(folder: string, pipeline: string, source: string): bigint | null {
  let text: string;
  try {
    text = readFileSync(join(folder, ".dts-state"), "utf8");
  } catch {
    return null;
  }
  const state = JSON.parse(text) as { pipelines?: Record<string, { sources?: Record<string, { position?: { token: string } | null }> }> };
  const token = state.pipelines?.[pipeline]?.sources?.[source]?.position?.token;
  return token === undefined ? null : BigInt(token);
}

export interface StreamCheck {
  /** Indexes into the reference where the received stream rewound. */
  readonly rewinds: readonly number[];
  readonly duplicates: number;
}

/**
 * Checks `received` (message bodies, in arrival order) against `reference` (the events of an
 * uninterrupted run, in order): every body is a reference event, no event is skipped, and a
 * rewind lands only right after a saved seq position in `resumePoints` (when given). Throws
 * with the first message that breaks it.
 */
export function checkStream(received: readonly string[], reference: readonly string[], resumePoints?: ReadonlySet<bigint>): StreamCheck {
  const indexOf = new Map<string, number>();
  reference.forEach((line, index) => indexOf.set(line, index));
  let next = 0;
  const rewinds: number[] = [];
  let duplicates = 0;
  for (let i = 0; i < received.length; i++) {
    const index = indexOf.get(received[i]!);
    if (index === undefined) throw new Error(`message ${i} is no event of the reference run (a value differs): ${received[i]!.slice(0, 300)}`);
    if (index === next) {
      next++;
      continue;
    }
    if (index > next) throw new Error(`message ${i} skips from reference event ${next} to ${index}: events lost`);
    if (resumePoints !== undefined) {
      const before = index === 0 ? 0n : BigInt(decodeEvent(reference[index - 1]!).source.position.token);
      if (!resumePoints.has(before)) {
        throw new Error(`message ${i} rewinds to reference event ${index} (after seq ${before}), which is not right after a saved checkpoint (${[...resumePoints].join(", ")})`);
      }
    }
    rewinds.push(index);
    duplicates += next - index;
    next = index + 1;
  }
  if (next !== reference.length) throw new Error(`the stream ends at reference event ${next} of ${reference.length}: events lost`);
  return { rewinds, duplicates };
}

export function readLines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line !== "");
}
