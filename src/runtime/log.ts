/**
 * The runner's logger. Off a terminal, every record is one JSON line on stderr,
 * `{"level","time","msg",...fields}`, so that a log shipper can read it without a parser of
 * our own; on a terminal, the same records are printed as short human lines. Either way the
 * logger knows nothing of the progress line: `progress.ts` wraps the output stream so that a
 * log line first clears the progress line and then redraws it.
 *
 * Field values are converted for JSON here (bigints as strings, errors as their message) so
 * that logging a value can never throw.
 */
import type { Logger } from "./contracts.js";

export type LogLevel = "debug" | "info" | "warn" | "error";

const levelRank: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/** Where finished lines go: a stream, or a progress display that shares the terminal. */
export interface LineSink {
  writeLine(line: string): void;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** `json`: one JSON object per line; `text`: `HH:MM:SS level message key=value ...`. */
  readonly format: "json" | "text";
  readonly out: LineSink;
  /** For tests; defaults to the wall clock. */
  readonly now?: () => Date;
}

export interface RunLogger extends Logger {
  readonly level: LogLevel;
  /** The same logger with fields added to every record (e.g. `{ source: "shop" }`). */
  child(fields: Record<string, unknown>): RunLogger;
}

export function createLogger(options: LoggerOptions, bound: Record<string, unknown> = {}): RunLogger {
  const threshold = levelRank[options.level];
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (levelRank[level] < threshold) return;
    const all = fields === undefined ? bound : { ...bound, ...fields };
    options.out.writeLine(
      options.format === "json" ? jsonLine(level, now(), message, all) : textLine(level, now(), message, all),
    );
  };
  return {
    level: options.level,
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

/** A logger that drops everything: the default for `runPipeline` when none is given. */
export const silentLogger: RunLogger = {
  level: "error",
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

/** Any `Logger` (an embedding application's) as a `RunLogger`: child fields merged into each record. */
export function asRunLogger(logger: Logger, bound: Record<string, unknown> = {}, level: LogLevel = "debug"): RunLogger {
  if ("child" in logger && "level" in logger && Object.keys(bound).length === 0) return logger as RunLogger;
  const merge = (fields?: Record<string, unknown>): Record<string, unknown> => (fields === undefined ? bound : { ...bound, ...fields });
  return {
    level,
    debug: (message, fields) => logger.debug(message, merge(fields)),
    info: (message, fields) => logger.info(message, merge(fields)),
    warn: (message, fields) => logger.warn(message, merge(fields)),
    error: (message, fields) => logger.error(message, merge(fields)),
    child: (fields) => asRunLogger(logger, { ...bound, ...fields }, level),
  };
}

export function streamLineSink(stream: NodeJS.WritableStream): LineSink {
  return { writeLine: (line) => void stream.write(line + "\n") };
}

function jsonLine(level: LogLevel, time: Date, message: string, fields: Record<string, unknown>): string {
  const record: Record<string, unknown> = { level, time: time.toISOString(), msg: message };
  for (const [name, value] of Object.entries(fields)) {
    if (name !== "level" && name !== "time" && name !== "msg") record[name] = plain(value);
  }
  return JSON.stringify(record);
}

function textLine(level: LogLevel, time: Date, message: string, fields: Record<string, unknown>): string {
  let line = `${time.toISOString().slice(11, 19)} ${level.padEnd(5)} ${message}`;
  for (const [name, value] of Object.entries(fields)) {
    const shown = plain(value);
    line += ` ${name}=${typeof shown === "string" && !/\s/.test(shown) ? shown : JSON.stringify(shown)}`;
  }
  return line;
}

/** A value JSON.stringify can print: bigints and unknown objects become strings. */
function plain(value: unknown): unknown {
  switch (typeof value) {
    case "bigint":
      return value.toString();
    case "function":
    case "symbol":
      return String(value);
    case "object":
      if (value === null) return null;
      if (value instanceof Error) return value.message;
      if (Array.isArray(value)) return value.map(plain);
      if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
      if (Object.getPrototypeOf(value) === Object.prototype) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value)) out[k] = plain(v);
        return out;
      }
      return String(value);
    default:
      return value;
  }
}
