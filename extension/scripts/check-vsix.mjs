// Checks a built .vsix: the manifest and the bundled JS are in it, no node_modules,
// no sources or tests, and reports its size.   node extension/scripts/check-vsix.mjs FILE
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";

const file = process.argv[2];
if (!file) {
  console.error("usage: check-vsix.mjs FILE.vsix");
  process.exit(2);
}
// A .vsix is a zip; list it with Python's zipfile (always here, since the server is Python).
const python = process.env.FORGE_INDEXER_PYTHON || "python3";
const listing = execFileSync(python, ["-c", "import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); print(json.dumps([[i.filename, i.file_size] for i in z.infolist()]))", file], { encoding: "utf8" });
const entries = JSON.parse(listing);
const names = entries.map(([n]) => n);
const problems = [];
for (const required of ["extension/package.json", "extension/extension/dist/extension.js", "extension.vsixmanifest", "extension/docs/vscode.md"]) {
  if (!names.includes(required)) problems.push(`missing ${required}`);
}
for (const n of names) {
  if (n.includes("node_modules/")) problems.push(`node_modules inside: ${n}`);
  if (/\.(ts|map)$/.test(n) && !n.endsWith(".d.ts")) problems.push(`source or map inside: ${n}`);
  if (/\/(test|out|scripts|src)\//.test(n.replace(/^extension\//, "/"))) problems.push(`not for users: ${n}`);
  if (/\.(py|gguf|lock)$/.test(n) || n.includes(".venv/") || n.includes("fixtures/")) problems.push(`not for users: ${n}`);
}
const size = statSync(file).size;
if (size > 2 * 1024 * 1024) problems.push(`too big: ${size} bytes`);
for (const [n, s] of entries) console.log(`${String(s).padStart(9)}  ${n}`);
console.log(`${file}: ${entries.length} files, ${(size / 1024).toFixed(1)} KiB`);
if (problems.length) {
  console.error(problems.map((p) => `  - ${p}`).join("\n"));
  process.exit(1);
}
console.log("vsix contents OK");
