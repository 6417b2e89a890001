// Builds the extension bundle with esbuild, or (with --tests) compiles sources and tests
// with tsc into extension/out for the node test runner.
//   node extension/scripts/build.mjs               development bundle (with a source map)
//   node extension/scripts/build.mjs --production  minified bundle, no source map (for the .vsix)
//   node extension/scripts/build.mjs --tests       tsc -> extension/out
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = new Set(process.argv.slice(2));
const require = createRequire(import.meta.url);

if (args.has("--tests")) {
  rmSync(join(root, "extension", "out"), { recursive: true, force: true });
  const tsc = require.resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", join(root, "extension", "tsconfig.test.json")], { stdio: "inherit" });
} else {
  const production = args.has("--production");
  const esbuild = await import("esbuild");
  rmSync(join(root, "extension", "dist"), { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: [join(root, "extension", "src", "extension.ts")],
    outfile: join(root, "extension", "dist", "extension.js"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node18",
    external: ["vscode"],
    minify: production,
    sourcemap: !production,
    metafile: true,
    logLevel: "warning",
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`bundled extension/dist/extension.js (${(bytes / 1024).toFixed(0)} KiB${production ? ", minified" : ""})`);
}
