/* global document -- page.evaluate() callbacks run in the browser */
// Optional, not part of the default test run: the extension in a real VS Code host.
// Installs the built .vsix into code-server (VS Code in the browser), opens the two-root
// fixture workspace in headless Chromium, waits for the status bar to reach 100 %, runs
// "Search Code Semantically", types a query, checks that the real server's results are in
// the QuickPick, and saves a screenshot.
//
//   CS_DIR=/tmp/cs node extension/test/host/code-server.mjs [screenshot.png]
//
// CS_DIR holds `npm install code-server@4.100.3 puppeteer-core` (code-server 4.100 runs on
// Node 20; as root it needs npm_config_unsafe_perm=true and Debian's libkrb5-dev,
// libsecret-1-dev, libx11-dev, libxkbfile-dev). CHROMIUM defaults to /usr/bin/chromium.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const csDir = process.env.CS_DIR ?? "/tmp/cs";
const shot = resolve(process.argv[2] ?? join(repo, "docs", "images", "vscode-search.png"));
const vsix = join(repo, "forge-indexer-0.1.0.vsix");
const server = process.env.FORGE_INDEXER_SERVER ?? join(repo, ".venv", "bin", "forge-indexer");
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const port = 18000 + Math.floor(Math.random() * 1000);
const require = createRequire(join(csDir, "package.json"));
const puppeteer = require("puppeteer-core");
const codeServer = join(csDir, "node_modules", ".bin", "code-server");

if (!existsSync(vsix)) throw new Error(`build the extension first: npm run package (${vsix})`);
const tmp = mkdtempSync(join(tmpdir(), "forge-host-"));
const ws = join(tmp, "lsp_ws");
cpSync(join(repo, "fixtures", "lsp_ws"), ws, { recursive: true });
const wsFile = join(tmp, "fixture.code-workspace");
writeFileSync(wsFile, JSON.stringify({ folders: [{ path: join(ws, "root_a") }, { path: join(ws, "root_b") }] }));
const userData = join(tmp, "user");
const exts = join(tmp, "extensions");
mkdirSync(join(userData, "User"), { recursive: true });
writeFileSync(join(userData, "User", "settings.json"), JSON.stringify({
  "forgeIndexer.server.path": server,
  "security.workspace.trust.enabled": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "extensions.autoCheckUpdates": false,
  "telemetry.telemetryLevel": "off",
}, null, 2));

const common = ["--user-data-dir", userData, "--extensions-dir", exts];
console.log(execFileSync(codeServer, [...common, "--install-extension", vsix], { encoding: "utf8" }).trim());

const env = { ...process.env, FORGE_INDEXER_STATE_DIR: process.env.FORGE_INDEXER_STATE_DIR ?? join(tmp, "state") };
const cs = spawn(codeServer, [...common, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`, "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"], { env, stdio: ["ignore", "pipe", "pipe"] });
let csLog = "";
cs.stdout.on("data", (d) => { csLog += d; });
cs.stderr.on("data", (d) => { csLog += d; });

/** The extension's output channel and the extension host log, as code-server saved them. */
function extensionLogs(dir) {
  try {
    const out = execFileSync("sh", ["-c", `find '${dir}/logs' -type f \\( -name '*forge*' -o -name 'exthost.log' \\) -exec sh -c 'echo "== $1"; tail -c 4000 "$1"' _ {} \\;`], { encoding: "utf8" });
    return out;
  } catch (e) {
    return `(no logs: ${e})`;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
try {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (i > 120) throw new Error(`code-server did not come up:\n${csLog}`);
    await sleep(500);
  }
  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-gpu", "--window-size=1440,900"] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 900 });
  await page.goto(`http://127.0.0.1:${port}/?workspace=${encodeURIComponent(wsFile)}`, { waitUntil: "domcontentloaded" });

  const statusText = () => page.evaluate(() => [...document.querySelectorAll(".statusbar-item")].map((e) => e.textContent ?? "").find((t) => t.includes("forge-indexer")) ?? "");
  const t0 = Date.now();
  let last = "";
  for (;;) {
    last = await statusText();
    if (/forge-indexer 100%/.test(last)) break;
    if (Date.now() - t0 > Number(process.env.HOST_TIMEOUT_MS ?? 600_000)) {
      throw new Error(`status bar never reached 100% (last: "${last}")\n${csLog.slice(-3000)}\n${extensionLogs(userData)}`);
    }
    await sleep(1000);
  }
  console.log(`status bar: "${last.trim()}" after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  await page.keyboard.press("F1");
  await page.waitForSelector(".quick-input-widget input", { visible: true });
  await page.keyboard.type("forge-indexer: Search Code Semantically");
  await sleep(800);
  await page.keyboard.press("Enter");
  await sleep(800);
  await page.keyboard.type("great-circle distance between two coordinates");
  await page.waitForFunction(() => [...document.querySelectorAll(".quick-input-list .monaco-list-row")].some((r) => (r.textContent ?? "").includes("HaversineDistance")), { timeout: 60_000 });
  await sleep(1500); // let the preview editor open
  const rows = await page.evaluate(() => [...document.querySelectorAll(".quick-input-list .monaco-list-row")].map((r) => (r.textContent ?? "").replace(/\s+/g, " ").trim()));
  console.log("QuickPick rows:\n  " + rows.join("\n  "));
  mkdirSync(dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
} finally {
  await browser?.close();
  cs.kill();
  rmSync(tmp, { recursive: true, force: true });
}
