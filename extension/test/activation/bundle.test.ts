/**
 * Activation of the SHIPPED bundle (`main` of package.json, the esbuild output that goes into
 * the .vsix) against the REAL server: `activate()` → vscode-languageclient starts
 * `forge-indexer lsp` (found the way the extension finds it: the `forgeIndexer.server.path`
 * setting) on a fixture workspace with the real model; initialize succeeds, the status bar
 * reaches 100 %, and the extension's own Search command gets the right file and opens it.
 * VS Code itself cannot be installed here; the `vscode` module is the stub, complete enough
 * for vscode-languageclient. A broken bundle, activation or client fails this test.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";

import type { ExtensionContext } from "vscode";

import { REPO, serverCommand } from "../paths";
import * as stub from "../vscodeStub";

const INDEX_TIMEOUT_MS = 600_000;
const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { main: string };
const BUNDLE = path.join(REPO, manifest.main);

interface Extension {
  activate(context: ExtensionContext): Promise<void>;
  deactivate(): Promise<void>;
}

let tmp: string;
let ws: string;
let ext: Extension;
let installed: string;
const output = (): string => stub.outputChannels.map((c) => c.lines.join("\n")).join("\n");
const status = (): string => stub.statusItems[0]?.text ?? "";

function waitFor(pred: () => boolean, what: string, timeoutMs = INDEX_TIMEOUT_MS): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (pred()) { resolve(); return; }
      const failed = /\$\((error|circle-slash)\)/.test(status());
      if (failed || Date.now() - start > timeoutMs) {
        reject(new Error(`${failed ? "failed" : "timed out"} waiting for ${what}; status bar: ${status()}\n` +
          `messages: ${JSON.stringify(stub.shown)}\noutput tail: ${output().slice(-4000)}`));
        return;
      }
      setTimeout(tick, 100);
    };
    tick();
  });
}

before(() => {
  stub.reset();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "forge-activation-"));
  ws = path.join(tmp, "lsp_ws");
  fs.cpSync(path.join(REPO, "fixtures", "lsp_ws"), ws, { recursive: true });
  const server = serverCommand();
  assert.equal(path.basename(server.command), "forge-indexer",
    "the activation test needs the forge-indexer script: set FORGE_INDEXER_SERVER or create .venv (bash tests/setup.sh)");
  // User settings, as a user would set them: the server executable, a private state dir,
  // and a server of its own (no shared daemon left running after the test).
  stub.settings.set("forgeIndexer.server.path", { globalValue: server.command });
  stub.settings.set("forgeIndexer.stateDir", { globalValue: path.join(tmp, "state") });
  stub.settings.set("forgeIndexer.sharedDaemon", { globalValue: false });
  stub.workspace.workspaceFolders = ["root_a", "root_b"].map((name, index) => ({
    uri: stub.Uri.file(path.join(ws, name)), name, index,
  }));
  // Loaded from a copy outside the repository, as it is laid out in the .vsix: no
  // node_modules to fall back on, so a dependency left out of the bundle fails here.
  installed = path.join(tmp, "installed-extension");
  const copy = path.join(installed, manifest.main);
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(BUNDLE, copy);
  fs.copyFileSync(path.join(REPO, "package.json"), path.join(installed, "package.json"));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ext = require(copy) as Extension;
});

after(async () => {
  await ext?.deactivate();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("the bundle activates, the real server initializes and indexes, and Search finds and opens the right file", async () => {
  assert.equal(typeof ext.activate, "function", `${BUNDLE} exports activate()`);
  const context = { subscriptions: [], extensionPath: installed } as unknown as ExtensionContext;
  await ext.activate(context);
  assert.ok(stub.registered.has("forgeIndexer.searchCode"), "activate() registered the commands");
  // Fails fast (not after the indexing timeout) when the server never gets going.
  await waitFor(() => /initialize from /.test(output()), "the server to be initialized", 120_000);
  await waitFor(() => /forge-indexer 100%/.test(status()), "the status bar to show the index at 100 %");
  assert.deepEqual(stub.shown.filter((m) => m.kind === "error"), [], "no error was shown");
  assert.match(output(), /initialize from Visual Studio Code/, "the server saw the client's name");

  // The user runs the command and types a query into its box.
  const searching = stub.registered.get("forgeIndexer.searchCode")?.() as Promise<unknown>;
  await waitFor(() => stub.quickPicks.length > 0, "the search box");
  const pick = stub.quickPicks[0];
  assert.ok(pick);
  pick.type("great-circle distance between two points on earth");
  await waitFor(() => pick.items.some((i) => (i as { hit?: unknown }).hit !== undefined), "search results in the box");
  const first = pick.items[0] as { label: string; description?: string; hit?: { uri: string } };
  assert.equal(first.hit?.uri, "file://" + path.join(ws, "root_b", "geometry.go"), JSON.stringify(pick.items.slice(0, 3)));
  assert.match(first.label, /HaversineDistance/);
  assert.match(first.description ?? "", /geometry\.go:10/);
  pick.accept();
  await searching;
  const opened = stub.opened.at(-1);
  assert.equal(opened?.uri, "file://" + path.join(ws, "root_b", "geometry.go"));
  assert.equal(opened?.preview, false, "Enter opens the hit (not a preview)");
});
