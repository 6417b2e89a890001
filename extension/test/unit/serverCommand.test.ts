/** Finding the server: setting, the workspace's .venv (trusted only), PATH; the missing case. */
import * as assert from "node:assert/strict";
import { test } from "node:test";

import { INSTALL_COMMAND, describeSpawnError, resolveServerCommand, type LookupEnv } from "../../src/serverCommand";

function env(files: string[], over: Partial<LookupEnv> = {}): LookupEnv {
  return {
    configuredPath: "",
    folders: ["/ws/a", "/ws/b"],
    trusted: true,
    pathEnv: "/usr/local/bin:/usr/bin",
    platform: "linux",
    isExecutable: (f) => files.includes(f),
    ...over,
  };
}

test("the setting wins", () => {
  const r = resolveServerCommand(env(["/opt/fi", "/ws/a/.venv/bin/forge-indexer"], { configuredPath: "/opt/fi" }));
  assert.deepEqual(r, { found: true, command: "/opt/fi", source: "setting" });
});

test("a setting that is not executable is an error (no silent fallback)", () => {
  const r = resolveServerCommand(env(["/usr/bin/forge-indexer"], { configuredPath: "/nope" }));
  assert.equal(r.found, false);
  assert.ok(!r.found && r.reason === "setting-invalid" && r.message.includes("forgeIndexer.server.path"));
});

test("then a workspace folder's .venv, in folder order", () => {
  const r = resolveServerCommand(env(["/ws/b/.venv/bin/forge-indexer", "/usr/bin/forge-indexer"]));
  assert.deepEqual(r, { found: true, command: "/ws/b/.venv/bin/forge-indexer", source: "venv" });
});

test("an untrusted workspace's .venv is never used", () => {
  const r = resolveServerCommand(env(["/ws/a/.venv/bin/forge-indexer", "/usr/bin/forge-indexer"], { trusted: false }));
  assert.deepEqual(r, { found: true, command: "/usr/bin/forge-indexer", source: "path" });
});

test("then PATH", () => {
  const r = resolveServerCommand(env(["/usr/bin/forge-indexer"]));
  assert.deepEqual(r, { found: true, command: "/usr/bin/forge-indexer", source: "path" });
});

test("Windows: Scripts\\forge-indexer.exe and ; in PATH", () => {
  const r = resolveServerCommand(env(["C:\\ws\\.venv\\Scripts\\forge-indexer.exe"], { platform: "win32", folders: ["C:\\ws"], pathEnv: "C:\\bin;C:\\x" }));
  assert.deepEqual(r, { found: true, command: "C:\\ws\\.venv\\Scripts\\forge-indexer.exe", source: "venv" });
});

test("missing: one message with the install command", () => {
  const r = resolveServerCommand(env([]));
  assert.equal(r.found, false);
  if (r.found) return;
  assert.equal(r.reason, "not-found");
  assert.ok(r.message.includes(INSTALL_COMMAND));
  assert.deepEqual(r.looked, ["/ws/a/.venv/bin/forge-indexer", "/ws/b/.venv/bin/forge-indexer", "PATH"]);
  assert.match(describeSpawnError("/x/forge-indexer", Object.assign(new Error("spawn ENOENT"), { code: "ENOENT" })), /no such file.*pipx install/);
});
