/**
 * The `initialize` capabilities the extension's client really sends: the extension's own
 * `createClient` (vscode-languageclient with every built-in feature plus ours), loaded
 * against the `vscode` stub, asked for its capabilities. The wire test sends exactly these.
 */
import type { ClientCapabilities } from "vscode-languageclient/node";

import { createClient } from "../src/client";

export function extensionClientCapabilities(): ClientCapabilities {
  const output = { appendLine: () => undefined, append: () => undefined, show: () => undefined, dispose: () => undefined };
  const client = createClient("/nonexistent/forge-indexer", ["lsp"], output as never, {
    onProgress: () => undefined,
    showMessage: () => Promise.resolve(undefined),
    onFatal: () => undefined,
  });
  // An internal method of vscode-languageclient's BaseLanguageClient (what `initialize` sends).
  const internal = client as unknown as { computeClientCapabilities(): ClientCapabilities };
  return JSON.parse(JSON.stringify(internal.computeClientCapabilities())) as ClientCapabilities;
}
