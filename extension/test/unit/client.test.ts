/** The language client's glue: messages once, bounded restarts, configuration answers. */
import * as assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { RestartBudget, ShownOnce, configurationMiddleware } from "../../src/client";
import { extensionClientCapabilities } from "../clientCapabilities";
import * as stub from "../vscodeStub";

beforeEach(() => { stub.reset(); });

test("a server message is shown once", () => {
  const once = new ShownOnce();
  assert.ok(once.first(1, "forge-indexer: the model is missing"));
  assert.ok(!once.first(1, "forge-indexer: the model is missing"));
  assert.ok(once.first(2, "forge-indexer: the model is missing"), "another severity is another message");
});

test("restarts are bounded in time", () => {
  let now = 0;
  const budget = new RestartBudget(2, 1000, () => now);
  assert.ok(budget.allow());
  assert.ok(budget.allow());
  assert.ok(!budget.allow());
  now = 5000;
  assert.ok(budget.allow(), "old crashes are forgotten");
});

test("workspace/configuration: our section gets explicit values, others go to VS Code", async () => {
  stub.settings.set("forgeIndexer.searchLimit", { defaultValue: 10, globalValue: 3 });
  stub.folderSettings.set("file:///ws/b forgeIndexer.watch", false);
  const mw = configurationMiddleware;
  assert.ok(mw);
  const answer = await mw(
    { items: [{ section: "forgeIndexer", scopeUri: "file:///ws/b" }, { section: "editor" }, { section: "forgeIndexer" }] },
    { isCancellationRequested: false, onCancellationRequested: () => ({ dispose: () => undefined }) },
    (params) => params.items.map((i) => ({ from: "vscode", section: i.section })),
  );
  assert.deepEqual(answer, [{ searchLimit: 3, watch: false }, { from: "vscode", section: "editor" }, { searchLimit: 3 }]);
});

test("the client announces work-done progress and pulled configuration", () => {
  const caps = extensionClientCapabilities();
  assert.equal(caps.window?.workDoneProgress, true);
  assert.equal(caps.workspace?.configuration, true);
  assert.equal(caps.workspace?.didChangeConfiguration?.dynamicRegistration, true);
});
