"""Chunking: a file's text → symbol-level chunks that each fit the model's input.

Public API (the pipeline uses only this):
- `CHUNKER_VERSION`: part of the index config hash; bump when output changes.
- `language_for_path(rel_path)`: "python", "typescript", ..., "markdown", or "text".
- `chunk_file(rel_path, text, count_tokens=..., max_tokens=...) -> ChunkedFile`.
- `embedding_input(chunk_text, brief_from=None)`: what the model embeds of a chunk's text
  (whole, or brief: see `indexer.pipeline.model_input` for who gets which).

Every chunk's text starts with its file's relative path on a line of its own: the lexical
index matches it and it keeps the text hash (the vector cache key) unique per file. The
model does not see it: on the development benchmark, leaving the path out of the
embedded text gave the same tune quality with 10% fewer tokens (docs/benchmarks.md), and
the ranking has a path feature of its own.

Languages with a tree-sitter grammar get symbol-level chunks (indexer.chunking.treesitter);
Markdown is split by headings and everything else by line windows (indexer.chunking.text).
`chunk_file` never raises on odd input: a parser failure falls back to line windows.
"""

from __future__ import annotations

import logging

from indexer.chunking.fit import CountTokens
from indexer.chunking.languages import SPECS, language_for_path, parser_for
from indexer.chunking.lexical import embed_text
from indexer.chunking.text import chunk_lines, chunk_markdown
from indexer.chunking.treesitter import chunk_tree
from indexer.core.types import ChunkedFile

__all__ = ["CHUNKER_VERSION", "SUPPORTED_LANGUAGES", "chunk_file", "embedding_input", "language_for_path"]

CHUNKER_VERSION = "9"
SUPPORTED_LANGUAGES = tuple(sorted(SPECS))
log = logging.getLogger(__name__)


BRIEF_CHARS = 120


def embedding_input(chunk_text: str, *, brief_from: str | None = None) -> str:
    """What the model embeds of a chunk's text: all but its first line, the path (see the
    module docstring).

    `brief_from` (the chunk's first line of code, as in the file) asks for a brief input:
    the text's first line (a container's signature, or the start of the comment above),
    then the code from that line on, up to BRIEF_CHARS characters. Comments and
    decorators above a definition are skipped, so the symbol's own line is always in.
    """
    rest = chunk_text.partition("\n")[2]
    if brief_from is None or len(rest) <= BRIEF_CHARS:
        return rest
    lines = rest.split("\n")
    first_code = embed_text(brief_from).strip()
    at = next((i for i, line in enumerate(lines) if line.strip() == first_code), 0)
    out = lines[:1] if at > 0 else []
    used = len(out[0]) + 1 if out else 0
    for line in lines[at:]:
        if used + len(line) + 1 > BRIEF_CHARS and used:
            break
        out.append(line[:BRIEF_CHARS])
        used += len(line) + 1
    return "\n".join(out)


def split_lines(text: str) -> list[str]:
    """Lines as editors number them (\\r\\n and \\n both end a line)."""
    lines = text.split("\n")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def chunk_file(rel_path: str, text: str, *, count_tokens: CountTokens, max_tokens: int) -> ChunkedFile:
    """Chunks and symbols of one file; every chunk's text fits `max_tokens`."""
    language = language_for_path(rel_path)
    lines = split_lines(text)
    if not text.strip():
        return ChunkedFile(language, (), ())
    if language == "markdown":
        return chunk_markdown(rel_path, lines, count_tokens, max_tokens)
    parser = parser_for(language)
    if parser is not None:
        try:
            tree = parser.parse("\n".join(lines).encode("utf-8", "surrogatepass"))
            return chunk_tree(rel_path, language, tree.root_node, lines, count_tokens, max_tokens)
        except (RecursionError, ValueError, UnicodeError) as exc:
            log.warning("%s: tree-sitter chunking failed (%s); using line windows", rel_path, exc)
    return chunk_lines(rel_path, language, lines, count_tokens, max_tokens)
