/**
 * Shared pieces of the expression tests: an argument `row.aN` (so any kind of value — bytes,
 * timestamps, nulls — can be passed to a function or operator without a literal syntax for
 * it), and an event to evaluate against. Expressions are plan trees (`PlanExpr`), as the
 * runtime compiles them; an error's node is checked by identity.
 */
import type { ChangeEvent } from "../../src/model/event.js";
import { seqPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { PlanExpr } from "../../src/plan/types.js";

export const arg = (i: number): PlanExpr => ({ kind: "member", object: { kind: "identifier", name: "row" }, property: `a${i}` });

export const event: ChangeEvent = {
  op: "insert",
  before: null,
  after: {},
  key: {},
  source: { connector: "datagen", db: "d", schema: "s", table: "t", position: seqPosition(1), ts: new Timestamp(0n) },
};
