/**
 * The server's custom requests (see docs/lsp-api.md) as typed request types, and the
 * shapes of their answers. Kept free of `vscode` imports so the wire test can use it.
 */
import { ProtocolRequestType0, RequestType } from "vscode-languageserver-protocol";

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface Coverage {
  filesIndexed: number;
  filesTotal: number;
  ratio: number;
  semantic?: number;
  complete: boolean;
  indexing: string[];
}

export interface SearchParams {
  query: string;
  limit?: number;
  languages?: string[];
  paths?: string[];
  minScore?: number;
}

export interface SearchHit {
  uri: string;
  range: LspRange;
  symbol: string | null;
  kind: string | null;
  language: string | null;
  score: number;
  root: string;
  preview: string;
}

export interface SearchResult {
  results: SearchHit[];
  coverage: Coverage;
}

export interface ContextParams {
  query?: string;
  textDocument?: { uri: string };
  position?: LspPosition;
  budgetTokens?: number;
}

export interface ContextSnippet {
  uri: string;
  range: LspRange;
  text: string;
  score: number;
  tokens: number;
}

export interface ContextResult {
  snippets: ContextSnippet[];
  tokensUsed: number;
  budgetTokens: number;
  coverage: Coverage;
}

export type RootStateName = "pending" | "indexing" | "retrying" | "idle" | "error";

export interface RootStatus {
  root: string;
  path: string;
  name: string;
  state: RootStateName;
  files: number;
  chunks: number;
  symbols: number;
  vectors: number;
  coverage: number;
  semanticCoverage: number;
  filesIndexed: number;
  filesTotal: number;
  model: string | null;
  lastError: string | null;
  lastIndexed: string | null;
  stateDir: string;
  watcher: string;
}

export interface StatusResult {
  roots: RootStatus[];
  /** True while background indexing is paused (`forge/pause`, or `indexOnStartup` off). */
  indexingPaused?: boolean;
  /** Why, while paused: `indexOnStartup` is off and nothing was asked for yet, or a pause. */
  pauseReason?: "indexOnStartup" | "pause";
}

/** The answer to `forge/pause` and `forge/resume`. */
export interface PauseResult {
  paused: boolean;
  wasPaused: boolean;
  waiting: number;
  message: string;
}

export interface ReindexParams {
  uri?: string;
  wait?: boolean;
  timeoutMs?: number;
}

export interface ReindexResult {
  scheduled: string[];
  done: boolean;
}

export const SearchRequest = new RequestType<SearchParams, SearchResult, void>("forge/search");
export const ContextRequest = new RequestType<ContextParams, ContextResult, void>("forge/context");
export const StatusRequest = new ProtocolRequestType0<StatusResult, never, void, void>("forge/status");
export const ReindexRequest = new RequestType<ReindexParams, ReindexResult, void>("forge/reindex");
export const PauseRequest = new ProtocolRequestType0<PauseResult, never, void, void>("forge/pause");
export const ResumeRequest = new ProtocolRequestType0<PauseResult, never, void, void>("forge/resume");

/** JSON-RPC error codes the server uses (docs/lsp-api.md#errors). */
export const ErrorCodes = {
  InvalidParams: -32602,
  RequestCancelled: -32800,
  RequestFailed: -32803,
  MethodNotFound: -32601,
  InternalError: -32603,
} as const;

/** `data` of the server's errors. */
export interface ErrorData {
  kind?: string;
  retryable?: boolean;
}

/** True if `err` is the answer to a request the client cancelled. */
export function isCancellation(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  const name = (err as { name?: unknown }).name;
  return code === ErrorCodes.RequestCancelled || name === "Canceled" || name === "CancellationError";
}

/** One line a user can act on, from a JSON-RPC error or anything else thrown. */
export function describeError(err: unknown): string {
  if (typeof err === "object" && err !== null && "message" in err) {
    const msg = (err).message;
    if (typeof msg === "string" && msg) return msg;
  }
  return String(err);
}

/** The `data.kind` of a server error (`IndexNotReady`, `ModelNotFound`, ...), if any. */
export function errorKind(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const data = (err as { data?: unknown }).data;
  if (typeof data !== "object" || data === null) return undefined;
  const kind = (data as ErrorData).kind;
  return typeof kind === "string" ? kind : undefined;
}
