/** Status bar text from `$/progress` events and from `forge/status`. */
import * as assert from "node:assert/strict";
import { test } from "node:test";

import type { RootStatus } from "../../src/protocol";
import { IndexStatus } from "../../src/status";

function root(name: string, over: Partial<RootStatus> = {}): RootStatus {
  return {
    root: `file:///ws/${name}`, path: `/ws/${name}`, name, state: "idle", files: 4, chunks: 11, symbols: 9,
    vectors: 11, coverage: 1, semanticCoverage: 1, filesIndexed: 4, filesTotal: 4, model: "all-MiniLM-L6-v2",
    lastError: null, lastIndexed: null, stateDir: "/state", watcher: "native", ...over,
  };
}

test("progress begin/report/end drives the text: files and chunks, percentage", () => {
  const s = new IndexStatus();
  assert.match(s.render().text, /loading~spin/);
  s.setServerState("running");
  s.onProgress("t1", { kind: "begin", title: "Indexing shop", message: "starting", percentage: 0, cancellable: true });
  assert.equal(s.render().text, "$(sync~spin) forge-indexer 0% · starting");
  s.onProgress("t1", { kind: "report", message: "120/480 files, 610 chunks", percentage: 2 });
  assert.equal(s.render().text, "$(sync~spin) forge-indexer 2% · 120/480 files, 610 chunks");
  assert.deepEqual(s.render().cancellable, ["t1"]);
  s.onProgress("t1", { kind: "report", message: "embedding: 1200/2400 chunks", percentage: 55 });
  assert.equal(s.render().text, "$(sync~spin) forge-indexer 55% · embedding: 1200/2400 chunks");
  assert.ok(s.indexing);
  s.onProgress("t1", { kind: "end", message: "480 files indexed, 2400 chunks embedded in 41.7 s" });
  assert.ok(!s.indexing);
  assert.equal(s.render().text, "$(database) forge-indexer");
  assert.match(s.render().tooltip, /Indexing shop: 480 files indexed/);
});

test("two roots indexing at once: mean percentage and a count", () => {
  const s = new IndexStatus();
  s.setServerState("running");
  s.onProgress(1, { kind: "begin", title: "Indexing a", percentage: 20, message: "1/2 files" });
  s.onProgress(2, { kind: "begin", title: "Indexing b", percentage: 60 });
  assert.equal(s.render().text, "$(sync~spin) forge-indexer 40% · 1/2 files (+1 more)");
  assert.match(s.render().tooltip, /Indexing a: 20% · 1\/2 files\nIndexing b: 60% · /);
  s.onProgress(2, { kind: "end" });
  s.onProgress(1, { kind: "report", percentage: 90 });
  assert.equal(s.render().text, "$(sync~spin) forge-indexer 90% · 1/2 files");
});

test("a report for an unknown token is ignored", () => {
  const s = new IndexStatus();
  s.setServerState("running");
  s.onProgress("x", { kind: "report", percentage: 50 });
  assert.ok(!s.indexing);
});

test("idle: coverage and model from forge/status", () => {
  const s = new IndexStatus();
  s.setServerState("running");
  s.onStatus({ roots: [root("root_a"), root("root_b")] });
  assert.equal(s.render().text, "$(database) forge-indexer 100% · all-MiniLM-L6-v2");
  assert.equal(s.render().severity, "normal");
  assert.match(s.render().tooltip, /root_a: idle · 4\/4 files · 11 chunks · 100% embedded · all-MiniLM-L6-v2/);
  s.onStatus({ roots: [root("root_a"), root("root_b", { semanticCoverage: 0.5 })] });
  assert.equal(s.render().text, "$(database) forge-indexer 50% indexed · all-MiniLM-L6-v2");
  assert.equal(s.render().severity, "warning");
});

test("errors and a locked index are visible", () => {
  const s = new IndexStatus();
  s.setServerState("running");
  s.onStatus({ roots: [root("root_a", { state: "retrying", lastError: "held by pid 42" })] });
  assert.equal(s.render().text, "$(lock) forge-indexer: index locked");
  assert.match(s.render().tooltip, /held by pid 42/);
  s.onStatus({ roots: [root("root_a", { state: "error", lastError: "The embedding model is missing" })] });
  assert.equal(s.render().text, "$(error) forge-indexer: root_a failed");
  assert.equal(s.render().severity, "error");
});

test("server states", () => {
  const s = new IndexStatus();
  s.setServerState("not-found");
  assert.equal(s.render().text, "$(circle-slash) forge-indexer");
  assert.equal(s.render().severity, "error");
  s.setServerState("running");
  s.onProgress("t", { kind: "begin", title: "Indexing" });
  s.setServerState("stopped");
  assert.ok(!s.indexing, "a stopped server has no running progress");
  s.setServerState("failed");
  s.setServerState("stopped");
  assert.equal(s.render().text, "$(error) forge-indexer", "a server that gave up stays shown as failed");
  s.setServerState("starting");
  assert.match(s.render().text, /loading~spin/);
});

test("paused (indexOnStartup off, or a pause): the item says so and how to go on, until indexing begins", () => {
  const s = new IndexStatus();
  s.setServerState("running");
  s.onStatus({ roots: [root("a", { state: "pending", filesIndexed: 0, chunks: null as unknown as number })], indexingPaused: true, pauseReason: "indexOnStartup" });
  assert.equal(s.render().text, "$(debug-pause) forge-indexer: paused");
  assert.match(s.render().tooltip, /indexOnStartup is off/);
  assert.match(s.render().tooltip, /Resume Indexing or Reindex Workspace/);
  assert.equal(s.pauseReason, "indexOnStartup");
  s.onProgress("t", { kind: "begin", title: "Re-indexing a", percentage: 0 });
  assert.equal(s.pauseReason, undefined);
  assert.match(s.render().text, /sync~spin/);
  s.onStatus({ roots: [root("a")], indexingPaused: true });
  s.onProgress("t", { kind: "end" });
  assert.match(s.render().tooltip, /^Background indexing is paused\./);
  s.onStatus({ roots: [root("a")], indexingPaused: false });
  assert.equal(s.render().text, "$(database) forge-indexer 100% · all-MiniLM-L6-v2");
});
