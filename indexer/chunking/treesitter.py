"""Symbol-level chunks from a tree-sitter parse: one unit of embedding per symbol.

1. Collect definitions (functions, methods, classes, ...) as a tree. Each remembers the
   comments, attributes and decorators directly above it (its "lead").
2. Walk the tree. A function or method is one chunk however long: its range is the whole
   definition, its text the first `TEXT_LINES` lines (the model reads at most its input cap
   anyway, and one vector per function beats many pieces of it). A container (class,
   struct, impl, trait, ...) gives one chunk for its head (signature, fields, doc) whose
   text also lists the members' signatures, then one chunk per member. Code between
   definitions (imports, constants, statements) becomes symbol-less "glue" chunks.
3. Every definition keeps its own unit, however small: a result's range is the function
   a question asks about, never a run of neighbouring getters (chunker v8; merging them,
   as v1-v7 did, cost 0.05 MRR@10 on the development benchmark's strict scorer and
   nothing on its overlap scorer).

The text a chunk carries for the lexical index: the file's relative path, the enclosing
containers' signature lines joined by " > ", the lead, then the code; the embedder gets
the same text without the path line (see `indexer.chunking.embedding_input`);
every compound identifier is written as words (`parseHttpDate` → `parse http date`).
The range (start_line..end_line, and `body`) is exactly the definition: it starts at the
symbol's own first line, never at its comments, decorators or the file's leading lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from indexer.chunking.fit import CountTokens, split_range
from indexer.chunking.languages import SPECS, LanguageSpec
from indexer.chunking.lexical import IDENTIFIER, embed_text
from indexer.core.types import Chunk, ChunkedFile, Symbol, SymbolKind

TEXT_LINES = 60  # lines of a definition its chunk text carries (the model truncates at its cap)
_CHARS_PER_TOKEN_CAP = 12  # a chunk text never needs more characters than this per token of budget
_MEMBER_LIST = 40  # member signatures listed in a container's head chunk
_LEAD_TYPES = ("attribute_item", "decorator", "annotation", "attribute_list")
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function", "class"}
_C_NAMES = {"identifier", "field_identifier", "qualified_identifier", "destructor_name", "operator_name",
            "type_identifier"}
# Languages whose functions declare functions worth finding on their own (closures,
# decorator wrappers, a plugin's inner helpers). In Java and C# what nests in a method is
# an anonymous class's overrides, which answered other methods' questions (development
# benchmark, Java tune split; see docs/benchmarks.md).
NESTED_UNITS = frozenset({"python", "javascript", "typescript", "tsx", "go", "rust", "ruby", "php", "bash"})
_CONTAINER_KINDS = {"class", "interface", "struct", "enum", "trait", "impl", "module", "namespace", "type"}


@dataclass(eq=False)
class Definition:
    name: str
    kind: SymbolKind
    start: int  # first line of its lead: comments, attributes, decorators, wrappers above it
    end: int
    name_line: int
    name_col: int
    node: Node
    signature: str
    parent: Definition | None = None
    children: list[Definition] = field(default_factory=list)

    @property
    def first(self) -> int:
        """The symbol's own first line: where its range (and its Symbol) starts."""
        return self.node.start_point[0] + 1

    @property
    def qualname(self) -> str:
        return f"{self.parent.qualname}.{self.name}" if self.parent else self.name


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _name_node(node: Node, language: str) -> Node | None:
    t = node.type
    if t == "impl_item":
        return node.child_by_field_name("type")
    if t == "variable_declarator":
        value = node.child_by_field_name("value")
        return node.child_by_field_name("name") if value is not None and value.type in _FUNCTION_VALUES else None
    if t in ("public_field_definition", "field_definition", "pair"):
        # A class field or object property whose value is a function: a method in all but syntax.
        value = node.child_by_field_name("value")
        if value is None or value.type not in _FUNCTION_VALUES - {"class"}:
            return None
        return node.child_by_field_name("name") or node.child_by_field_name("property") or node.child_by_field_name("key")
    if t == "assignment_expression":
        # `exports.parse = function () {}`, `Foo.prototype.bar = (x) => ...`: named by the
        # property assigned.
        right, left = node.child_by_field_name("right"), node.child_by_field_name("left")
        if right is None or left is None or right.type not in _FUNCTION_VALUES - {"class"}:
            return None
        return left.child_by_field_name("property") if left.type == "member_expression" else (
            left if left.type == "identifier" else None)
    if t in ("function_expression", "arrow_function"):
        # Only `export default function (...) {}`: any other function expression is a value
        # (a callback, an IIFE) inside the definition that holds it.
        parent = node.parent
        if parent is None or parent.type != "export_statement":
            return None
        return node.child_by_field_name("name") or next((c for c in parent.children if c.type == "default"), None)
    if t in ("struct_specifier", "enum_specifier", "class_specifier") and node.child_by_field_name("body") is None:
        return None  # a use of a type (`struct foo *p`), not its definition
    if t == "function_definition" and language in ("c", "cpp"):
        decl = node.child_by_field_name("declarator")
        while decl is not None and decl.type not in _C_NAMES:
            decl = decl.child_by_field_name("declarator")
        return decl
    return node.child_by_field_name("name")


def _outer(node: Node, spec: LanguageSpec) -> Node:
    """The wrapper a definition sits in (decorated_definition, export_statement, ...)."""
    while node.parent is not None and node.parent.type in spec.wrappers:
        if node.parent.type in ("lexical_declaration", "variable_declaration") and node.parent.named_child_count > 1:
            break
        node = node.parent
    return node


def _leading_comments_start(node: Node) -> int:
    """First line of the comments/attributes directly above `node` (0-based row)."""
    row = node.start_point[0]
    prev = node.prev_named_sibling
    while prev is not None and ("comment" in prev.type or prev.type in _LEAD_TYPES) and prev.end_point[0] >= row - 1:
        row = prev.start_point[0]
        prev = prev.prev_named_sibling
    return row


def _kind(node: Node, spec: LanguageSpec, parent: Definition | None) -> SymbolKind:
    kind = spec.definitions[node.type]
    if kind == "function" and parent is not None and parent.kind in _CONTAINER_KINDS:
        return "method"
    if node.type == "variable_declarator" and _text(node.child_by_field_name("value")).startswith("class"):
        return "class"
    return kind


def collect(root: Node, spec: LanguageSpec, lines: list[str]) -> list[Definition]:
    """The definition tree of a parse (top-level definitions with nested children)."""
    top: list[Definition] = []
    stack: list[tuple[Node, Definition | None, list[Definition]]] = [(root, None, top)]
    while stack:
        node, parent, out = stack.pop()
        pending: list[tuple[Node, Definition | None, list[Definition]]] = []
        for child in node.named_children:
            name_node = _name_node(child, spec.name) if child.type in spec.definitions else None
            if name_node is None:
                if child.child_count:
                    pending.append((child, parent, out))
                continue
            outer = _outer(child, spec)
            name = _text(name_node).strip()
            row = name_node.start_point[0]
            line = lines[row] if row < len(lines) else ""
            col = line.find(name)
            d = Definition(
                name=name,
                kind=_kind(child, spec, parent),
                start=_leading_comments_start(outer) + 1,
                end=outer.end_point[0] + 1,
                name_line=row + 1,
                name_col=col if col >= 0 else name_node.start_point[1],
                node=child,
                signature=lines[outer.start_point[0]].strip()[:120] if outer.start_point[0] < len(lines) else name,
                parent=parent,
            )
            out.append(d)
            pending.append((child, d, d.children))
        stack.extend(reversed(pending))
    _sort(top)
    _drop_overloads(top, lines)
    return top


_OVERLOAD_DECORATOR = re.compile(r"^\s*@(typing\.|t\.)?overload\b")


def _is_overload(d: Definition, lines: list[str]) -> bool:
    if d.node.type == "function_signature":  # TypeScript: a signature with no body
        return True
    return any(_OVERLOAD_DECORATOR.match(lines[i]) for i in range(d.start - 1, min(d.first - 1, len(lines))))


def _drop_overloads(defs: list[Definition], lines: list[str]) -> None:
    """Overload declarations (TypeScript `function f(a: string): T;` and Python
    `@overload def f(...): ...` above the real one) are not units of their own: each would
    compete with the implementation for every query about `f` (rxjs declares a dozen per
    operator, click several per decorator). Their lines become glue. A declaration with
    no implementation in its scope (a `.d.ts` file, a stub) stays a symbol."""
    overloads = {id(d) for d in defs if _is_overload(d, lines)}
    bodies = {d.name for d in defs if id(d) not in overloads}
    defs[:] = [d for d in defs if not (id(d) in overloads and d.name in bodies)]
    for d in defs:
        _drop_overloads(d.children, lines)


def _sort(defs: list[Definition]) -> None:
    defs.sort(key=lambda d: (d.start, -d.end))
    for d in defs:
        _sort(d.children)


def _go_receiver(d: Definition) -> str | None:
    if d.node.type != "method_declaration":
        return None
    m = re.findall(r"[A-Za-z_]\w*", _text(d.node.child_by_field_name("receiver")))
    return m[-1] if m else None


def symbols_of(defs: list[Definition]) -> list[Symbol]:
    out: list[Symbol] = []
    todo = list(defs)
    while todo:
        d = todo.pop(0)
        container = d.parent.qualname if d.parent else _go_receiver(d)
        out.append(Symbol(d.name, d.kind, container, d.node.start_point[0] + 1, d.end, d.name_col))
        todo.extend(d.children)
    out.sort(key=lambda s: (s.start_line, s.name))
    return out


def _trim(lines: list[str], start: int, end: int) -> tuple[int, int]:
    """start..end without leading/trailing blank lines (start > end when nothing is left)."""
    while start <= end and not lines[start - 1].strip():
        start += 1
    while end >= start and not lines[end - 1].strip():
        end -= 1
    return start, end


class _Assembler:
    """Turns a definition tree into chunks: one unit per symbol, glue between them."""

    def __init__(self, rel_path: str, lines: list[str], count_tokens: CountTokens, budget: int,
                 nested_units: bool = True) -> None:
        self.rel_path = rel_path
        self.nested_units = nested_units
        self.lines = lines
        self.count = count_tokens
        self.budget = budget

    def header(self, chain: list[Definition]) -> str:
        """The path (first line; see `embedding_input`), then the containers' signatures."""
        if not chain:
            return self.rel_path
        return f"{self.rel_path}\n" + " > ".join(d.signature for d in chain)

    def unit(self, d: Definition, chain: list[Definition], end: int, extra: str = "") -> Chunk:
        """The chunk of definition `d` over d.first..end; comments and decorators above it
        and `extra` (a container's member list) are embedder context, not range."""
        lead = self.lines[d.start - 1 : d.first - 1]
        shown = self.lines[d.first - 1 : min(end, d.first - 1 + TEXT_LINES)]
        raw = "\n".join([self.header(chain), *lead, *shown, *([extra] if extra else [])])
        return self.make(raw, d.first, end, d.qualname, d.kind)

    def make(self, raw: str, start: int, end: int, symbol: str | None, kind: SymbolKind | None) -> Chunk:
        # The first line is the path (lexical index only): its words are split, not written out.
        path, nl, code = raw[: self.budget * _CHARS_PER_TOKEN_CAP].partition("\n")
        text = embed_text(path, expand=False) + nl + embed_text(code)
        body = "\n".join(self.lines[start - 1 : end])
        # `tokens` is what the model reads: it truncates longer texts at its input cap.
        return Chunk(text=text, body=body, start_line=start, end_line=end, symbol=symbol, kind=kind,
                     tokens=min(self.count(text), self.budget))

    def range(self, start: int, end: int, defs: list[Definition], chain: list[Definition]) -> list[Chunk]:
        out: list[Chunk] = []
        cursor = start
        for d in defs:
            if d.end < cursor:
                continue  # nested inside something already emitted (defensive)
            if d.start > cursor:
                out += self.glue(cursor, d.start - 1, chain)
            out += self.definition(d, chain)
            cursor = d.end + 1
        if cursor <= end:
            out += self.glue(cursor, end, chain)
        return out

    def glue(self, start: int, end: int, chain: list[Definition]) -> list[Chunk]:
        """Code between definitions (imports, constants, statements): no symbol of its own."""
        start, end = _trim(self.lines, start, end)
        if start > end or not any(IDENTIFIER.search(self.lines[n - 1]) for n in range(start, end + 1)):
            return []  # blank, or only closing braces
        header = self.header(chain)
        blanks = {n for n in range(start, end + 1) if not self.lines[n - 2].strip()} if start > 1 else set()
        pieces = split_range(header, self.lines, start, end, blanks, None, None, self.count, self.budget)
        return [self.make(p.text, p.start_line, p.end_line, None, None) for p in pieces]

    def definition(self, d: Definition, chain: list[Definition]) -> list[Chunk]:
        if not d.children or d.kind not in _CONTAINER_KINDS:
            # Functions are one unit however long (nested helpers included): the model reads
            # the head; the range is the whole function. Definitions nested in it (closures,
            # a plugin's inner helpers, a decorator's wrapper) are units of their own as well, over
            # their own lines: the outer unit's text stops after TEXT_LINES, and a question
            # about an inner helper wants its lines, not the whole enclosing function.
            out = [self.unit(d, chain, d.end)]
            if self.nested_units:
                for c in d.children:
                    out += self.definition(c, [*chain, d])
            return out
        # A container: its head (signature, fields, doc) is one unit whose text also lists
        # the members, then each member is a unit of its own.
        first_member = min(c.start for c in d.children)
        _, head_end = _trim(self.lines, d.first, first_member - 1)
        members = "\n".join(c.signature for c in d.children[:_MEMBER_LIST])
        head = self.unit(d, chain, max(d.first, head_end), members)
        return [head, *self.range(head.end_line + 1, d.end, d.children, [*chain, d])]


def chunk_tree(rel_path: str, language: str, root: Node, lines: list[str], count_tokens: CountTokens,
               budget: int) -> ChunkedFile:
    spec = SPECS[language]
    defs = collect(root, spec, lines)
    asm = _Assembler(rel_path, lines, count_tokens, budget, language in NESTED_UNITS)
    chunks = asm.range(1, len(lines), defs, [])
    return ChunkedFile(language, tuple(chunks), tuple(symbols_of(defs)))
