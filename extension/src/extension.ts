/** Entry point: starts the forge-indexer language server and wires the commands and views. */
import * as path from "node:path";
import * as vscode from "vscode";
import { State, type LanguageClient, type MessageActionItem } from "vscode-languageclient/node";

import { createClient } from "./client";
import { contextParams, contextSummary, fenceLanguage, formatContext } from "./context";
import {
  ContextRequest,
  PauseRequest,
  ReindexRequest,
  ResumeRequest,
  SearchRequest,
  StatusRequest,
  describeError,
  isCancellation,
  type LspRange,
  type SearchHit,
  type StatusResult,
} from "./protocol";
import { OPEN_RESULT, ResultsView } from "./resultsView";
import { showSearch } from "./search";
import { INSTALL_COMMAND, resolveServerCommand, serverArgs } from "./serverCommand";
import { clientSettings, needsRestart } from "./settings";
import { IndexStatus, rootLine, type ProgressValue } from "./status";

const STATUS_POLL_MS = 30_000;

function toRange(r: LspRange): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

class ForgeExtension implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly output = vscode.window.createOutputChannel("forge-indexer");
  private readonly item = vscode.window.createStatusBarItem("forgeIndexer.status", vscode.StatusBarAlignment.Left, 10);
  private readonly status = new IndexStatus();
  private readonly results = new ResultsView(() => (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
  private readonly view: vscode.TreeView<unknown>;
  private poll: ReturnType<typeof setInterval> | undefined;
  private notFoundShown = false;
  /** Why the server could not be found (set while it is missing). */
  private missing: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly context: vscode.ExtensionContext) {
    this.item.name = "forge-indexer";
    this.item.command = "forgeIndexer.showStatus";
    this.view = vscode.window.createTreeView("forgeIndexer.results", { treeDataProvider: this.results });
    this.render();
    this.item.show();
    const cmd = (id: string, fn: (...args: never[]) => unknown): void => {
      this.disposables.push(vscode.commands.registerCommand(id, fn));
    };
    cmd("forgeIndexer.searchCode", () => this.search());
    cmd("forgeIndexer.searchSelection", () => this.searchSelection());
    cmd("forgeIndexer.copyContext", () => this.copyContext());
    cmd("forgeIndexer.showStatus", () => this.showStatus());
    cmd("forgeIndexer.reindexWorkspace", () => this.reindex(undefined));
    cmd("forgeIndexer.reindexFile", (uri?: vscode.Uri) => this.reindex(uri ?? vscode.window.activeTextEditor?.document.uri ?? null));
    cmd("forgeIndexer.pauseIndexing", () => this.pause(true));
    cmd("forgeIndexer.resumeIndexing", () => this.pause(false));
    cmd("forgeIndexer.showOutput", () => { this.output.show(true); });
    cmd("forgeIndexer.restartServer", () => this.restart());
    cmd("forgeIndexer.clearResults", () => { this.results.clear(); this.view.description = ""; });
    cmd(OPEN_RESULT, (hit: SearchHit) => this.openHit(hit, false));
    this.disposables.push(
      this.output,
      this.item,
      this.view,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (needsRestart(e)) void this.restart();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        if (this.client === undefined) void this.start();
      }),
      // A window opened without a folder starts the server when the first folder arrives;
      // later folder changes reach the running server through the client.
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        if (this.client === undefined && this.hasFolders()) void this.start();
      }),
    );
  }

  // --- server lifecycle -------------------------------------------------------------

  private hasFolders(): boolean {
    return (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.scheme === "file");
  }

  async start(): Promise<void> {
    if (!this.hasFolders()) {
      // Nothing to index: no server, no status item until a folder is opened.
      this.item.hide();
      return;
    }
    this.item.show();
    const settings = clientSettings();
    const resolution = resolveServerCommand({
      configuredPath: settings.serverPath,
      folders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      trusted: vscode.workspace.isTrusted,
      pathEnv: process.env.PATH,
      platform: process.platform,
    });
    this.missing = undefined;
    if (!resolution.found) {
      this.missing = resolution.message;
      this.status.setServerState("not-found");
      this.render();
      this.output.appendLine(`${resolution.message} Looked in: ${resolution.looked.join(", ")}`);
      if (!this.notFoundShown) {
        this.notFoundShown = true;
        void this.serverMissing(resolution.message);
      }
      return;
    }
    this.output.appendLine(`starting ${resolution.command} (${resolution.source}) ${serverArgs(settings.serverArgs).join(" ")}`);
    const client = createClient(resolution.command, serverArgs(settings.serverArgs), this.output, {
      onProgress: (token, value) => { this.onProgress(token, value); },
      showMessage: (type, message, actions) => this.serverMessage(type, message, actions),
      onFatal: (message) => {
        this.status.setServerState("failed");
        this.render();
        void vscode.window.showErrorMessage(message, "Show Output", "Restart").then((choice) => {
          if (choice === "Show Output") this.output.show(true);
          if (choice === "Restart") void this.restart();
        });
      },
    });
    this.client = client;
    client.onDidChangeState(({ newState }) => {
      this.status.setServerState(newState === State.Running ? "running" : newState === State.Starting ? "starting" : "stopped");
      this.render();
      if (newState === State.Running) void this.refreshStatus();
    });
    this.status.setServerState("starting");
    this.render();
    try {
      await client.start();
    } catch (err) {
      this.output.appendLine(`the server did not start: ${describeError(err)}`);
      this.status.setServerState("failed");
      this.render();
      return;
    }
    this.poll ??= setInterval(() => {
      if (!this.status.indexing) void this.refreshStatus();
    }, STATUS_POLL_MS);
  }

  async restart(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    if (old !== undefined) {
      try {
        await old.dispose(5000);
      } catch (err) {
        this.output.appendLine(`stopping the server: ${describeError(err)}`);
      }
    }
    this.notFoundShown = false;
    await this.start();
  }

  private async serverMissing(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Copy Install Command", "Open Docs", "Open Settings");
    if (choice === "Copy Install Command") await vscode.env.clipboard.writeText(INSTALL_COMMAND);
    if (choice === "Open Docs") await this.openDocs();
    if (choice === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", "forgeIndexer.server.path");
  }

  private async openDocs(): Promise<void> {
    // The docs ship inside the extension: no network needed.
    const doc = vscode.Uri.file(path.join(this.context.extensionPath, "docs", "vscode.md"));
    await vscode.commands.executeCommand("markdown.showPreview", doc);
  }

  private async serverMessage(type: number, message: string, actions: readonly MessageActionItem[]): Promise<MessageActionItem | undefined> {
    const extra = type <= 2 ? ["Show Status", "Show Output"] : [];
    if (/model/i.test(message) && type === 1) extra.push("Open Docs");
    const titles = [...actions.map((a) => a.title), ...extra];
    const show = type === 1 ? vscode.window.showErrorMessage : type === 2 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    const choice = await show(message, ...titles);
    const serverAction = actions.find((a) => a.title === choice);
    if (serverAction !== undefined) return serverAction;
    if (choice === "Show Status") await this.showStatus();
    if (choice === "Show Output") this.output.show(true);
    if (choice === "Open Docs") await this.openDocs();
    return undefined;
  }

  private running(): LanguageClient | undefined {
    if (this.client?.state === State.Running) return this.client;
    if (!this.hasFolders()) {
      void vscode.window.showInformationMessage("forge-indexer: open a folder first; it indexes workspace folders.");
      return undefined;
    }
    if (this.missing !== undefined) {
      // The user asked for something: the same actionable message, not another error.
      void this.serverMissing(this.missing);
      return undefined;
    }
    const why = this.client === undefined ? "is not running (see forge-indexer: Show Server Output)" : "is still starting";
    void vscode.window.showWarningMessage(`forge-indexer: the server ${why}.`, "Show Output").then((c) => {
      if (c) this.output.show(true);
    });
    return undefined;
  }

  // --- status -----------------------------------------------------------------------

  private onProgress(token: string | number, value: ProgressValue): void {
    this.status.onProgress(token, value);
    this.render();
    if (value.kind === "end") void this.refreshStatus();
  }

  private async refreshStatus(): Promise<StatusResult | undefined> {
    const client = this.client;
    if (client?.state !== State.Running) return undefined;
    try {
      const result = await client.sendRequest(StatusRequest);
      this.status.onStatus(result);
      this.render();
      return result;
    } catch (err) {
      this.output.appendLine(`forge/status failed: ${describeError(err)}`);
      return undefined;
    }
  }

  private render(): void {
    const view = this.status.render();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === "error" ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning" ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }

  async showStatus(): Promise<void> {
    if (this.client === undefined) {
      this.output.show(true);
      return;
    }
    const client = this.running();
    if (client === undefined) return;
    const status = await this.refreshStatus();
    if (status === undefined) return;
    type Item = vscode.QuickPickItem & { run?: () => unknown };
    const items: Item[] = status.roots.map((r) => ({
      label: `$(root-folder) ${r.name}`,
      description: r.state,
      detail: rootLine(r).split(" · ").slice(1).join(" · ") + ` · ${r.stateDir}`,
      run: () => this.reindex(vscode.Uri.parse(r.root)),
    }));
    items.push({ label: "", kind: vscode.QuickPickItemKind.Separator });
    const view = this.status.render();
    if (view.cancellable.length) {
      items.push({
        label: "$(debug-stop) Cancel indexing",
        run: () => { for (const token of view.cancellable) void client.sendNotification("window/workDoneProgress/cancel", { token }); },
      });
    }
    if (this.status.pauseReason !== undefined) {
      items.push({ label: "$(debug-continue) Resume indexing", run: () => this.pause(false) });
    }
    items.push(
      { label: "$(refresh) Reindex workspace", run: () => this.reindex(undefined) },
      { label: "$(output) Show server output", run: () => { this.output.show(true); } },
    );
    const choice = await vscode.window.showQuickPick(items, {
      title: "forge-indexer: index status (pick a folder to reindex it)",
      matchOnDescription: true,
    });
    await choice?.run?.();
  }

  async reindex(uri: vscode.Uri | null | undefined): Promise<void> {
    const client = this.running();
    if (client === undefined) return;
    if (uri === null) {
      void vscode.window.showWarningMessage("forge-indexer: open a file to reindex it.");
      return;
    }
    try {
      if (uri === undefined) {
        const r = await client.sendRequest(ReindexRequest, {});
        void vscode.window.showInformationMessage(`forge-indexer: reindexing ${r.scheduled.length} folder${r.scheduled.length === 1 ? "" : "s"}.`);
        void this.refreshStatus(); // a hold by indexOnStartup is lifted by a reindex
        return;
      }
      const name = path.basename(uri.fsPath);
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `forge-indexer: reindexing ${name}` },
        () => client.sendRequest(ReindexRequest, { uri: uri.toString(), wait: true, timeoutMs: 120_000 }),
      );
      vscode.window.setStatusBarMessage(`forge-indexer: ${name} ${r.done ? "reindexed" : "is being reindexed"}`, 4000);
      void this.refreshStatus();
    } catch (err) {
      void vscode.window.showErrorMessage(describeError(err));
    }
  }

  /** Pause (or resume) background indexing: the server says what it did. */
  async pause(pause: boolean): Promise<void> {
    const client = this.running();
    if (client === undefined) return;
    try {
      const r = await client.sendRequest(pause ? PauseRequest : ResumeRequest);
      void vscode.window.showInformationMessage(`forge-indexer: ${r.message}`);
      void this.refreshStatus();
    } catch (err) {
      void vscode.window.showErrorMessage(describeError(err));
    }
  }

  // --- search -----------------------------------------------------------------------

  async search(initial = ""): Promise<void> {
    const client = this.running();
    if (client === undefined) return;
    const before = vscode.window.activeTextEditor;
    const restoreTo = before ? { doc: before.document, selection: before.selection, column: before.viewColumn } : undefined;
    await showSearch(
      {
        search: (query, token) => client.sendRequest(SearchRequest, { query }, token),
        preview: (hit) => this.openHit(hit, true),
        open: (hit) => this.openHit(hit, false),
        restore: async () => {
          if (restoreTo === undefined) return;
          await vscode.window.showTextDocument(restoreTo.doc, { selection: restoreTo.selection, viewColumn: restoreTo.column, preserveFocus: false });
        },
        onResults: (query, result) => {
          this.results.setResults(query, result);
          this.view.description = this.results.describe();
        },
        delayMs: clientSettings().typingDelayMs,
        multiRoot: (vscode.workspace.workspaceFolders?.length ?? 0) > 1,
      },
      initial,
    );
  }

  async searchSelection(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const text = editor ? editor.document.getText(editor.selection).trim().slice(0, 4096) : "";
    await this.search(text);
  }

  async openHit(hit: SearchHit, preview: boolean): Promise<void> {
    const range = toRange(hit.range);
    const start = new vscode.Range(range.start, range.start);
    const editor = await vscode.window.showTextDocument(vscode.Uri.parse(hit.uri), {
      preview,
      preserveFocus: preview,
      selection: preview ? range : start,
    });
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  // --- context ----------------------------------------------------------------------

  async copyContext(): Promise<void> {
    const client = this.running();
    if (client === undefined) return;
    const editor = vscode.window.activeTextEditor;
    const spot = editor && editor.document.uri.scheme === "file"
      ? {
          uri: editor.document.uri.toString(),
          selection: editor.document.getText(editor.selection),
          line: editor.selection.active.line,
          character: editor.selection.active.character,
        }
      : undefined;
    let params = contextParams(spot);
    if (params === undefined) {
      const query = await vscode.window.showInputBox({ title: "forge-indexer: context", prompt: "What is the context for?" });
      params = contextParams(undefined, query);
      if (params === undefined) return;
    }
    const request = params;
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "forge-indexer: packing context…", cancellable: true },
        (_progress, token) => client.sendRequest(ContextRequest, request, token),
      );
      const roots = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.toString());
      const text = formatContext(result, roots, fenceLanguage);
      const summary = contextSummary(result);
      if (clientSettings().contextDestination === "document") {
        const doc = await vscode.workspace.openTextDocument({ content: text, language: "markdown" });
        await vscode.window.showTextDocument(doc, { preview: false });
        void vscode.window.showInformationMessage(`forge-indexer: context opened (${summary}).`);
      } else {
        await vscode.env.clipboard.writeText(text);
        void vscode.window.showInformationMessage(`forge-indexer: context copied (${summary}).`);
      }
    } catch (err) {
      if (!isCancellation(err)) void vscode.window.showErrorMessage(describeError(err));
    }
  }

  async dispose(): Promise<void> {
    if (this.poll !== undefined) clearInterval(this.poll);
    for (const d of this.disposables) d.dispose();
    const client = this.client;
    this.client = undefined;
    // A client whose start failed (the server refused initialize) has nothing to stop, and
    // dispose() would throw "Client is not running" out of deactivate().
    if (client?.needsStop()) await client.dispose(5000);
  }
}

let instance: ForgeExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  instance = new ForgeExtension(context);
  context.subscriptions.push({ dispose: () => void instance?.dispose() });
  await instance.start();
}

export async function deactivate(): Promise<void> {
  const ext = instance;
  instance = undefined;
  await ext?.dispose();
}
