/**
 * A small stand-in for the `vscode` module: just what the extension's logic touches,
 * with hooks the tests drive (type into a QuickPick, set settings, read shown messages).
 * Anything else resolves to an inert callable, so that libraries which read enums at
 * load time (vscode-languageclient) can be loaded too.
 */

type Listener<T> = (e: T) => unknown;

export class Disposable {
  constructor(private readonly fn: () => void = () => undefined) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => { for (const i of items) i.dispose(); });
  }
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (listener: Listener<T>): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => { this.listeners = this.listeners.filter((l) => l !== listener); });
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export interface StubToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested: (l: Listener<void>) => Disposable;
}

/** Every token source the code under test created, in order (tests check cancellation). */
export const tokenSources: CancellationTokenSource[] = [];

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  private cancelled = false;
  readonly token: StubToken;
  constructor() {
    const state = (): boolean => this.cancelled;
    this.token = {
      get isCancellationRequested(): boolean { return state(); },
      onCancellationRequested: this.emitter.event,
    };
    tokenSources.push(this);
  }
  cancel(): void {
    if (!this.cancelled) {
      this.cancelled = true;
      this.emitter.fire();
    }
  }
  dispose(): void { /* nothing to release */ }
}

export class Position {
  constructor(readonly line: number, readonly character: number) {}
}
export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    if (typeof a === "number" && typeof b === "number") {
      this.start = new Position(a, b);
      this.end = new Position(c ?? a, d ?? b);
    } else {
      this.start = a as Position;
      this.end = b as Position;
    }
  }
}

export class Uri {
  private constructor(readonly scheme: string, readonly path: string) {}
  static parse(value: string): Uri {
    const m = /^([a-z]+):\/\/(.*)$/.exec(value);
    return m ? new Uri(m[1] ?? "file", decodeURIComponent(m[2] ?? "")) : new Uri("file", value);
  }
  static file(p: string): Uri {
    return new Uri("file", p);
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return `${this.scheme}://${this.path}`;
  }
}

export class ThemeIcon {
  static readonly File = new ThemeIcon("file");
  constructor(readonly id: string) {}
}
export class ThemeColor {
  constructor(readonly id: string) {}
}
export class MarkdownString {
  value = "";
  appendCodeblock(code: string, lang = ""): this {
    this.value += "```" + lang + "\n" + code + "\n```\n";
    return this;
  }
}
export class TreeItem {
  description?: string;
  tooltip?: unknown;
  iconPath?: unknown;
  resourceUri?: Uri;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(readonly label: string, readonly collapsibleState?: number) {}
}
export const TreeItemCollapsibleState = { None: 0, Collapsed: 1, Expanded: 2 } as const;
export const QuickPickItemKind = { Separator: -1, Default: 0 } as const;
export const StatusBarAlignment = { Left: 1, Right: 2 } as const;
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 } as const;
export const TextEditorRevealType = { Default: 0, InCenter: 1, InCenterIfOutsideViewport: 2, AtTop: 3 } as const;

export interface StubQuickPickItem {
  label: string;
  description?: string;
  detail?: string;
  alwaysShow?: boolean;
}

/** A QuickPick the test drives: `type()` changes the value, `select()` moves the selection. */
export class StubQuickPick<T extends StubQuickPickItem> {
  title = "";
  placeholder = "";
  matchOnDescription = true;
  matchOnDetail = true;
  busy = false;
  visible = false;
  disposed = false;
  private _items: T[] = [];
  private _active: T[] = [];
  private _value = "";
  readonly itemsHistory: T[][] = [];
  private readonly valueE = new EventEmitter<string>();
  private readonly activeE = new EventEmitter<readonly T[]>();
  private readonly acceptE = new EventEmitter<void>();
  private readonly hideE = new EventEmitter<void>();
  readonly onDidChangeValue = this.valueE.event;
  readonly onDidChangeActive = this.activeE.event;
  readonly onDidAccept = this.acceptE.event;
  readonly onDidHide = this.hideE.event;

  get value(): string { return this._value; }
  set value(v: string) { this._value = v; }
  get items(): T[] { return this._items; }
  set items(items: T[]) {
    this._items = items;
    this.itemsHistory.push(items);
    // Like VS Code: new items make the first one active.
    this.select(0);
  }
  get activeItems(): T[] { return this._active; }
  show(): void { this.visible = true; }
  hide(): void {
    if (!this.visible) return;
    this.visible = false;
    this.hideE.fire();
  }
  dispose(): void { this.disposed = true; }

  // --- test hooks ---
  type(value: string): void {
    this._value = value;
    this.valueE.fire(value);
  }
  select(index: number): void {
    const item = this._items[index];
    this._active = item ? [item] : [];
    this.activeE.fire(this._active);
  }
  accept(): void {
    this.acceptE.fire();
  }
}

export const shown: { kind: string; message: string; items: string[] }[] = [];
export const quickPicks: StubQuickPick<StubQuickPickItem>[] = [];
let messageAnswer: string | undefined;
export function answerMessagesWith(choice: string | undefined): void {
  messageAnswer = choice;
}
const message = (kind: string) => (msg: string, ...items: unknown[]): Promise<string | undefined> => {
  shown.push({ kind, message: msg, items: items.filter((i): i is string => typeof i === "string") });
  return Promise.resolve(messageAnswer);
};

export const window = {
  createQuickPick<T extends StubQuickPickItem>(): StubQuickPick<T> {
    const p = new StubQuickPick<T>();
    quickPicks.push(p as unknown as StubQuickPick<StubQuickPickItem>);
    return p;
  },
  showErrorMessage: message("error"),
  showWarningMessage: message("warning"),
  showInformationMessage: message("info"),
  createOutputChannel: (name: string) => {
    const channel = { name, lines: [] as string[], appendLine(l: string) { this.lines.push(l); }, append(s: string) { this.lines.push(s); }, show() { /* */ }, hide() { /* */ }, clear() { /* */ }, replace() { /* */ }, dispose() { /* */ } };
    outputChannels.push(channel);
    return channel;
  },
  /** Records what was opened (the editor returned can reveal a range). */
  showTextDocument(doc: Uri | { uri: Uri }, options?: { preview?: boolean }) {
    const uri = doc instanceof Uri ? doc : doc.uri;
    opened.push({ uri: uri.toString(), preview: options?.preview });
    return Promise.resolve({ document: { uri }, revealRange() { /* */ } });
  },
  activeTextEditor: undefined as unknown,
  createStatusBarItem: (id?: string) => {
    const item = { id, name: "", text: "", tooltip: "" as unknown, command: "" as unknown, backgroundColor: undefined as unknown, visible: false, show() { this.visible = true; }, hide() { this.visible = false; }, dispose() { /* */ } };
    statusItems.push(item);
    return item;
  },
  createTreeView: () => ({ description: "", dispose() { /* */ } }),
};

export const statusItems: { text: string; visible: boolean }[] = [];
/** Every output channel created (the extension's, and the language client's own). */
export const outputChannels: { name: string; lines: string[] }[] = [];
/** Documents shown with `window.showTextDocument`, in order. */
export const opened: { uri: string; preview: boolean | undefined }[] = [];

/** Registered commands (id -> handler) and executed ones. */
export const registered = new Map<string, (...args: unknown[]) => unknown>();
export const executed: unknown[][] = [];
export const commands = {
  registerCommand(id: string, fn: (...args: unknown[]) => unknown): Disposable {
    registered.set(id, fn);
    return new Disposable(() => registered.delete(id));
  },
  executeCommand(...args: unknown[]): Promise<unknown> {
    executed.push(args);
    return Promise.resolve(undefined);
  },
};

// --- configuration ---------------------------------------------------------------

export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}
/** `forgeIndexer.<key>` -> where the user set it. Tests fill this. */
export const settings = new Map<string, Inspected>();
/** Folder-specific values: `<folder uri> <key>` -> value. */
export const folderSettings = new Map<string, unknown>();

const configChanged = new EventEmitter<unknown>();
const trustGranted = new EventEmitter<void>();
const foldersChanged = new EventEmitter<unknown>();

export const workspace = {
  workspaceFolders: undefined as { uri: Uri; name: string; index: number }[] | undefined,
  isTrusted: true,
  onDidChangeConfiguration: configChanged.event,
  onDidGrantWorkspaceTrust: trustGranted.event,
  onDidChangeWorkspaceFolders: foldersChanged.event,
  getConfiguration(section: string, scope?: Uri | null) {
    const full = (key: string): string => `${section}.${key}`;
    const inspect = (key: string): Inspected | undefined => {
      const base = settings.get(full(key));
      const folderKey = scope ? `${scope.toString()} ${full(key)}` : undefined;
      const inFolder = folderKey !== undefined && folderSettings.has(folderKey) ? folderSettings.get(folderKey) : undefined;
      if (base === undefined && inFolder === undefined) return { defaultValue: undefined };
      return { ...(base ?? {}), ...(inFolder !== undefined ? { workspaceFolderValue: inFolder } : {}) };
    };
    return {
      inspect,
      get<T>(key: string, fallback?: T): T | undefined {
        const i = inspect(key);
        const v = i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue ?? i?.defaultValue;
        return (v ?? fallback) as T | undefined;
      },
      has: (key: string) => settings.has(full(key)),
    };
  },
};

export const env = {
  // vscode-languageclient sends these as the initialize request's clientInfo.
  appName: "Visual Studio Code",
  language: "en",
  clipboard: { text: "", writeText(t: string) { this.text = t; return Promise.resolve(); } },
};

export function reset(): void {
  shown.length = 0;
  quickPicks.length = 0;
  settings.clear();
  folderSettings.clear();
  messageAnswer = undefined;
  tokenSources.length = 0;
  statusItems.length = 0;
  outputChannels.length = 0;
  opened.length = 0;
  registered.clear();
  executed.length = 0;
  env.clipboard.text = "";
  workspace.workspaceFolders = undefined;
  workspace.isTrusted = true;
}


/** The VS Code version the manifest's `engines.vscode` asks for. */
export const version = "1.85.0";
