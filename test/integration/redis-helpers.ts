/**
 * Redis for tests: the shared server (6379, never stopped), and the comparison of a cache with
 * its PostgreSQL source, key by key and value by value.
 *
 * Both sides are brought to one text per column: PostgreSQL prints its values (numeric with its
 * scale, timestamps in UTC ISO 8601 with microseconds, bytea in base64), and the cached row is
 * read as the sink wrote it — a JSON document decoded losslessly (decodeJson), or a hash whose
 * fields are texts and raw bytes. NULL is JSON null in a document and no field in a hash.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { Decimal } from "../../src/model/decimal.js";
import { decodeJson } from "../../src/model/json.js";
import { isRecord, type Value } from "../../src/model/value.js";
import type { ThrowawayDatabase } from "./pg-helpers.js";

export const REDIS_URL = process.env.DTS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export function uniquePrefix(label: string): string {
  return `dts_test_${label}_${randomBytes(4).toString("hex")}`;
}

/** A client of the shared server; fails loudly when it is not there. */
export async function sharedRedis(url = REDIS_URL): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new Error(`Redis is not reachable at ${url} (${(error as Error).message}): start it with scripts/services.sh`);
  }
  return client;
}

/** Every key matching `pattern` (SCAN, not KEYS: the shared server holds others' keys too). */
export async function keysMatching(client: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== "0");
  return keys.sort();
}

export async function deleteMatching(client: Redis, pattern: string): Promise<void> {
  const keys = await keysMatching(client, pattern);
  for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500));
}

/** The test table: every kind of value the sink encodes, and a large TOASTed text. */
export const ITEMS_DDL = `(id int PRIMARY KEY, name text, price numeric(10,2), qty bigint, flag boolean, at timestamptz, data bytea, big text)`;

/** 9,600 characters of hex, which pglz does not compress: stored out of line (TOAST). */
export const bigText = (seed: string): string => `(SELECT string_agg(md5(${seed} || '-' || g), '') FROM generate_series(1, 300) AS g)`;

const COLUMNS = ["id", "name", "price", "qty", "flag", "at", "data", "big"] as const;
const BYTES = new Set(["data"]);

type Texts = Record<string, string | null>;

/** The source rows as texts, by id. */
export async function sourceTexts(source: ThrowawayDatabase, table: string): Promise<Map<string, Texts>> {
  const rows = await source.sql<Texts>(
    `SELECT id::text AS id, name, price::text AS price, qty::text AS qty, flag::text AS flag,
            to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
            replace(encode(data, 'base64'), E'\\n', '') AS data, big
       FROM ${table} ORDER BY id`,
  );
  return new Map(rows.map((row) => [row.id!, row]));
}

function valueText(value: Value): string | null {
  if (value === null) return null;
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (value instanceof Decimal) return value.toString();
  if (isRecord(value) || Array.isArray(value)) throw new Error(`unexpected nested value ${JSON.stringify(value)}`);
  return String(value);
}

/** A cached row as texts, or undefined when the key is missing. */
export async function cachedTexts(client: Redis, key: string, format: "json" | "hash"): Promise<Texts | undefined> {
  return (await cachedRows(client, [key], format))[0];
}

/** Cached rows as texts (undefined where a key is missing), read in pipelined chunks. */
export async function cachedRows(client: Redis, keys: readonly string[], format: "json" | "hash"): Promise<(Texts | undefined)[]> {
  const out: (Texts | undefined)[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const pipeline = client.pipeline();
    for (const key of chunk) {
      if (format === "json") pipeline.get(key);
      else pipeline.hgetallBuffer(key);
    }
    const results = (await pipeline.exec()) ?? [];
    chunk.forEach((key, j) => {
      const [error, value] = results[j]!;
      if (error) throw error;
      out.push(format === "json" ? documentTexts(key, value as string | null) : hashTexts(value as Record<string, Buffer>));
    });
  }
  return out;
}

function documentTexts(key: string, text: string | null): Texts | undefined {
  if (text === null) return undefined;
  const document = decodeJson(text);
  if (!isRecord(document)) throw new Error(`${key} holds ${text}, not a JSON object`);
  const out: Texts = {};
  for (const column of COLUMNS) {
    if (!Object.hasOwn(document, column)) throw new Error(`${key}: column ${column} is missing from ${text.slice(0, 200)}`);
    out[column] = valueText(document[column]!);
  }
  return out;
}

function hashTexts(fields: Record<string, Buffer>): Texts | undefined {
  if (Object.keys(fields).length === 0) return undefined;
  const out: Texts = {};
  for (const column of COLUMNS) {
    const field = fields[column];
    out[column] = field === undefined ? null : BYTES.has(column) ? field.toString("base64") : field.toString("utf8");
  }
  return out;
}

/**
 * Asserts that the cache holds exactly the source's rows: the keys under `prefix` are one per
 * source row (keyed `${prefix}${id}`), each with every value equal. Returns a description of the
 * first difference, or undefined when equal.
 */
export async function cacheDifference(
  client: Redis,
  source: ThrowawayDatabase,
  table: string,
  prefix: string,
  format: "json" | "hash",
): Promise<string | undefined> {
  const expected = await sourceTexts(source, table);
  const keys = await keysMatching(client, `${prefix}*`);
  const wanted = new Set([...expected.keys()].map((id) => `${prefix}${id}`));
  const extra = keys.filter((key) => !wanted.has(key));
  if (extra.length > 0) return `keys without a source row: ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ` and ${extra.length - 5} more` : ""}`;
  const ids = [...expected.keys()];
  const rows = await cachedRows(client, ids.map((id) => `${prefix}${id}`), format);
  for (let i = 0; i < ids.length; i++) {
    const row = expected.get(ids[i]!)!;
    const key = `${prefix}${ids[i]}`;
    const cached = rows[i];
    if (cached === undefined) return `key ${key} is missing`;
    for (const column of COLUMNS) {
      if (cached[column] !== row[column]) {
        const show = (text: string | null | undefined): string => (text === null || text === undefined ? String(text) : JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…(${text.length})` : text));
        return `key ${key} column ${column}: cache has ${show(cached[column])}, source has ${show(row[column])}`;
      }
    }
  }
  return undefined;
}
