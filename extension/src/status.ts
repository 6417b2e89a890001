/**
 * The status bar's text, from the server's `$/progress` reports while it indexes and from
 * `forge/status` when it is idle. Pure logic (no `vscode`): the extension renders it.
 */
import type { RootStatus, StatusResult } from "./protocol";

export type ProgressValue =
  | { kind: "begin"; title: string; message?: string; percentage?: number; cancellable?: boolean }
  | { kind: "report"; message?: string; percentage?: number; cancellable?: boolean }
  | { kind: "end"; message?: string };

export type ServerState = "starting" | "running" | "stopped" | "not-found" | "failed";

export interface StatusView {
  text: string;
  tooltip: string;
  /** How loud the item should be. */
  severity: "normal" | "warning" | "error";
  /** Progress tokens that can be cancelled now (for the "cancel indexing" action). */
  cancellable: string[];
}

interface Run {
  title: string;
  message: string;
  percentage: number | undefined;
  cancellable: boolean;
}

function percent(x: number): string {
  return `${Math.floor(Math.max(0, Math.min(1, x)) * 100)}%`;
}

export class IndexStatus {
  private readonly runs = new Map<string, Run>();
  private roots: RootStatus[] = [];
  private server: ServerState = "starting";
  private lastEnd = "";
  private paused: StatusResult["pauseReason"] | undefined;

  setServerState(state: ServerState): void {
    // A client that gave up stops afterwards: keep showing why.
    if (state === "stopped" && this.server === "failed") return;
    this.server = state;
    if (state !== "running") this.runs.clear();
  }

  /** One `$/progress` value for `token`. */
  onProgress(token: string | number, value: ProgressValue): void {
    const key = String(token);
    if (value.kind === "begin") {
      this.paused = undefined; // something runs: not (or no longer) paused
      this.runs.set(key, {
        title: value.title,
        message: value.message ?? "",
        percentage: value.percentage,
        cancellable: value.cancellable ?? false,
      });
    } else if (value.kind === "report") {
      const run = this.runs.get(key);
      if (run === undefined) return;
      if (value.message !== undefined) run.message = value.message;
      if (value.percentage !== undefined) run.percentage = value.percentage;
      if (value.cancellable !== undefined) run.cancellable = value.cancellable;
    } else {
      const run = this.runs.get(key);
      this.runs.delete(key);
      if (run !== undefined) this.lastEnd = `${run.title}: ${value.message ?? "done"}`;
    }
  }

  /** The latest `forge/status` answer. */
  onStatus(status: StatusResult): void {
    this.roots = status.roots;
    this.paused = status.indexingPaused ? (status.pauseReason ?? "pause") : undefined;
  }

  /** Why background indexing is paused, if it is (from the latest `forge/status`). */
  get pauseReason(): StatusResult["pauseReason"] | undefined {
    return this.paused;
  }

  get indexing(): boolean {
    return this.runs.size > 0;
  }

  render(): StatusView {
    const base = "$(database) forge-indexer";
    switch (this.server) {
      case "not-found":
        return { text: "$(circle-slash) forge-indexer", tooltip: "The forge-indexer server was not found. Click for details.", severity: "error", cancellable: [] };
      case "failed":
        return { text: "$(error) forge-indexer", tooltip: "The forge-indexer server stopped. Click for details.", severity: "error", cancellable: [] };
      case "stopped":
        return { text: "$(debug-stop) forge-indexer", tooltip: "The forge-indexer server is stopped.", severity: "normal", cancellable: [] };
      case "starting":
        return { text: "$(loading~spin) forge-indexer", tooltip: "Starting the forge-indexer server…", severity: "normal", cancellable: [] };
      case "running":
        break;
    }

    if (this.paused !== undefined) {
      const why = this.paused === "indexOnStartup"
        ? "Indexing waits until you ask for it (forgeIndexer.indexOnStartup is off)."
        : "Background indexing is paused.";
      return {
        text: "$(debug-pause) forge-indexer: paused",
        tooltip: [why, "Run Resume Indexing or Reindex Workspace to index.", ...this.roots.map(rootLine)].join("\n"),
        severity: "normal",
        cancellable: [],
      };
    }

    if (this.runs.size > 0) {
      const runs = [...this.runs.entries()];
      const known = runs.map(([, r]) => r.percentage).filter((p): p is number => p !== undefined);
      const pct = known.length ? Math.floor(known.reduce((a, b) => a + b, 0) / known.length) : undefined;
      const first = runs[0]?.[1];
      const detail = first?.message ? ` · ${first.message}` : "";
      const more = runs.length > 1 ? ` (+${runs.length - 1} more)` : "";
      return {
        text: `$(sync~spin) forge-indexer${pct !== undefined ? ` ${pct}%` : ""}${detail}${more}`,
        tooltip: runs
          .map(([, r]) => `${r.title}: ${r.percentage !== undefined ? `${r.percentage}% · ` : ""}${r.message}`)
          .join("\n") + "\nClick for the index status, or to cancel indexing.",
        severity: "normal",
        cancellable: runs.filter(([, r]) => r.cancellable).map(([t]) => t),
      };
    }

    if (this.roots.length === 0) {
      return { text: base, tooltip: this.lastEnd || "No folder indexed yet.", severity: "normal", cancellable: [] };
    }

    const failed = this.roots.filter((r) => r.state === "error");
    const retrying = this.roots.filter((r) => r.state === "retrying");
    const busy = this.roots.filter((r) => r.state === "indexing" || r.state === "pending");
    const coverage = Math.min(...this.roots.map((r) => r.coverage));
    const semantic = Math.min(...this.roots.map((r) => r.semanticCoverage));
    const models = [...new Set(this.roots.map((r) => r.model).filter((m): m is string => !!m))];
    const tooltip = this.roots.map(rootLine).join("\n") + "\nClick for details.";

    if (failed.length) {
      return { text: `$(error) forge-indexer: ${failed.length === 1 ? failed[0]?.name ?? "" : `${failed.length} folders`} failed`, tooltip, severity: "error", cancellable: [] };
    }
    if (retrying.length) {
      return { text: "$(lock) forge-indexer: index locked", tooltip, severity: "warning", cancellable: [] };
    }
    if (busy.length) {
      return { text: `$(sync~spin) forge-indexer ${percent(Math.min(coverage, semantic))}`, tooltip, severity: "normal", cancellable: [] };
    }
    const cov = coverage >= 1 && semantic >= 1 ? "100%" : `${percent(Math.min(coverage, semantic))} indexed`;
    return {
      text: `${base} ${cov}${models.length ? ` · ${models.join(", ")}` : ""}`,
      tooltip,
      severity: coverage < 1 || semantic < 1 ? "warning" : "normal",
      cancellable: [],
    };
  }
}

/** One line per root for tooltips and the status picker. */
export function rootLine(r: RootStatus): string {
  const parts = [
    `${r.name}: ${r.state}`,
    `${r.filesIndexed}/${r.filesTotal} files`,
    `${r.chunks} chunks`,
    `${percent(r.semanticCoverage)} embedded`,
  ];
  if (r.model) parts.push(r.model);
  if (r.lastError) parts.push(`⚠ ${r.lastError}`);
  return parts.join(" · ");
}
