/**
 * What the extension sends the server as its `forgeIndexer` settings.
 *
 * Only values the user actually set are sent: VS Code would otherwise fill in every
 * default, and the client's settings come last in the server's layering, so the defaults
 * would silently override the user's config file, `.forge-indexer.toml` and
 * `FORGE_INDEXER_*`. Keys the server takes only from the user (`modelPath`, `stateDir`)
 * are never read from workspace or folder settings, which a cloned repository controls.
 * Extension-only keys (`server.*`, `search.*`, `context.*`) are never sent.
 */
import * as vscode from "vscode";

import { SERVER_SETTING_KEYS, USER_ONLY_SETTING_KEYS } from "./serverSettings.generated";

export const SECTION = "forgeIndexer";

export type ServerSettings = Record<string, unknown>;

/** The server settings the user set explicitly, for one folder (or the window if none). */
export function explicitServerSettings(scope?: vscode.Uri): ServerSettings {
  const config = vscode.workspace.getConfiguration(SECTION, scope ?? null);
  const out: ServerSettings = {};
  for (const key of SERVER_SETTING_KEYS) {
    const info = config.inspect(key);
    if (info === undefined) continue;
    const value = USER_ONLY_SETTING_KEYS.includes(key)
      ? info.globalValue
      : (info.workspaceFolderValue ?? info.workspaceValue ?? info.globalValue);
    if (value !== undefined && value !== null && value !== "") out[key] = value;
  }
  return out;
}

/** The extension's own settings (never sent to the server). */
export interface ClientSettings {
  serverPath: string;
  serverArgs: string[];
  typingDelayMs: number;
  contextDestination: "clipboard" | "document";
}

export function clientSettings(): ClientSettings {
  const config = vscode.workspace.getConfiguration(SECTION);
  // Machine-scoped: only the user's own settings may pick the executable.
  const path = config.inspect<string>("server.path")?.globalValue ?? "";
  const args = config.inspect<string[]>("server.args")?.globalValue ?? [];
  const delay = config.get<number>("search.typingDelayMs", 150);
  const dest = config.get<string>("context.destination", "clipboard");
  return {
    serverPath: typeof path === "string" ? path.trim() : "",
    serverArgs: Array.isArray(args) ? args.filter((a): a is string => typeof a === "string") : [],
    typingDelayMs: Number.isFinite(delay) ? Math.min(Math.max(delay, 0), 2000) : 150,
    contextDestination: dest === "document" ? "document" : "clipboard",
  };
}

/** True if a configuration change needs a server restart (a different executable). */
export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return (
    event.affectsConfiguration(`${SECTION}.server.path`) ||
    event.affectsConfiguration(`${SECTION}.server.args`)
  );
}
