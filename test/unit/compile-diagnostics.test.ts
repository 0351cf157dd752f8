/**
 * The diagnostics' contract beyond the golden files: the catalogue's shape, how the renderer
 * lines up the gutter and the caret, and that printed plans and pictures hold no secret.
 */
import { describe, expect, it } from "vitest";
import { compileText } from "../../src/compile.js";
import { catalogue } from "../../src/diagnostics/catalogue.js";
import { DiagnosticBag } from "../../src/diagnostics/diagnostic.js";
import { renderDiagnostics } from "../../src/diagnostics/render.js";
import { printPlanDot, printPlanJson, printPlanMermaid } from "../../src/plan/print.js";

describe("the catalogue", () => {
  it("has DTSnnnn codes with one-line templates", () => {
    for (const [code, entry] of Object.entries(catalogue)) {
      expect(code).toMatch(/^DTS[1-6]\d{3}$/);
      expect(entry.template).not.toMatch(/\n/);
      expect(["error", "warning"]).toContain(entry.severity);
    }
  });
});

describe("rendering", () => {
  const render = (text: string, start: number, end: number) => {
    const bag = new DiagnosticBag();
    bag.report("DTS1001", { start, end }, { char: text.slice(start, end) }, { help: "a help line" });
    return renderDiagnostics(bag.sorted(), { path: "x.dts", text });
  };

  it("lines the bars, the caret and the help up under a one-digit line number", () => {
    expect(render("a @ b\n", 2, 3)).toBe(['x.dts:1:3: error DTS1001: unexpected character "@"', "   |", " 1 | a @ b", "   |   ^", "   = help: a help line"].join("\n"));
  });

  it("widens the gutter for a two-digit line number", () => {
    const text = `${"\n".repeat(11)}  @@\n`;
    expect(render(text, 13, 15).split("\n")).toEqual([
      'x.dts:12:3: error DTS1001: unexpected character "@@"',
      "    |",
      " 12 |   @@",
      "    |   ^^",
      "    = help: a help line",
    ]);
  });

  it("drops the carriage return of a CRLF line and marks the end of a file", () => {
    expect(render("ab\r\ncd", 6, 6)).toContain(" 2 | cd\n   |   ^");
    expect(render("ab\r\ncd", 1, 2)).toContain(" 1 | ab\n   |  ^\n");
  });
});

describe("printed plans", () => {
  const text = `
let secret_url = "postgres://app:hunter2@db:5432/shop"
let token = "Bearer xyz"
source shop = postgres { url: secret_url, tables: ["public.*"] }
sink hook = http { url: env("HOOK_URL", "https://u:pw2@hooks.example.com"), headers: { Authorization: token } }
flow shop | filter row.note != "postgres://x:pw3@y" -> hook
`;
  const { plan, diagnostics } = compileText(text, "secrets.dts");

  it("compile", () => {
    expect(diagnostics).toEqual([]);
    expect(plan).toBeDefined();
  });

  it.each([
    ["json", printPlanJson],
    ["dot", printPlanDot],
    ["mermaid", printPlanMermaid],
  ] as const)("hide every password and secret in %s", (_format, print) => {
    const printed = print(plan!);
    for (const secret of ["hunter2", "pw2", "pw3", "Bearer xyz"]) expect(printed).not.toContain(secret);
  });

  it("keep env() variable names and the rest of a URL", () => {
    const printed = printPlanJson(plan!);
    expect(printed).toContain('"HOOK_URL"');
    expect(printed).toContain("postgres://app:***@db:5432/shop");
    expect(printed).toContain("https://u:***@hooks.example.com");
  });
});
