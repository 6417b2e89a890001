/** The search QuickPick: debounce, cancellation of superseded queries, preview, open. */
import * as assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import type { CancellationToken } from "vscode";

import type { SearchHit, SearchResult } from "../../src/protocol";
import { hitItem, showSearch, type SearchDeps } from "../../src/search";
import * as stub from "../vscodeStub";

const ROOT_A = "file:///ws/root_a";
const ROOT_B = "file:///ws/root_b";

function hit(symbol: string, root: string, file: string, line: number, score: number): SearchHit {
  return {
    uri: `${root}/${file}`,
    range: { start: { line, character: 0 }, end: { line: line + 5, character: 0 } },
    symbol,
    kind: "function",
    language: "python",
    score,
    root,
    preview: `def ${symbol}():\n    pass`,
  };
}

const complete = { filesIndexed: 4, filesTotal: 4, ratio: 1, semantic: 1, complete: true, indexing: [] };

interface Call {
  query: string;
  token: CancellationToken;
  resolve: (r: SearchResult) => void;
  reject: (e: unknown) => void;
}

function harness(delayMs = 100) {
  const calls: Call[] = [];
  const previews: SearchHit[] = [];
  const opened: SearchHit[] = [];
  const results: string[] = [];
  let restored = 0;
  const deps: SearchDeps = {
    search: (query, token) =>
      new Promise<SearchResult>((resolve, reject) => calls.push({ query, token, resolve, reject })),
    preview: (h) => { previews.push(h); },
    open: (h) => { opened.push(h); },
    restore: () => { restored += 1; },
    onResults: (q) => { results.push(q); },
    delayMs,
    multiRoot: true,
  };
  return { deps, calls, previews, opened, results, restored: () => restored };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

beforeEach(() => {
  stub.reset();
  mock.timers.enable({ apis: ["setTimeout"] });
});
afterEach(() => {
  mock.timers.reset();
});

test("typing is debounced: one request after the quiet time, for the last value", () => {
  const h = harness(100);
  void showSearch(h.deps);
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("p");
  mock.timers.tick(50);
  pick.type("parse");
  mock.timers.tick(50);
  pick.type("parse config");
  mock.timers.tick(99);
  assert.equal(h.calls.length, 0, "no request before the quiet time");
  mock.timers.tick(1);
  assert.deepEqual(h.calls.map((c) => c.query), ["parse config"]);
});

test("a new query cancels the request still running and its late answer is dropped", async () => {
  const h = harness(10);
  void showSearch(h.deps);
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("retry");
  mock.timers.tick(10);
  assert.equal(h.calls.length, 1);
  const first = h.calls[0];
  assert.ok(first);
  assert.equal(first.token.isCancellationRequested, false);
  pick.type("retry with backoff");
  assert.equal(first.token.isCancellationRequested, true, "superseded request is cancelled at once");
  mock.timers.tick(10);
  assert.equal(h.calls.length, 2);
  const second = h.calls[1];
  assert.ok(second);
  // The old request answers late anyway: its results must not replace the new ones.
  second.resolve({ results: [hit("retry_with_backoff", ROOT_A, "http_retry.py", 3, 0.9)], coverage: complete });
  await flush();
  first.resolve({ results: [hit("stale_result", ROOT_A, "old.py", 1, 0.5)], coverage: complete });
  await flush();
  assert.deepEqual(pick.items.map((i) => i.label), ["$(symbol-function) retry_with_backoff"]);
  assert.deepEqual(h.results, ["retry with backoff"], "only the current query reaches the results view");
  assert.equal(pick.busy, false);
});

test("a cancelled request's error is not shown; other errors are one item, not a popup", async () => {
  const h = harness(0);
  void showSearch(h.deps);
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("a");
  mock.timers.tick(0);
  pick.type("ab");
  mock.timers.tick(0);
  h.calls[0]?.reject({ code: -32800, message: "cancelled" });
  h.calls[1]?.reject({ code: -32803, message: "The index is not ready yet.", data: { kind: "IndexNotReady", retryable: true } });
  await flush();
  assert.equal(pick.items.length, 1);
  assert.equal(pick.items[0]?.label, "$(sync) The index is not ready yet");
  assert.equal(stub.shown.length, 0, "no notification for a search error");
});

test("items show symbol, folder, path, lines and relevance, and are never filtered by VS Code", () => {
  const item = hitItem(hit("HaversineDistance", ROOT_B, "geo/geometry.go", 9, 0.83), true);
  assert.equal(item.label, "$(symbol-function) HaversineDistance");
  assert.equal(item.description, "root_b · geo/geometry.go:10–14");
  assert.match(item.detail ?? "", /^relevance 83% · python · def HaversineDistance/);
  assert.equal(item.alwaysShow, true);
  const single = hitItem(hit("f", ROOT_B, "a.go", 0, 0.05), false);
  assert.equal(single.description, "a.go:1–5");
  assert.match(single.detail ?? "", /^relevance 5%/);
  assert.match(hitItem(hit("g", ROOT_B, "a.go", 0, 0.004), false).detail ?? "", /^relevance <1% /);
});

test("moving the selection previews; accepting opens the hit and resolves with it", async () => {
  const h = harness(0);
  const done = showSearch(h.deps);
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("cart total");
  mock.timers.tick(0);
  const a = hit("calculateCartTotal", ROOT_A, "web/cart.ts", 8, 0.8);
  const b = hit("formatDate", ROOT_A, "web/dates.ts", 2, 0.1);
  h.calls[0]?.resolve({ results: [a, b], coverage: complete });
  await flush();
  assert.deepEqual(h.previews.map((p) => p.symbol), ["calculateCartTotal"], "first hit previewed when results arrive");
  pick.select(1);
  assert.deepEqual(h.previews.map((p) => p.symbol), ["calculateCartTotal", "formatDate"]);
  pick.accept();
  assert.equal(await done, b);
  assert.deepEqual(h.opened, [b]);
  assert.equal(h.restored(), 0);
  assert.ok(pick.disposed);
});

test("dismissing restores the editor and cancels what is still running", async () => {
  const h = harness(0);
  const done = showSearch(h.deps);
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("x");
  mock.timers.tick(0);
  pick.hide();
  assert.equal(await done, undefined);
  assert.equal(h.calls[0]?.token.isCancellationRequested, true);
  assert.equal(h.restored(), 1);
  assert.deepEqual(h.opened, []);
});

test("searching for the selection starts with that text at once (after the delay)", () => {
  const h = harness(20);
  void showSearch(h.deps, "  load the config file ");
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  assert.equal(pick.value, "  load the config file ");
  mock.timers.tick(20);
  assert.deepEqual(h.calls.map((c) => c.query), ["load the config file"]);
});

test("incomplete coverage is said in the list", async () => {
  const h = harness(0);
  void showSearch(h.deps);
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("q");
  mock.timers.tick(0);
  h.calls[0]?.resolve({
    results: [hit("f", ROOT_A, "a.py", 0, 0.3)],
    coverage: { filesIndexed: 2, filesTotal: 4, ratio: 0.5, semantic: 0.25, complete: false, indexing: [ROOT_A] },
  });
  await flush();
  assert.equal(pick.items.length, 2);
  assert.match(pick.items[1]?.label ?? "", /Still indexing \(25%\)/);
});
