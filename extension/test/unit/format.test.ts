/** Results grouped by file; context formatting with folder names and token counts. */
import * as assert from "node:assert/strict";
import { test } from "node:test";

import { contextParams, contextSummary, fenceLanguage, formatContext } from "../../src/context";
import { groupByFile, lineRange, relativePath } from "../../src/format";
import type { SearchHit } from "../../src/protocol";

const h = (uri: string, line: number, score: number): SearchHit => ({
  uri, root: "file:///ws/a", range: { start: { line, character: 0 }, end: { line: line + 2, character: 1 } },
  symbol: `s${line}`, kind: "function", language: "go", score, preview: "x",
});

test("grouped by file: files by best hit, hits by line", () => {
  const groups = groupByFile([h("file:///ws/a/x.go", 30, 0.2), h("file:///ws/a/y.go", 1, 0.9), h("file:///ws/a/x.go", 3, 0.5)]);
  assert.deepEqual(groups.map((g) => [g.uri, g.best, g.hits.map((x) => x.range.start.line)]), [
    ["file:///ws/a/y.go", 0.9, [1]],
    ["file:///ws/a/x.go", 0.5, [3, 30]],
  ]);
});

test("line ranges are 1-based and a range ending at column 0 ends on the line before", () => {
  assert.equal(lineRange({ start: { line: 6, character: 4 }, end: { line: 14, character: 0 } }), "7–14");
  assert.equal(lineRange({ start: { line: 9, character: 0 }, end: { line: 16, character: 1 } }), "10–17");
  assert.equal(lineRange({ start: { line: 2, character: 0 }, end: { line: 2, character: 9 } }), "3");
  assert.equal(relativePath("file:///ws/a/web/my%20cart.ts", "file:///ws/a"), "web/my cart.ts");
});

test("context params from the selection and cursor", () => {
  assert.deepEqual(contextParams({ uri: "file:///ws/a/c.ts", selection: " total ", line: 3, character: 2 }), {
    textDocument: { uri: "file:///ws/a/c.ts" }, position: { line: 3, character: 2 }, query: "total",
  });
  assert.deepEqual(contextParams({ uri: "file:///ws/a/c.ts", selection: "", line: 0, character: 0 }), {
    textDocument: { uri: "file:///ws/a/c.ts" }, position: { line: 0, character: 0 },
  });
  assert.equal(contextParams(undefined, "  "), undefined);
  assert.deepEqual(contextParams(undefined, "why"), { query: "why" });
});

test("context text: folder/path:lines, fenced, and a token summary", () => {
  const result = {
    snippets: [{ uri: "file:///ws/b/geo.go", range: { start: { line: 9, character: 0 }, end: { line: 16, character: 1 } }, text: "func A() {}\n", score: 1, tokens: 74 }],
    tokensUsed: 1234, budgetTokens: 2048,
    coverage: { filesIndexed: 1, filesTotal: 1, ratio: 1, complete: true, indexing: [] },
  };
  assert.equal(formatContext(result, ["file:///ws/a", "file:///ws/b"], fenceLanguage), "b/geo.go:10–17\n```go\nfunc A() {}\n```\n");
  assert.equal(formatContext(result, ["file:///ws/b"], fenceLanguage), "geo.go:10–17\n```go\nfunc A() {}\n```\n");
  assert.equal(contextSummary(result), "1 snippet, 1,234 of 2,048 tokens");
});
