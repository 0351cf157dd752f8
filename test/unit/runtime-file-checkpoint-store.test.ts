/**
 * The default checkpoint store: a JSON file replaced atomically (no temporary file left
 * behind), merging sources saved separately, and refusing a file it cannot trust.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileCheckpointStore } from "../../src/runtime/file-checkpoint-store.js";

describe("file checkpoint store", () => {
  it("saves and loads every source's checkpoint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dts-store-"));
    const path = join(dir, ".dts-state");
    const store = new FileCheckpointStore(path, "quickstart");
    expect(await store.load()).toEqual({});
    await store.save({ shop: { position: { kind: "seq", token: "10" } } });
    await store.save({ replay: { position: { kind: "seq", token: "3" }, state: { line: 3 } } });
    await store.save({ shop: { position: { kind: "seq", token: "20" } } });
    expect(readdirSync(dir)).toEqual([".dts-state"]);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({
      dts_checkpoints: 2,
      pipelines: {
        quickstart: {
          sources: { replay: { position: { kind: "seq", token: "3" }, state: { line: 3 } }, shop: { position: { kind: "seq", token: "20" } } },
        },
      },
    });
    expect(await new FileCheckpointStore(path, "quickstart").load()).toEqual({
      replay: { position: { kind: "seq", token: "3" }, state: { line: 3 } },
      shop: { position: { kind: "seq", token: "20" } },
    });
  });

  it("refuses a file that is not a checkpoint file, saying what to do", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dts-store-"));
    const path = join(dir, "state");
    writeFileSync(path, "{ not json");
    await expect(new FileCheckpointStore(path, "p").load()).rejects.toThrow(/is not valid JSON .*move it away to start from the beginning/);
    writeFileSync(path, JSON.stringify({ dts_checkpoints: 1, sources: {} }));
    await expect(new FileCheckpointStore(path, "p").load()).rejects.toThrow(/is not a dts checkpoint file of version 2/);
    writeFileSync(path, JSON.stringify({ dts_checkpoints: 2, pipelines: { p: { sources: { s: { position: { kind: "seq" } } } } } }));
    await expect(new FileCheckpointStore(path, "p").load()).rejects.toThrow(/malformed position for source "s"/);
  });

  it("keeps each pipeline's checkpoints apart when several share the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dts-store-"));
    const path = join(dir, ".dts-state");
    const quickstart = new FileCheckpointStore(path, "quickstart");
    const analytics = new FileCheckpointStore(path, "analytics");
    await quickstart.load();
    await analytics.load();
    await quickstart.save({ shop: { position: { kind: "seq", token: "10" } } });
    await analytics.save({ shop: { position: { kind: "pg-lsn", token: "0/16B3748" } } });
    await quickstart.save({ shop: { position: { kind: "seq", token: "11" } } });
    expect(await new FileCheckpointStore(path, "quickstart").load()).toEqual({ shop: { position: { kind: "seq", token: "11" } } });
    expect(await new FileCheckpointStore(path, "analytics").load()).toEqual({ shop: { position: { kind: "pg-lsn", token: "0/16B3748" } } });
    expect(await new FileCheckpointStore(path, "other").load()).toEqual({});
  });

  it("forgets one pipeline's checkpoints (dts drop), keeping the others', and removes a file left empty", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dts-store-"));
    const path = join(dir, ".dts-state");
    const first = new FileCheckpointStore(path, "first");
    const second = new FileCheckpointStore(path, "second");
    await first.save({ shop: { position: { kind: "seq", token: "1" } } });
    await second.save({ shop: { position: { kind: "seq", token: "2" } } });
    expect([...(await first.savedAt()).keys()]).toEqual(["shop"]);
    expect(first.location).toBe(path);
    expect(await first.forget()).toBe(true);
    expect(await first.forget()).toBe(false);
    expect(await new FileCheckpointStore(path, "first").load()).toEqual({});
    expect(await new FileCheckpointStore(path, "second").load()).toEqual({ shop: { position: { kind: "seq", token: "2" } } });
    expect(readdirSync(dir)).toEqual([".dts-state"]);
    expect(await second.forget()).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
    expect(await second.forget()).toBe(false);
    // A file it cannot trust is said, not overwritten.
    writeFileSync(path, "{ not json");
    await expect(first.forget()).rejects.toThrow(/is not valid JSON/);
    expect(readFileSync(path, "utf8")).toBe("{ not json");
  });

  it("a folder that does not exist is an error at the first save", async () => {
    const store = new FileCheckpointStore(join(tmpdir(), "no-such-folder-dts", "state"), "p");
    await expect(store.save({ s: { position: null } })).rejects.toThrow(/cannot write the checkpoint file/);
  });
});
