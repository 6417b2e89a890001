/**
 * Activation against the stub: every contributed command is registered and documented, and
 * a missing server gives exactly one message with the install command and a docs button.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, test } from "node:test";

import type { ExtensionContext } from "vscode";

import { activate, deactivate } from "../../src/extension";
import { INSTALL_COMMAND } from "../../src/serverCommand";
import { REPO } from "../paths";
import * as stub from "../vscodeStub";

const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  contributes: { commands: { command: string; title: string }[] };
};

let savedPath: string | undefined;
let tmp: string;

beforeEach(() => {
  stub.reset();
  savedPath = process.env.PATH;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "forge-activate-"));
  process.env.PATH = tmp; // no forge-indexer anywhere
  stub.workspace.workspaceFolders = [{ uri: stub.Uri.file(tmp), name: "ws", index: 0 }];
});

afterEach(async () => {
  await deactivate();
  process.env.PATH = savedPath;
  fs.rmSync(tmp, { recursive: true, force: true });
});

const context = (): ExtensionContext => ({ subscriptions: [], extensionPath: REPO }) as unknown as ExtensionContext;
const flush = () => new Promise<void>((r) => setImmediate(r));

test("every contributed command is registered and documented in docs/vscode.md", async () => {
  await activate(context());
  const docs = fs.readFileSync(path.join(REPO, "docs", "vscode.md"), "utf8");
  for (const c of manifest.contributes.commands) {
    assert.ok(stub.registered.has(c.command), `${c.command} is registered`);
    if (c.command !== "forgeIndexer.openResult" && c.command !== "forgeIndexer.clearResults") {
      assert.ok(docs.includes(c.title), `docs/vscode.md mentions "${c.title}"`);
    }
  }
});

test("a missing server: one message with the install command, docs and settings buttons", async () => {
  stub.answerMessagesWith("Copy Install Command");
  await activate(context());
  await flush();
  const errors = stub.shown.filter((m) => m.kind === "error");
  assert.equal(errors.length, 1, JSON.stringify(stub.shown));
  assert.match(errors[0]?.message ?? "", /not found/);
  assert.ok(errors[0]?.message.includes(INSTALL_COMMAND));
  assert.deepEqual(errors[0]?.items, ["Copy Install Command", "Open Docs", "Open Settings"]);
  assert.equal(stub.env.clipboard.text, INSTALL_COMMAND);
  assert.equal(stub.statusItems[0]?.text, "$(circle-slash) forge-indexer");
  // A command used meanwhile repeats the same actionable message; nothing else appears.
  await stub.registered.get("forgeIndexer.searchCode")?.();
  await flush();
  assert.equal(stub.shown.length, 2);
  assert.deepEqual(stub.shown[1], errors[0]);
});

test("the install command the button copies is the one docs/vscode.md, the README and the extension's README give", () => {
  for (const doc of ["docs/vscode.md", "extension/README.md"]) {
    const text = fs.readFileSync(path.join(REPO, doc), "utf8");
    assert.ok(text.includes(INSTALL_COMMAND), `${doc} shows ${INSTALL_COMMAND}`);
    assert.doesNotMatch(text, /\bpip install forge-indexer\b/, `${doc} has no install from a PyPI release that does not exist`);
  }
  // The README gives the same steps on separate lines.
  const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
  for (const step of INSTALL_COMMAND.split(" && ").slice(1)) assert.ok(readme.includes(step), `README.md shows ${step}`);
});

test("Open Docs opens the docs page shipped in the extension (no network)", async () => {
  stub.answerMessagesWith("Open Docs");
  await activate(context());
  await flush();
  await flush();
  const call = stub.executed.find((c) => c[0] === "markdown.showPreview");
  assert.ok(call, JSON.stringify(stub.executed));
  assert.equal((call[1] as { fsPath: string }).fsPath, path.join(REPO, "docs", "vscode.md"));
});

test("no folder open: no server, no message, no status item", async () => {
  stub.workspace.workspaceFolders = undefined;
  await activate(context());
  assert.equal(stub.shown.length, 0);
  assert.equal(stub.statusItems[0]?.visible, false);
});
