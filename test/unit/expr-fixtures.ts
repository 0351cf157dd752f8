/**
 * Shared pieces of the expression tests: distinct spans (so an error's span can be checked),
 * an argument `row.aN` (so any kind of value — bytes, timestamps, nulls — can be passed to a
 * function or operator without a literal syntax for it), and an event to evaluate against.
 */
import type { Expr, Span } from "../../src/ast/nodes.js";
import type { ChangeEvent } from "../../src/model/event.js";
import { seqPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";

let offset = 0;
export function sp(): Span {
  offset += 10;
  return { start: offset, end: offset + 5 };
}

export const arg = (i: number): Expr => ({
  kind: "member",
  object: { kind: "identifier", name: "row", span: sp() },
  property: { text: `a${i}`, span: sp() },
  span: sp(),
});

export const event: ChangeEvent = {
  op: "insert",
  before: null,
  after: {},
  key: {},
  source: { connector: "datagen", db: "d", schema: "s", table: "t", position: seqPosition(1), ts: new Timestamp(0n) },
};
