"""Symbol-level chunks from a tree-sitter parse.

1. Collect definitions (functions, methods, classes, ...) as a tree, each with its line
   range widened to its wrappers (decorators, `export`, `template<>`) and the comments
   directly above it, so a doc comment travels with its code.
2. Walk that tree: a definition that fits the budget is one chunk; a container that does
   not fit is split into its members plus chunks for its own head and the code between
   members; a leaf that does not fit is split at statement boundaries. Code between
   definitions (imports, module statements) becomes chunks too, so every line is covered.
3. Merge small neighbours that share a header, up to the budget.

The header of each chunk: the file's relative path, then the enclosing containers'
signature lines joined by " > ", then, for the second and later parts of a split symbol,
that symbol's signature prefixed by "... ". Plain text, the same for every language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from indexer.chunking.fit import CountTokens, make_chunk, split_range
from indexer.chunking.languages import SPECS, LanguageSpec
from indexer.types import Chunk, ChunkedFile, Symbol, SymbolKind

MERGE_BELOW = 48  # tokens: chunks smaller than this merge with small neighbours
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function", "class"}
_C_NAMES = {"identifier", "field_identifier", "qualified_identifier", "destructor_name", "operator_name",
            "type_identifier"}
_CONTAINER_KINDS = {"class", "interface", "struct", "enum", "trait", "impl", "module", "namespace", "type"}


@dataclass(eq=False)
class Definition:
    name: str
    kind: SymbolKind
    start: int  # first line of the chunk (wrappers and leading comments included)
    end: int
    name_line: int
    name_col: int
    node: Node
    signature: str
    parent: Definition | None = None
    children: list[Definition] = field(default_factory=list)

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
    while prev is not None and ("comment" in prev.type or prev.type == "attribute_item") and prev.end_point[0] >= row - 1:
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
    return top


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


class _Assembler:
    def __init__(self, rel_path: str, lines: list[str], count_tokens: CountTokens, budget: int) -> None:
        self.rel_path = rel_path
        self.lines = lines
        self.count = count_tokens
        self.budget = budget
        self.glue_ids: set[int] = set()  # chunks of code between definitions

    def header(self, chain: list[Definition]) -> str:
        if not chain:
            return self.rel_path
        return f"{self.rel_path}\n" + " > ".join(d.signature for d in chain)

    def range(self, start: int, end: int, defs: list[Definition], chain: list[Definition]) -> list[Chunk]:
        out: list[Chunk] = []
        cursor = start
        owner = chain[-1] if chain else None
        for d in defs:
            if d.end < cursor:
                continue  # nested inside something already emitted (defensive)
            if d.start > cursor:
                out += self.glue(cursor, d.start - 1, chain, owner)
            out += self.definition(d, chain, max(d.start, cursor))
            cursor = d.end + 1
        if cursor <= end:
            out += self.glue(cursor, end, chain, owner)
        return self.merge_small(out, self.header(chain))

    def glue(self, start: int, end: int, chain: list[Definition], owner: Definition | None) -> list[Chunk]:
        while start <= end and not self.lines[start - 1].strip():
            start += 1
        while end >= start and not self.lines[end - 1].strip():
            end -= 1
        if start > end:
            return []
        header = self.header(chain)
        symbol, kind = (owner.qualname, owner.kind) if owner else (None, None)
        blanks = {n for n in range(start, end + 1) if not self.lines[n - 2].strip()} if start > 1 else set()
        chunks = split_range(header, self.lines, start, end, blanks, symbol, kind, self.count, self.budget)
        self.glue_ids.update(id(c) for c in chunks)
        return chunks

    def definition(self, d: Definition, chain: list[Definition], start: int) -> list[Chunk]:
        header = self.header(chain)
        if d.children:
            # Members get chunks of their own (precise hits); the container's head and the
            # code between members become chunks labelled with the container.
            return self.range(start, d.end, d.children, [*chain, d])
        body = "\n".join(self.lines[start - 1 : d.end])
        if len(header) + len(body) + 2 <= self.budget or self.count(f"{header}\n{body}") <= self.budget:
            return [make_chunk(header, self.lines, start, d.end, d.qualname, d.kind, self.count, self.budget)]
        cont = f"{header}\n... {d.signature}"
        bounds = _statement_starts(d.node)
        first, *rest = split_range(header, self.lines, start, d.end, bounds, d.qualname, d.kind, self.count,
                                   self.budget - max(0, self.count(cont) - self.count(header)))
        if not rest:
            return [first]
        tail = split_range(cont, self.lines, first.end_line + 1, d.end, bounds, d.qualname, d.kind, self.count,
                           self.budget)
        return [first, *tail]

    def merge_small(self, chunks: list[Chunk], header: str) -> list[Chunk]:
        out: list[Chunk] = []
        for c in chunks:
            prev = out[-1] if out else None
            same_header = prev is not None and _header_of(prev) == header == _header_of(c)
            if (
                prev is not None and same_header and prev.tokens + c.tokens <= self.budget
                and self._mergeable(prev, c)
                and not c.text[len(header) + 1 :].startswith("... ")
            ):
                # Name the merged chunk after its definition, not after glue around it.
                named = c if id(prev) in self.glue_ids and id(c) not in self.glue_ids else prev
                merged = make_chunk(header, self.lines, prev.start_line, c.end_line, named.symbol or prev.symbol,
                                    named.kind or prev.kind, self.count, self.budget)
                if merged.tokens <= self.budget:
                    if id(prev) in self.glue_ids and id(c) in self.glue_ids:
                        self.glue_ids.add(id(merged))
                    out[-1] = merged
                    continue
            out.append(c)
        return out

    def _mergeable(self, a: Chunk, b: Chunk) -> bool:
        """Glue joins a neighbour when either is small; two definitions only when both are tiny."""
        a_glue, b_glue = id(a) in self.glue_ids, id(b) in self.glue_ids
        if a_glue or b_glue:
            small = (a_glue and a.tokens < MERGE_BELOW) or (b_glue and b.tokens < MERGE_BELOW)
            return small and not (not a_glue and not b_glue)
        return a.tokens < MERGE_BELOW and b.tokens < MERGE_BELOW


def _header_of(c: Chunk) -> str:
    return c.text[: len(c.text) - len(c.body) - 1]


def _statement_starts(node: Node) -> set[int]:
    """1-based lines where a statement of the body (or of a nested block) begins."""
    body = node.child_by_field_name("body") or node
    out: set[int] = set()
    for child in body.named_children:
        out.add(child.start_point[0] + 1)
        for grandchild in child.named_children:
            out.add(grandchild.start_point[0] + 1)
    return out


def chunk_tree(rel_path: str, language: str, root: Node, lines: list[str], count_tokens: CountTokens,
               budget: int) -> ChunkedFile:
    spec = SPECS[language]
    defs = collect(root, spec, lines)
    asm = _Assembler(rel_path, lines, count_tokens, budget)
    chunks = asm.range(1, len(lines), defs, [])
    return ChunkedFile(language, tuple(chunks), tuple(symbols_of(defs)))
