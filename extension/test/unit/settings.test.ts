/**
 * Settings: the manifest mirrors indexer/core/settings.py (checked against the Python model),
 * and only what the user set is sent to the server.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeEach, test } from "node:test";

import { SERVER_SETTING_KEYS } from "../../src/serverSettings.generated";
import { clientSettings, explicitServerSettings } from "../../src/settings";
import * as stub from "../vscodeStub";
import { REPO, python } from "../paths";

interface Property { type: string | string[]; default: unknown; description: string; scope: string; minimum?: number; maximum?: number }
const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  contributes: { configuration: { properties: Record<string, Property> } };
};
const props = manifest.contributes.configuration.properties;

beforeEach(() => { stub.reset(); });

test("the manifest mirrors the Python settings model (generated from it, no drift)", () => {
  const run = spawnSync(python(), [path.join(REPO, "extension/scripts/settings_mirror.py"), "--check"], { encoding: "utf8" });
  assert.equal(run.status, 0, `settings_mirror.py --check failed:\n${run.stdout}${run.stderr}`);
});

test("the check fails on drift and names the key", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "forge-mirror-"));
  const drifted = JSON.parse(JSON.stringify(manifest)) as typeof manifest;
  const limit = drifted.contributes.configuration.properties["forgeIndexer.searchLimit"];
  assert.ok(limit);
  limit.default = 25;
  delete drifted.contributes.configuration.properties["forgeIndexer.watch"];
  const file = path.join(tmp, "package.json");
  fs.writeFileSync(file, JSON.stringify(drifted));
  const run = spawnSync(python(), [path.join(REPO, "extension/scripts/settings_mirror.py"), "--check", "--manifest", file], { encoding: "utf8" });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /forgeIndexer\.searchLimit\.default: package\.json has 25, the model says 10/);
  assert.match(run.stderr, /missing in package\.json: forgeIndexer\.watch/);
});

test("every server key is in the manifest, with the model's shape", () => {
  for (const key of SERVER_SETTING_KEYS) {
    const p = props[`forgeIndexer.${key}`];
    assert.ok(p, key);
    assert.ok(p.description.length > 10, `${key} has a description`);
  }
  assert.deepEqual(props["forgeIndexer.searchLimit"], {
    type: "integer", default: 10, minimum: 1, maximum: 200, scope: "resource", description: "Default number of search results.",
  });
  assert.equal(props["forgeIndexer.modelPath"]?.scope, "machine", "a workspace may not choose the model file");
  assert.equal(props["forgeIndexer.stateDir"]?.scope, "machine");
  assert.equal(props["forgeIndexer.server.path"]?.scope, "machine", "a workspace may not choose the executable");
});

test("only explicit values are sent; extension keys and defaults never are", () => {
  stub.settings.set("forgeIndexer.searchLimit", { defaultValue: 10 });
  stub.settings.set("forgeIndexer.debounceMs", { defaultValue: 300, globalValue: 100, workspaceValue: 250 });
  stub.settings.set("forgeIndexer.exclude", { defaultValue: [], globalValue: ["*.min.js"] });
  stub.settings.set("forgeIndexer.modelPath", { defaultValue: null, globalValue: "/models/user.gguf", workspaceValue: "/evil.gguf" });
  stub.settings.set("forgeIndexer.stateDir", { defaultValue: null, workspaceValue: "/tmp/steal" });
  stub.settings.set("forgeIndexer.queryPrefix", { defaultValue: null, globalValue: null });
  stub.settings.set("forgeIndexer.server.path", { defaultValue: "", globalValue: "/opt/forge-indexer" });
  assert.deepEqual(explicitServerSettings(), {
    modelPath: "/models/user.gguf",
    exclude: ["*.min.js"],
    debounceMs: 250,
  });
});

test("per folder: a folder's value wins for that folder only", () => {
  stub.settings.set("forgeIndexer.watch", { defaultValue: true, globalValue: true });
  stub.folderSettings.set("file:///ws/b forgeIndexer.watch", false);
  assert.deepEqual(explicitServerSettings(stub.Uri.parse("file:///ws/b") as never), { watch: false });
  assert.deepEqual(explicitServerSettings(stub.Uri.parse("file:///ws/a") as never), { watch: true });
});

test("client settings: server path only from user settings, bounded delay", () => {
  stub.settings.set("forgeIndexer.server.path", { workspaceValue: "./evil" });
  stub.settings.set("forgeIndexer.search.typingDelayMs", { globalValue: 99999 });
  stub.settings.set("forgeIndexer.context.destination", { globalValue: "document" });
  assert.deepEqual(clientSettings(), { serverPath: "", serverArgs: [], typingDelayMs: 2000, contextDestination: "document" });
});
