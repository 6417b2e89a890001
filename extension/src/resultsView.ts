/** The side-bar view that keeps the last search, grouped by file (and folder, if several). */
import * as vscode from "vscode";

import { baseName, firstLine, groupByFile, kindIcon, lineRange, relativePath, relevance, type FileGroup } from "./format";
import type { SearchHit, SearchResult } from "./protocol";

export const OPEN_RESULT = "forgeIndexer.openResult";

type Node = { kind: "file"; group: FileGroup } | { kind: "hit"; hit: SearchHit };

export class ResultsView implements vscode.TreeDataProvider<Node> {
  private groups: FileGroup[] = [];
  private query = "";
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly multiRoot: () => boolean) {}

  get lastQuery(): string {
    return this.query;
  }

  get fileCount(): number {
    return this.groups.length;
  }

  setResults(query: string, result: SearchResult): void {
    this.query = query;
    this.groups = groupByFile(result.results);
    this.changed.fire(undefined);
  }

  clear(): void {
    this.query = "";
    this.groups = [];
    this.changed.fire(undefined);
  }

  /** The view's description: the query and how many hits in how many files. */
  describe(): string {
    if (!this.query) return "";
    const hits = this.groups.reduce((n, g) => n + g.hits.length, 0);
    return `"${this.query}" · ${hits} in ${this.groups.length} file${this.groups.length === 1 ? "" : "s"}`;
  }

  getChildren(node?: Node): Node[] {
    if (node === undefined) return this.groups.map((group) => ({ kind: "file", group }));
    if (node.kind === "file") return node.group.hits.map((hit) => ({ kind: "hit", hit }));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === "file") {
      const g = node.group;
      const item = new vscode.TreeItem(relativePath(g.uri, g.root), vscode.TreeItemCollapsibleState.Expanded);
      item.resourceUri = vscode.Uri.parse(g.uri);
      item.iconPath = vscode.ThemeIcon.File;
      item.description = `${this.multiRoot() ? `${baseName(g.root)} · ` : ""}${g.hits.length} hit${g.hits.length === 1 ? "" : "s"} · best ${relevance(g.best)}`;
      item.tooltip = vscode.Uri.parse(g.uri).fsPath;
      return item;
    }
    const h = node.hit;
    const label = h.symbol ?? firstLine(h.preview, 60);
    const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
    item.description = `${lineRange(h.range)} · ${relevance(h.score)}`;
    item.iconPath = new vscode.ThemeIcon(kindIcon(h.kind).slice(2, -1));
    item.tooltip = new vscode.MarkdownString().appendCodeblock(h.preview, h.language ?? "");
    item.command = { command: OPEN_RESULT, title: "Open", arguments: [h] };
    return item;
  }
}
