/**
 * The error hierarchy (src/diagnostics/errors.ts): every error dts throws on purpose carries a
 * code, and the code alone decides the exit code, so the commands cannot drift apart; and
 * docs/running.md lists every code with the exit code the table gives it.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConnectorError as ContractsConnectorError } from "../../src/runtime/contracts.js";
import { ConnectorError, DtsError, EXIT, exitCodeOf, runtimeErrors, type ErrorCode } from "../../src/diagnostics/errors.js";
import { catalogue } from "../../src/diagnostics/catalogue.js";
import { PipelineFailure, RejectedEventError } from "../../src/runtime/failures.js";
import { RetriesExhaustedError } from "../../src/runtime/retry.js";
import { PipelineLockedError } from "../../src/runtime/run-lock.js";
import { StartValueError } from "../../src/runtime/start-values.js";
import { ConnectorNotBuiltError } from "../../src/connectors/registry.js";
import { EventDecodeError } from "../../src/model/json.js";
import { ExpressionError } from "../../src/expr/errors.js";
import { orderEvent } from "./runtime-fixtures.js";

const root = resolve(import.meta.dirname, "../..");

describe("the error hierarchy", () => {
  it("keeps ConnectorError's constructor and its export from contracts.ts", () => {
    expect(ContractsConnectorError).toBe(ConnectorError);
    const cause = new Error("ECONNRESET");
    const retriable = new ConnectorError("connection lost", true, { cause });
    expect(retriable).toBeInstanceOf(DtsError);
    expect(retriable).toMatchObject({ code: "DTS7102", retriable: true, cause, exitCode: EXIT.connector, name: "ConnectorError" });
    expect(new ConnectorError("bad password", false)).toMatchObject({ code: "DTS7101", retriable: false, exitCode: 3 });
    expect(new ConnectorError("no table", false, { code: "DTS7105" }).code).toBe("DTS7105");
  });

  it("gives each error its code and, through the one table, its exit code", () => {
    const event = orderEvent(1);
    const cases: [DtsError, ErrorCode, number][] = [
      [new StartValueError("env X unset"), "DTS7001", 1],
      [new PipelineLockedError("p", "held"), "DTS7002", 1],
      [new ExpressionError("env-unset", "unset", { kind: "literal", value: null } as never), "DTS7005", 1],
      [new RetriesExhaustedError("writing", { attempts: 3, downMs: 10, leftMs: 0, delayMs: 0, giveUp: true }, 5, new Error("down")), "DTS7103", 3],
      [new ConnectorNotBuiltError("kafka", "sink"), "DTS7104", 3],
      [new EventDecodeError('"op" must be a string'), "DTS7108", 3],
      [new RejectedEventError(event, "division by zero", "flow:1/step:1"), "DTS7201", 4],
    ];
    for (const [error, code, exit] of cases) {
      expect(error, error.name).toBeInstanceOf(DtsError);
      expect(error.code, error.name).toBe(code);
      expect(error.exitCode, error.name).toBe(exit);
      expect(exitCodeOf(error), error.name).toBe(exit);
      expect(error.retriable, error.name).toBe(false);
    }
  });

  it("a run's failure takes its first error's code; an unknown error counts as a connector's", () => {
    const rejected = new PipelineFailure("m", undefined, { cause: new RejectedEventError(orderEvent(1), "r", "sink s") });
    expect(rejected).toMatchObject({ code: "DTS7201", exitCode: 4, kind: "rejected" });
    const start = new PipelineFailure("m", undefined, { cause: new StartValueError("unset") });
    expect(start).toMatchObject({ code: "DTS7001", exitCode: 1, kind: "start" });
    const unknown = new PipelineFailure("m", undefined, { cause: new TypeError("x is undefined") });
    expect(unknown).toMatchObject({ code: "DTS7101", exitCode: 3, kind: "connector" });
  });

  it("anything that is not a DtsError is a bug: exit 70", () => {
    expect(exitCodeOf(new Error("boom"))).toBe(EXIT.internal);
    expect(exitCodeOf("thrown string")).toBe(70);
  });

  it("uses codes of its own, apart from the diagnostics catalogue's", () => {
    for (const code of Object.keys(runtimeErrors)) {
      expect(code).toMatch(/^DTS7\d{3}$/);
      expect(catalogue).not.toHaveProperty(code);
    }
  });

  it("docs/running.md lists every code with its exit code", () => {
    const doc = readFileSync(resolve(root, "docs/running.md"), "utf8");
    for (const [code, entry] of Object.entries(runtimeErrors)) {
      expect(doc, code).toMatch(new RegExp(`^\\| ${code} \\| ${entry.exit} \\| (yes|no|either) \\|`, "m"));
    }
  });
});
