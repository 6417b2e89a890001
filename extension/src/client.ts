/**
 * The language client: how the server is started, what the client tells it about settings,
 * and the two places where the extension listens in (indexing progress for the status bar;
 * the server's `window/showMessage`, shown once each, with actions).
 */
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  ResponseError,
  RevealOutputChannelOn,
  ShowMessageNotification,
  ShowMessageRequest,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  DidChangeConfigurationNotification,
  type ClientCapabilities,
  type FeatureState,
  type LanguageClientOptions,
  type MessageActionItem,
  type ServerOptions,
  type StaticFeature,
} from "vscode-languageclient/node";

import { SECTION, explicitServerSettings } from "./settings";
import type { ProgressValue } from "./status";

export interface ClientHooks {
  /** Every `$/progress` value of the server's work-done progress (indexing). */
  onProgress(token: string | number, value: ProgressValue): void;
  /** A `window/showMessage` from the server; already de-duplicated. */
  showMessage(type: number, message: string, actions: readonly MessageActionItem[]): Thenable<MessageActionItem | undefined>;
  /** The server stopped for good (crashed too often, or could not initialize). */
  onFatal(message: string): void;
}

/** Reports the server's work-done progress to the status bar (instead of a notification). */
export class ProgressTap implements StaticFeature {
  constructor(
    private readonly client: LanguageClient,
    private readonly onProgress: ClientHooks["onProgress"],
  ) {}

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = { ...(capabilities.window ?? {}), workDoneProgress: true };
  }

  getState(): FeatureState {
    return { kind: "static" };
  }

  initialize(): void {
    // Registered after the built-in progress feature, so this handler is the one used.
    this.client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const sub = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
        this.onProgress(token, value);
        if (value.kind === "end") sub.dispose();
      });
    });
  }

  clear(): void {
    // Nothing to release: each progress handler removes itself at its end.
  }
}

/** Keys of messages already shown in this session: each message appears once. */
export class ShownOnce {
  private readonly seen = new Set<string>();

  first(type: number, message: string): boolean {
    const key = `${type}\u0000${message}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  reset(): void {
    this.seen.clear();
  }
}

/** Restart after a crash, but not forever: at most `max` restarts in `windowMs`. */
export class RestartBudget {
  private readonly times: number[] = [];

  constructor(
    private readonly max = 4,
    private readonly windowMs = 3 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  allow(): boolean {
    const t = this.now();
    while (this.times.length && (this.times[0] ?? 0) < t - this.windowMs) this.times.shift();
    this.times.push(t);
    return this.times.length <= this.max;
  }
}

export function serverOptions(command: string, args: string[]): ServerOptions {
  return { command, args, transport: TransportKind.stdio, options: { env: { ...process.env } } };
}

/** Answer `workspace/configuration` for our section with the user's explicit settings only. */
export const configurationMiddleware: NonNullable<NonNullable<LanguageClientOptions["middleware"]>["workspace"]>["configuration"] = async (
  params,
  token,
  next,
) => {
  const ours = params.items.map((item) => item.section === SECTION);
  let others: unknown[] = [];
  if (!ours.every(Boolean)) {
    const answer = await next(params, token);
    if (answer instanceof ResponseError) return answer;
    others = answer;
  }
  return params.items.map((item, i) =>
    ours[i] ? explicitServerSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined) : (others[i] ?? null),
  );
};

export function createClient(
  command: string,
  args: string[],
  output: vscode.OutputChannel,
  hooks: ClientHooks,
): LanguageClient {
  const shown = new ShownOnce();
  const restarts = new RestartBudget();
  const options: LanguageClientOptions = {
    // Every local file: the server indexes them all and reindexes one on save.
    documentSelector: [{ scheme: "file" }],
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: () => ({ [SECTION]: explicitServerSettings() }),
    middleware: {
      workspace: {
        configuration: configurationMiddleware,
        // The server registers for `forgeIndexer` changes; push explicit values only.
        didChangeConfiguration: async () => {
          // `client` is assigned below, before the client starts and can call this.
          await client.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: explicitServerSettings() },
          });
        },
      },
    },
    errorHandler: {
      error: (_error, _message, count) => ({
        action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
        handled: true,
      }),
      closed: () => {
        if (restarts.allow()) return { action: CloseAction.Restart, handled: true };
        hooks.onFatal("forge-indexer: the server stopped several times in a few minutes and was not restarted. See its output for the reason.");
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
    initializationFailedHandler: (error) => {
      hooks.onFatal(`forge-indexer: the server could not start: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    },
  };

  const client: LanguageClient = new LanguageClient("forgeIndexer", "forge-indexer", serverOptions(command, args), options);
  client.registerFeature(new ProgressTap(client, (token, value) => { hooks.onProgress(token, value); }));
  // Registered before start: these replace the client's default handlers.
  client.onNotification(ShowMessageNotification.type, ({ type, message }) => {
    if (shown.first(type, message)) void hooks.showMessage(type, message, []);
  });
  client.onRequest(ShowMessageRequest.type, async ({ type, message, actions }) => {
    if (!shown.first(type, message)) return null;
    return (await hooks.showMessage(type, message, actions ?? [])) ?? null;
  });
  return client;
}
