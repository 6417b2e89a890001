/** Where the repository and its Python are, for tests that run the real server. */
import * as fs from "node:fs";
import * as path from "node:path";

/** The repository root (extension/out/test -> ../../..). */
export const REPO = path.resolve(__dirname, "..", "..", "..");

/** The project's Python: $FORGE_INDEXER_PYTHON, the repository's .venv, or python3. */
export function python(): string {
  const fromEnv = process.env.FORGE_INDEXER_PYTHON;
  if (fromEnv) return fromEnv;
  const venv = path.join(REPO, ".venv", "bin", "python");
  return fs.existsSync(venv) ? venv : "python3";
}

/** The server command: $FORGE_INDEXER_SERVER, the repository's .venv forge-indexer, or `python -m server`. */
export function serverCommand(): { command: string; args: string[] } {
  const fromEnv = process.env.FORGE_INDEXER_SERVER;
  if (fromEnv) return { command: fromEnv, args: ["lsp"] };
  const exe = path.join(REPO, ".venv", "bin", "forge-indexer");
  if (fs.existsSync(exe)) return { command: exe, args: ["lsp"] };
  return { command: python(), args: ["-m", "server", "lsp"] };
}
