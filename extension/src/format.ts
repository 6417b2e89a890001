/** How hits and snippets are shown: paths relative to their folder, line ranges, relevance. */
import type { LspRange, SearchHit } from "./protocol";

/** `10–17` (1-based, inclusive; a range ending at column 0 ends on the line before). */
export function lineRange(range: LspRange): string {
  const start = range.start.line + 1;
  let end = range.end.line + 1;
  if (range.end.character === 0 && range.end.line > range.start.line) end -= 1;
  return start === end ? `${start}` : `${start}–${end}`;
}

/**
 * The score as a percentage. It is a calibrated probability that the hit is *the* answer
 * (docs/search.md): a first hit that clearly leads reads 80% or more, close candidates
 * 30-50%; the number says it all, so no words like "weak" on it.
 */
export function relevance(score: number): string {
  const pct = Math.max(0, Math.min(1, score)) * 100;
  return `relevance ${pct >= 1 || pct === 0 ? Math.round(pct) : "<1"}%`;
}

/** The last path segment of a URI (a folder's display name). */
export function baseName(uri: string): string {
  const trimmed = uri.replace(/\/+$/, "");
  return decodeURIComponent(trimmed.slice(trimmed.lastIndexOf("/") + 1));
}

/** `uri` relative to `root` (both `file:` URIs), or the whole decoded path if outside. */
export function relativePath(uri: string, root: string): string {
  const base = root.endsWith("/") ? root : root + "/";
  const rel = uri.startsWith(base) ? uri.slice(base.length) : uri.replace(/^file:\/\//, "");
  return decodeURIComponent(rel);
}

const KIND_ICONS: Record<string, string> = {
  function: "symbol-function",
  method: "symbol-method",
  class: "symbol-class",
  struct: "symbol-struct",
  interface: "symbol-interface",
  enum: "symbol-enum",
  module: "symbol-module",
  constant: "symbol-constant",
  variable: "symbol-variable",
  type: "symbol-class",
  impl: "symbol-class",
  trait: "symbol-interface",
};

export function kindIcon(kind: string | null): string {
  return `$(${(kind && KIND_ICONS[kind]) ?? "symbol-file"})`;
}

/** The first non-blank line of a preview, trimmed to `max` characters. */
export function firstLine(text: string, max = 120): string {
  const line = text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

export interface FileGroup {
  uri: string;
  root: string;
  hits: SearchHit[];
  best: number;
}

/** Hits grouped by file, files ordered by their best hit, hits by position in the file. */
export function groupByFile(hits: readonly SearchHit[]): FileGroup[] {
  const groups = new Map<string, FileGroup>();
  for (const hit of hits) {
    let g = groups.get(hit.uri);
    if (g === undefined) {
      g = { uri: hit.uri, root: hit.root, hits: [], best: hit.score };
      groups.set(hit.uri, g);
    }
    g.hits.push(hit);
    g.best = Math.max(g.best, hit.score);
  }
  const out = [...groups.values()];
  for (const g of out) g.hits.sort((a, b) => a.range.start.line - b.range.start.line);
  return out.sort((a, b) => b.best - a.best);
}
