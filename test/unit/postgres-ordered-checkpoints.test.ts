/**
 * Positions of parallel writes stored in the order the writes started: a write that commits
 * before an earlier one stores nothing new, and the earlier one, committing, stores the newest
 * position of the run of committed writes.
 */
import { describe, expect, it } from "vitest";
import { seqPosition } from "../../src/model/position.js";
import { OrderedCheckpoints } from "../../src/connectors/postgres/ordered-checkpoints.js";
import type { SourceCheckpoint } from "../../src/runtime/contracts.js";

const at = (seq: number): Record<string, SourceCheckpoint> => ({ s: { position: seqPosition(seq) } });

describe("ordered checkpoints", () => {
  it("stores a later write's position only once every earlier write has committed", async () => {
    const ordered = new OrderedCheckpoints();
    const writes = [{}, {}, {}];
    const places = writes.map((write, i) => ordered.place(write, at(i + 1)));
    expect(places).toEqual([0, 1, 2]);
    const stored: (Record<string, SourceCheckpoint> | undefined)[] = [];
    const commit = (place: number) => ordered.commit(place, true, async (checkpoints) => void stored.push(checkpoints));
    await commit(2); // the last commits first: nothing before it is committed
    await commit(0); // the first: its own, and the third's must wait for the second
    await commit(1); // the second: now the second's and the third's are covered
    expect(stored).toEqual([undefined, at(1), at(3)]);
  });

  it("keeps a retried write's place, and merges the positions of several sources", async () => {
    const ordered = new OrderedCheckpoints();
    const write = {};
    expect(ordered.place(write, { a: { position: seqPosition(1) } })).toBe(0);
    expect(ordered.place(write, { a: { position: seqPosition(1) } })).toBe(0);
    ordered.place({}, { b: { position: seqPosition(7) } });
    const stored: unknown[] = [];
    await ordered.commit(1, true, async (checkpoints) => void stored.push(checkpoints));
    await ordered.commit(0, true, async (checkpoints) => void stored.push(checkpoints));
    expect(stored).toEqual([undefined, { a: { position: seqPosition(1) }, b: { position: seqPosition(7) } }]);
  });

  it("commits one write at a time, and a failed commit leaves its place uncommitted", async () => {
    const ordered = new OrderedCheckpoints();
    ordered.place({}, at(1));
    ordered.place({}, at(2));
    let inside = 0;
    let most = 0;
    const slow = (place: number) =>
      ordered.commit(place, true, async () => {
        inside++;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inside--;
      });
    await Promise.all([slow(1), slow(0)]);
    expect(most).toBe(1);

    const failing = new OrderedCheckpoints();
    failing.place({}, at(1));
    failing.place({}, at(2));
    await expect(failing.commit(0, true, async () => Promise.reject(new Error("connection lost")))).rejects.toThrow("connection lost");
    const stored: unknown[] = [];
    await failing.commit(1, true, async (checkpoints) => void stored.push(checkpoints));
    expect(stored).toEqual([undefined]);
  });

  it("stores no position at all after a write that rejected events", async () => {
    const ordered = new OrderedCheckpoints();
    ordered.place({}, at(1));
    ordered.place({}, at(2));
    const stored: unknown[] = [];
    await ordered.commit(0, false, async (checkpoints) => void stored.push(checkpoints));
    await ordered.commit(1, true, async (checkpoints) => void stored.push(checkpoints));
    expect(stored).toEqual([undefined, undefined]);
  });
});
