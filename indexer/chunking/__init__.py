"""Chunking: a file's text → symbol-level chunks that each fit the model's input.

Public API (the pipeline uses only this):
- `CHUNKER_VERSION`: part of the index config hash; bump when output changes.
- `language_for_path(rel_path)`: "python", "typescript", ..., "markdown", or "text".
- `chunk_file(rel_path, text, count_tokens=..., max_tokens=...) -> ChunkedFile`.
- `embedding_input(chunk_text)`: what the model embeds of a chunk's text.

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
from indexer.chunking.text import chunk_lines, chunk_markdown
from indexer.chunking.treesitter import chunk_tree
from indexer.types import ChunkedFile

__all__ = ["CHUNKER_VERSION", "SUPPORTED_LANGUAGES", "chunk_file", "embedding_input", "language_for_path"]

CHUNKER_VERSION = "5"
SUPPORTED_LANGUAGES = tuple(sorted(SPECS))
log = logging.getLogger(__name__)


def embedding_input(chunk_text: str) -> str:
    """A chunk's text without its first line, the path (see the module docstring)."""
    return chunk_text.partition("\n")[2]


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
