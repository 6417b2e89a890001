/**
 * Wire test: the REAL Python server (`forge-indexer lsp`), driven from Node with the
 * protocol stack vscode-languageclient uses (vscode-jsonrpc / -languageserver-protocol)
 * and the capabilities the extension's own client sends. Two folders, indexing progress
 * to its end, forge/search, forge/context, workspace/symbol, a configuration change
 * answered the way the extension answers it, and a missing server command.
 */
import * as assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";

import {
  ConfigurationRequest,
  DidChangeConfigurationNotification,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  LogMessageNotification,
  RegistrationRequest,
  ShowMessageNotification,
  ShutdownRequest,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  WorkspaceSymbolRequest,
  createProtocolConnection,
  type ProtocolConnection,
  type Registration,
  type SymbolInformation,
} from "vscode-languageserver-protocol/node";
import { CancellationTokenSource, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";

import { ContextRequest, SearchRequest, StatusRequest, ErrorCodes } from "../../src/protocol";
import { describeSpawnError, resolveServerCommand, serverArgs } from "../../src/serverCommand";
import { IndexStatus, type ProgressValue } from "../../src/status";
import { extensionClientCapabilities } from "../clientCapabilities";
import { REPO, serverCommand } from "../paths";

const INDEX_TIMEOUT_MS = 600_000;

let tmp: string;
let ws: string;
let proc: ChildProcessWithoutNullStreams;
let conn: ProtocolConnection;
let stderr = "";
const progress: { token: string | number; value: ProgressValue }[] = [];
const registrations: Registration[] = [];
const messages: string[] = [];
const status = new IndexStatus();
/** What the "editor" answers to workspace/configuration for `forgeIndexer`. */
let configured: Record<string, unknown> = {};
let ended: Promise<void>;
/** The commands the server advertises (vscode-languageclient registers each in VS Code). */
let serverCommands: string[] = [];

const uri = (...parts: string[]): string => "file://" + path.join(ws, ...parts);

function waitFor(pred: () => boolean, what: string, timeoutMs = INDEX_TIMEOUT_MS): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (pred()) { resolve(); return; }
      if (Date.now() - start > timeoutMs) {
        reject(new Error(`timed out waiting for ${what}\nprogress: ${JSON.stringify(progress.slice(-5))}\nstderr tail: ${stderr.slice(-3000)}`));
        return;
      }
      setTimeout(tick, 100);
    };
    tick();
  });
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "forge-wire-"));
  ws = path.join(tmp, "lsp_ws");
  fs.cpSync(path.join(REPO, "fixtures", "lsp_ws"), ws, { recursive: true });
  const { command, args } = serverCommand();
  proc = spawn(command, [...args, "--log-level", "INFO"], {
    env: {
      ...process.env,
      // A private index and config; the converted model cache (user cache dir) is shared.
      FORGE_INDEXER_STATE_DIR: process.env.FORGE_INDEXER_STATE_DIR ?? path.join(tmp, "state"),
      XDG_CONFIG_HOME: path.join(tmp, "config"),
    },
    stdio: "pipe",
  });
  proc.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
  conn = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  conn.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    // As the extension's ProgressTap does.
    const sub = conn.onProgress(WorkDoneProgress.type, token, (value) => {
      progress.push({ token, value: value });
      status.onProgress(token, value);
      if (value.kind === "end") sub.dispose();
    });
    return null;
  });
  conn.onRequest(RegistrationRequest.type, (params) => { registrations.push(...params.registrations); return null; });
  conn.onRequest(ConfigurationRequest.type, (params) => params.items.map((i) => (i.section === "forgeIndexer" ? configured : null)));
  conn.onNotification(ShowMessageNotification.type, (m) => { messages.push(m.message); });
  conn.onNotification(LogMessageNotification.type, () => undefined);
  ended = new Promise((resolve) => proc.on("exit", () => { resolve(); }));
  conn.listen();

  const capabilities = extensionClientCapabilities();
  const init = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: uri("root_a"),
    workspaceFolders: [
      { uri: uri("root_a"), name: "root_a" },
      { uri: uri("root_b"), name: "root_b" },
    ],
    initializationOptions: { forgeIndexer: {} },
    capabilities,
    clientInfo: { name: "forge-indexer wire test (vscode-languageclient capabilities)" },
  });
  assert.equal(init.serverInfo?.name, "forge-indexer");
  assert.ok(init.capabilities.workspaceSymbolProvider, "workspace/symbol works with no extra set-up");
  serverCommands = init.capabilities.executeCommandProvider?.commands ?? [];
  await conn.sendNotification(InitializedNotification.type, {});
  status.setServerState("running");
});

after(async () => {
  try {
    await Promise.race([conn.sendRequest(ShutdownRequest.type), new Promise((r) => setTimeout(r, 20_000))]);
    await conn.sendNotification(ExitNotification.type);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 10_000))]);
  } finally {
    if (proc.exitCode === null) proc.kill();
    conn.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("capabilities: the extension's client announces progress, configuration and dynamic registration", () => {
  const caps = extensionClientCapabilities();
  assert.equal(caps.window?.workDoneProgress, true);
  assert.equal(caps.workspace?.configuration, true);
  assert.equal(caps.workspace?.didChangeConfiguration?.dynamicRegistration, true);
  assert.equal(caps.workspace?.workspaceFolders, true);
  assert.ok(caps.workspace?.symbol);
});

test("no extension command collides with a command the server advertises", () => {
  // vscode-languageclient registers every advertised command in VS Code; a second
  // registration of the same id makes the client fail to start (seen in code-server).
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { contributes: { commands: { command: string }[] } };
  const ours = manifest.contributes.commands.map((c) => c.command);
  assert.ok(serverCommands.length > 0);
  assert.deepEqual(ours.filter((c) => serverCommands.includes(c)), []);
});

test("both folders are indexed, with $/progress to the end, and the status bar follows", async () => {
  const ends = (): number => progress.filter((p) => p.value.kind === "end").length;
  await waitFor(() => ends() >= 2, "indexing progress of both roots to end");
  const begins = progress.filter((p) => p.value.kind === "begin").map((p) => (p.value as { title: string }).title);
  assert.ok(begins.some((t) => t.includes("root_a")) && begins.some((t) => t.includes("root_b")), begins.join(", "));
  assert.ok(progress.some((p) => p.value.kind === "report" && /files|chunks/.test(p.value.message ?? "")));
  assert.ok(!status.indexing, "no run left in the status bar");
  // Embedding may still finish after the store phase: wait until both roots are idle and embedded.
  let last = await conn.sendRequest(StatusRequest);
  const deadline = Date.now() + INDEX_TIMEOUT_MS;
  while (!(last.roots.length === 2 && last.roots.every((r) => r.state === "idle" && r.semanticCoverage >= 1))) {
    assert.ok(Date.now() < deadline, `roots not idle: ${JSON.stringify(last.roots)}`);
    await new Promise((r) => setTimeout(r, 250));
    last = await conn.sendRequest(StatusRequest);
  }
  status.onStatus(last);
  assert.match(status.render().text, /^\$\(database\) forge-indexer 100% · /);
  assert.ok(registrations.some((r) => r.method === "workspace/didChangeConfiguration"), "server registered for configuration changes");
});

test("forge/search finds code in both folders and says which folder", async () => {
  const geo = await conn.sendRequest(SearchRequest, { query: "great-circle distance between two coordinates", limit: 5 });
  assert.equal(geo.results[0]?.symbol, "HaversineDistance");
  assert.equal(geo.results[0]?.root, uri("root_b"));
  assert.equal(geo.results[0]?.uri, uri("root_b", "geometry.go"));
  assert.equal(geo.results[0]?.range.start.line, 9);
  assert.ok(geo.coverage.complete);
  const retry = await conn.sendRequest(SearchRequest, { query: "retry an HTTP request with exponential backoff", limit: 5 });
  assert.equal(retry.results[0]?.root, uri("root_a"));
  assert.equal(retry.results[0]?.symbol, "fetch_with_retry");
});

test("a cancelled forge/search is answered as cancelled (or finished first), and the server goes on", async () => {
  const cts = new CancellationTokenSource();
  const pending = conn.sendRequest(SearchRequest, { query: "least recently used cache eviction" }, cts.token);
  cts.cancel();
  try {
    await pending;
  } catch (err) {
    assert.equal((err as { code?: number }).code, ErrorCodes.RequestCancelled);
  }
  const again = await conn.sendRequest(SearchRequest, { query: "least recently used cache eviction", limit: 3 });
  assert.ok(again.results.some((r) => r.uri === uri("root_b", "cache.go")));
});

test("forge/context packs snippets for a cursor into the budget", async () => {
  const ctx = await conn.sendRequest(ContextRequest, {
    query: "how are cart totals computed",
    textDocument: { uri: uri("root_a", "web", "cart.ts") },
    position: { line: 10, character: 4 },
    budgetTokens: 400,
  });
  assert.ok(ctx.snippets.length > 0);
  assert.ok(ctx.snippets.some((s) => s.text.includes("calculateCartTotal")));
  assert.ok(ctx.tokensUsed > 0 && ctx.tokensUsed <= 400, `tokensUsed ${ctx.tokensUsed}`);
  assert.equal(ctx.budgetTokens, 400);
});

test("workspace/symbol (Ctrl+T) answers from both folders", async () => {
  const syms = (await conn.sendRequest(WorkspaceSymbolRequest.type, { query: "parse_config" })) as SymbolInformation[];
  assert.ok(syms.some((s) => s.name === "parse_config_file" && s.location.uri === uri("root_a", "config_loader.py")), JSON.stringify(syms.slice(0, 3)));
  const lru = (await conn.sendRequest(WorkspaceSymbolRequest.type, { query: "NewLRU" })) as SymbolInformation[];
  assert.ok(lru.some((s) => s.name === "NewLRUCache"));
});

test("a configuration change reaches the server without a restart", async () => {
  // What the extension's middleware does: answer the pull with explicit values, push the same.
  configured = { searchLimit: 2, contextBudget: 512 };
  await conn.sendNotification(DidChangeConfigurationNotification.type, { settings: { forgeIndexer: configured } });
  let st = await conn.sendRequest(StatusRequest);
  const deadline = Date.now() + 20_000;
  while (!st.roots.every((r) => (r as unknown as { settings: { searchLimit: number } }).settings.searchLimit === 2) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    st = await conn.sendRequest(StatusRequest);
  }
  for (const r of st.roots) {
    assert.deepEqual((r as unknown as { settings: Record<string, unknown> }).settings, { ...((r as unknown as { settings: Record<string, unknown> }).settings), searchLimit: 2, contextBudget: 512 });
  }
  const res = await conn.sendRequest(SearchRequest, { query: "distance between two strings" });
  assert.ok(res.results.length <= 2, `searchLimit applied: ${res.results.length} results`);
  assert.deepEqual(messages.filter((m) => /invalid|unknown setting/.test(m)), [], "no settings warnings");
});

test("a missing server command: found nowhere, one clear message; spawning it fails cleanly", async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "forge-nobin-"));
  const r = resolveServerCommand({ configuredPath: "", folders: [ws], trusted: true, pathEnv: empty, platform: process.platform });
  assert.equal(r.found, false);
  assert.ok(!r.found && /not found.*pipx install/.test(r.message), JSON.stringify(r));
  const missing = path.join(empty, "forge-indexer");
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
    const p = spawn(missing, serverArgs([]), { stdio: "pipe" });
    p.on("error", resolve);
  });
  assert.equal(err.code, "ENOENT");
  assert.match(describeSpawnError(missing, err), /cannot start .*no such file.*pipx install/);
  fs.rmSync(empty, { recursive: true, force: true });
});
