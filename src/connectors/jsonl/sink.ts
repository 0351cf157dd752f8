/**
 * The jsonl sink: one JSON line per event, appended to a file (or written to stdout).
 *
 * A write resolves only after its lines are on disk (write, then fdatasync), because resolving
 * is what lets the checkpoint move past them. One write call per batch, so the fsync is paid
 * per batch, not per event (and the runner hands a slow sink its whole backlog at once).
 *
 * After a crash the file may end in a torn line: a write that had not resolved, so its events
 * were never acknowledged and will be sent again. Appending after it would glue the next line
 * onto the fragment, so `start` cuts the file back to its last complete line first.
 *
 * Formats: `event` is `encodeEvent` (lossless; the jsonl source reads it back), `row` is the
 * row after the steps (`after`, or `before` for a delete), `debezium` the Debezium envelope.
 * A dead-lettered event's line also has `"rejection":{"reason","where"}` as its last field.
 */
import { open, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import { encodeDebezium } from "../../model/debezium.js";
import { encodeEvent, encodeJson } from "../../model/json.js";
import { optionsOf } from "../options.js";
import { sinkSpec } from "./spec.js";
import { fileProblem } from "./line-reader.js";
import { ConnectorError, type SinkBatch, type SinkContext, type SinkEvent, type SinkFactory, type SinkWriter } from "../../runtime/contracts.js";

type Format = "event" | "row" | "debezium";
const FORMATS: readonly Format[] = ["event", "row", "debezium"];

export const createSink: SinkFactory = (context) => new JsonlSink(context);

class JsonlSink implements SinkWriter {
  private readonly path: string;
  private readonly format: Format;
  private file: FileHandle | undefined;
  private stdoutError: Error | undefined;
  private readonly onStdoutError = (error: Error): void => {
    this.stdoutError = error;
  };

  constructor(private readonly context: SinkContext) {
    const options = optionsOf(sinkSpec, context.options, `sink ${context.name}`);
    this.path = options.path === "-" ? "-" : resolve(context.baseDir ?? ".", options.path);
    this.format = options.format;
  }

  async start(): Promise<void> {
    if (this.path === "-") {
      // Without a listener, a closed pipe (`dts-run x.dts | head`) would crash the process
      // instead of failing the write with a message.
      process.stdout.on("error", this.onStdoutError);
      return;
    }
    try {
      this.file = await open(this.path, "a+");
      await this.cutTornLine(this.file);
    } catch (error) {
      throw new ConnectorError(`jsonl: cannot open ${this.path}: ${fileProblem(error)}`, false, { cause: error });
    }
  }

  async write(batch: SinkBatch): Promise<readonly []> {
    if (batch.events.length === 0) return [];
    const processedAtMs = Date.now();
    let text = "";
    for (const event of batch.events) text += this.line(event, processedAtMs) + "\n";
    if (this.file === undefined) {
      await this.writeStdout(text);
      return [];
    }
    try {
      await this.file.write(text);
      await this.file.datasync();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A full disk may be freed; anything else (a bad file handle, EIO) will not get better.
      throw new ConnectorError(`jsonl: cannot write to ${this.path}: ${(error as Error).message}`, code === "ENOSPC" || code === "EAGAIN", { cause: error });
    }
    return [];
  }

  async close(): Promise<void> {
    process.stdout.off("error", this.onStdoutError);
    await this.file?.close();
    this.file = undefined;
  }

  private line(sinkEvent: SinkEvent, processedAtMs: number): string {
    const event = sinkEvent.event;
    let text: string;
    switch (this.format) {
      case "event":
        text = encodeEvent(event);
        break;
      case "row":
        text = encodeJson(event.after ?? event.before ?? {});
        break;
      case "debezium":
        text = encodeDebezium(event, { name: this.context.pipeline, processedAtMs });
        break;
    }
    const rejection = sinkEvent.rejection;
    if (rejection === undefined) return text;
    const field = `"rejection":{"reason":${JSON.stringify(rejection.reason)},"where":${JSON.stringify(rejection.where)}}`;
    return text === "{}" ? `{${field}}` : `${text.slice(0, -1)},${field}}`;
  }

  private writeStdout(text: string): Promise<void> {
    if (this.stdoutError !== undefined) return Promise.reject(stdoutFailure(this.stdoutError));
    return new Promise((resolve, reject) => {
      process.stdout.write(text, (error) => (error ? reject(stdoutFailure(error)) : resolve()));
    });
  }

  /** Cuts the file back to its last newline when a crash left a partial line at its end. */
  private async cutTornLine(file: FileHandle): Promise<void> {
    const { size } = await file.stat();
    if (size === 0) return;
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await file.read(chunk, 0, end - start, start);
      const at = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (at >= 0) {
        const keep = start + at + 1;
        if (keep < size) await this.cut(file, keep, size);
        return;
      }
      end = start;
    }
    await this.cut(file, 0, size);
  }

  private async cut(file: FileHandle, keep: number, size: number): Promise<void> {
    this.context.log.warn("cutting a torn last line left by an interrupted write; its events are sent again", {
      path: this.path,
      bytes: size - keep,
    });
    await file.truncate(keep);
    await file.sync();
  }
}

function stdoutFailure(error: Error): ConnectorError {
  return new ConnectorError(`jsonl: cannot write to standard output: ${error.message}`, false, { cause: error });
}
