/**
 * Where the mysql source is in the binlog: a file and offset, and the GTID state after it — a
 * MariaDB GTID position (`0-1-1234,1-2-77`) or a MySQL GTID set (`uuid:1-5`), empty when the
 * server has none. The checkpoint's `mysql-binlog` token is `FILE:OFFSET;GTIDS`, so positions
 * order by file and offset (src/model/position.ts) and one token says both ways to resume: by
 * GTID where there is one (the server finds the file itself, also after a failover), by file and
 * offset where GTIDs are off.
 */
import { binlogPosition, parseBinlogToken, type Position } from "../../model/position.js";

export interface BinlogPoint {
  readonly file: string;
  readonly offset: number;
  /** The GTID state of everything before this point; "" when the server has no GTIDs. */
  readonly gtids: string;
}

export function pointPosition(point: BinlogPoint): Position {
  const base = binlogPosition(point.file, point.offset);
  return point.gtids === "" ? base : { kind: base.kind, token: `${base.token};${point.gtids}` };
}

export function positionPoint(position: Position): BinlogPoint {
  if (position.kind !== "mysql-binlog") throw new SyntaxError(`not a binlog position: a ${position.kind} position`);
  parseBinlogToken(position.token);
  const semi = position.token.indexOf(";");
  const head = semi < 0 ? position.token : position.token.slice(0, semi);
  const colon = head.lastIndexOf(":");
  return { file: head.slice(0, colon), offset: Number(head.slice(colon + 1)), gtids: semi < 0 ? "" : position.token.slice(semi + 1) };
}

export function describePoint(point: BinlogPoint): string {
  return `${point.file}:${point.offset}${point.gtids === "" ? "" : ` (GTID ${point.gtids})`}`;
}

/** Orders two points of one server by file sequence and offset. */
export function comparePoints(a: Pick<BinlogPoint, "file" | "offset">, b: Pick<BinlogPoint, "file" | "offset">): number {
  const sa = Number(/\.(\d+)$/.exec(a.file)?.[1] ?? 0);
  const sb = Number(/\.(\d+)$/.exec(b.file)?.[1] ?? 0);
  return sa !== sb ? sa - sb : a.offset - b.offset;
}

/** MariaDB GTID positions: the last GTID per replication domain. */
export class MariadbGtids {
  private readonly domains = new Map<string, string>();

  constructor(text: string) {
    for (const part of text.split(",")) {
      const gtid = part.trim();
      if (gtid === "") continue;
      this.domains.set(gtid.split("-")[0]!, gtid);
    }
  }

  add(gtid: string): void {
    this.domains.set(gtid.split("-")[0]!, gtid);
  }

  toString(): string {
    return [...this.domains.keys()]
      .sort((a, b) => Number(a) - Number(b))
      .map((domain) => this.domains.get(domain)!)
      .join(",");
  }
}
