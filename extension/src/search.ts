/**
 * The search QuickPick: searches as the user types (debounced; every new query cancels
 * the request still running), shows symbol, path, lines and relevance, previews the hit
 * under the selection, and opens the accepted one at its range.
 */
import * as vscode from "vscode";

import { baseName, firstLine, kindIcon, lineRange, relativePath, relevance } from "./format";
import { describeError, errorKind, isCancellation, type SearchHit, type SearchResult } from "./protocol";

export interface SearchDeps {
  /** Send `forge/search`; must honour the token (the client sends `$/cancelRequest`). */
  search(query: string, token: vscode.CancellationToken): Promise<SearchResult>;
  /** Show the hit without taking focus (the selection moved). */
  preview(hit: SearchHit): void | Thenable<void>;
  /** Open the accepted hit at its range. */
  open(hit: SearchHit): void | Thenable<void>;
  /** The picker closed without a choice: put the editor back as it was. */
  restore(): void | Thenable<void>;
  /** Every answered query (the results view keeps the last one). */
  onResults?(query: string, result: SearchResult): void;
  /** Quiet time after the last keystroke. */
  delayMs: number;
  /** More than one workspace folder: say which folder a hit is from. */
  multiRoot: boolean;
}

export interface HitItem extends vscode.QuickPickItem {
  hit?: SearchHit;
}

export function hitItem(hit: SearchHit, multiRoot: boolean): HitItem {
  const rel = relativePath(hit.uri, hit.root);
  const where = multiRoot ? `${baseName(hit.root)} · ${rel}` : rel;
  const name = hit.symbol ?? firstLine(hit.preview, 60);
  return {
    label: `${kindIcon(hit.kind)} ${name}`,
    description: `${where}:${lineRange(hit.range)}`,
    detail: `${relevance(hit.score)}${hit.language ? ` · ${hit.language}` : ""} · ${firstLine(hit.preview)}`,
    // The server already ranked these: VS Code must not filter them by the typed text.
    alwaysShow: true,
    hit,
  };
}

function messageItem(label: string, detail?: string): HitItem {
  return detail === undefined ? { label, alwaysShow: true } : { label, detail, alwaysShow: true };
}

function coverageNote(result: SearchResult): string | undefined {
  const c = result.coverage;
  if (c.complete) return undefined;
  const pct = Math.floor(Math.min(c.ratio, c.semantic ?? 1) * 100);
  return `Still indexing (${pct}%): results cover what is indexed so far.`;
}

/** Open the search box; resolves with the accepted hit (undefined if dismissed). */
export function showSearch(deps: SearchDeps, initial = ""): Promise<SearchHit | undefined> {
  const pick = vscode.window.createQuickPick<HitItem>();
  pick.title = "forge-indexer: semantic search";
  pick.placeholder = "Describe the code you are looking for (natural language or code)";
  pick.matchOnDescription = false;
  pick.matchOnDetail = false;

  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: vscode.CancellationTokenSource | undefined;
  let generation = 0;
  let accepted: SearchHit | undefined;

  const cancelRunning = (): void => {
    if (running !== undefined) {
      running.cancel();
      running.dispose();
      running = undefined;
    }
  };

  const run = async (query: string, gen: number): Promise<void> => {
    cancelRunning();
    const cts = new vscode.CancellationTokenSource();
    running = cts;
    pick.busy = true;
    try {
      const result = await deps.search(query, cts.token);
      if (gen !== generation || cts.token.isCancellationRequested) return;
      const items = result.results.map((h) => hitItem(h, deps.multiRoot));
      const note = coverageNote(result);
      if (items.length === 0) items.push(messageItem("$(info) No results", note ?? "Try other words."));
      else if (note !== undefined) items.push(messageItem(`$(sync) ${note}`));
      pick.items = items;
      deps.onResults?.(query, result);
    } catch (err) {
      if (gen !== generation || isCancellation(err) || cts.token.isCancellationRequested) return;
      const kind = errorKind(err);
      const label = kind === "IndexNotReady" ? "$(sync) The index is not ready yet" : "$(error) Search failed";
      pick.items = [messageItem(label, describeError(err))];
    } finally {
      if (gen === generation) pick.busy = false;
      if (running === cts) {
        running = undefined;
        cts.dispose();
      }
    }
  };

  const schedule = (value: string): void => {
    generation += 1;
    const gen = generation;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    cancelRunning();
    const query = value.trim();
    if (!query) {
      pick.items = [];
      pick.busy = false;
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      void run(query, gen);
    }, deps.delayMs);
  };

  // Set before subscribing: the initial query is scheduled once, below.
  pick.value = initial;
  return new Promise<SearchHit | undefined>((resolve) => {
    const subs: vscode.Disposable[] = [
      pick.onDidChangeValue(schedule),
      pick.onDidChangeActive((items) => {
        const hit = items[0]?.hit;
        if (hit !== undefined) void deps.preview(hit);
      }),
      pick.onDidAccept(() => {
        const hit = pick.activeItems[0]?.hit;
        if (hit === undefined) return;
        accepted = hit;
        pick.hide();
      }),
      pick.onDidHide(() => {
        generation += 1;
        if (timer !== undefined) clearTimeout(timer);
        cancelRunning();
        for (const s of subs) s.dispose();
        pick.dispose();
        const done = accepted !== undefined ? deps.open(accepted) : deps.restore();
        void Promise.resolve(done).then(() => { resolve(accepted); });
      }),
    ];
    pick.show();
    if (initial.trim()) schedule(initial);
  });
}
