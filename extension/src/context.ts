/** `forge-indexer: Copy Context`: snippets for the selection or cursor, packed to the budget. */
import { baseName, lineRange, relativePath } from "./format";
import type { ContextParams, ContextResult } from "./protocol";

export interface EditorSpot {
  uri: string;
  /** The selected text ('' if the selection is empty). */
  selection: string;
  line: number;
  character: number;
}

/** `forge/context` params for an editor position (and its selection, as the query). */
export function contextParams(spot: EditorSpot | undefined, query?: string): ContextParams | undefined {
  const q = (query ?? spot?.selection ?? "").trim().slice(0, 8192);
  if (spot === undefined) return q ? { query: q } : undefined;
  const params: ContextParams = {
    textDocument: { uri: spot.uri },
    position: { line: spot.line, character: spot.character },
  };
  if (q) params.query = q;
  return params;
}

/** The snippets as Markdown: one fenced block per snippet, headed by folder/path:lines. */
export function formatContext(result: ContextResult, roots: readonly string[], languageOf: (uri: string) => string): string {
  const multi = roots.length > 1;
  return result.snippets
    .map((s) => {
      const root = roots.filter((r) => s.uri.startsWith(r.endsWith("/") ? r : r + "/")).sort((a, b) => b.length - a.length)[0];
      const rel = root !== undefined ? relativePath(s.uri, root) : decodeURIComponent(s.uri.replace(/^file:\/\//, ""));
      const where = multi && root !== undefined ? `${baseName(root)}/${rel}` : rel;
      const fence = s.text.includes("```") ? "````" : "```";
      return `${where}:${lineRange(s.range)}\n${fence}${languageOf(s.uri)}\n${s.text.replace(/\n$/, "")}\n${fence}\n`;
    })
    .join("\n");
}

/** "3 snippets, 1,234 of 2,048 tokens". */
export function contextSummary(result: ContextResult): string {
  const n = result.snippets.length;
  return `${n} snippet${n === 1 ? "" : "s"}, ${result.tokensUsed.toLocaleString("en-US")} of ${result.budgetTokens.toLocaleString("en-US")} tokens`;
}

const LANGS: Record<string, string> = {
  py: "python", ts: "typescript", tsx: "tsx", js: "javascript", jsx: "jsx", go: "go", rs: "rust",
  java: "java", c: "c", h: "c", cpp: "cpp", hpp: "cpp", cc: "cpp", cs: "csharp", rb: "ruby",
  php: "php", sh: "bash", lua: "lua", kt: "kotlin", swift: "swift", md: "markdown",
};

/** A Markdown fence language from a file's extension. */
export function fenceLanguage(uri: string): string {
  const ext = uri.slice(uri.lastIndexOf(".") + 1).toLowerCase();
  return LANGS[ext] ?? "";
}
