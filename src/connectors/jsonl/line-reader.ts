/**
 * Reads a file line by line, on demand. readline's async iterator would do, but it reads the
 * stream on its own schedule; here nothing is read until the next line is asked for, so a
 * source that is not being pulled (backpressure) holds one chunk in memory, not the file.
 */
import { open, type FileHandle } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";

const CHUNK_BYTES = 256 * 1024;

export class LineReader {
  private readonly decoder = new StringDecoder("utf8");
  private readonly chunk = Buffer.alloc(CHUNK_BYTES);
  private text = "";
  private offset = 0;
  private eof = false;

  private constructor(private readonly file: FileHandle) {}

  static async open(path: string): Promise<LineReader> {
    return new LineReader(await open(path, "r"));
  }

  /** The next line without its "\n" (and "\r"), or undefined at the end of the file. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const newline = this.text.indexOf("\n", this.offset);
      if (newline >= 0) {
        const end = newline > this.offset && this.text.charCodeAt(newline - 1) === 0x0d ? newline - 1 : newline;
        const line = this.text.slice(this.offset, end);
        this.offset = newline + 1;
        return line;
      }
      if (this.eof) {
        if (this.offset >= this.text.length) return undefined;
        const last = this.text.slice(this.offset);
        this.offset = this.text.length;
        return last;
      }
      await this.fill();
    }
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private async fill(): Promise<void> {
    const { bytesRead } = await this.file.read(this.chunk, 0, this.chunk.length, null);
    const rest = this.text.slice(this.offset);
    this.offset = 0;
    if (bytesRead === 0) {
      this.eof = true;
      this.text = rest + this.decoder.end();
      return;
    }
    this.text = rest + this.decoder.write(this.chunk.subarray(0, bytesRead));
  }
}

/** A file system error as a short phrase: "no such file" rather than "ENOENT: no such file or directory, open '/…'". */
export function fileProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a folder";
    case "ENOTDIR":
      return "a folder on its path is a file";
    default:
      return (error as Error).message;
  }
}
