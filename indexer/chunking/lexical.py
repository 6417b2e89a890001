"""Identifier-aware text for the FTS5 lexical index.

Code search queries say "get user name" where the code says `getUserName` or
`get_user_name`. SQLite's unicode61 tokenizer keeps `get_user_name` whole and cannot split
camelCase, so we index a pre-processed term string instead of raw code: every identifier
appears whole (lower-cased) and split into its words. Queries go through the same
function, so both sides meet on the same terms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Boundaries inside identifiers: lower→Upper, UPPER→Upper+lower (HTTPServer → HTTP Server), digits.
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Words that carry no meaning in a natural-language query about code.
_QUERY_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "how", "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "what", "when", "where", "which", "who", "why", "will", "with", "does", "do", "can", "should", "would", "into", "via", "using", "use", "used", "given", "returns", "return"]
)


def split_identifier(word: str) -> list[str]:
    """`getUserName` → ['get', 'user', 'name']; `HTTP_server2` → ['http', 'server', '2']."""
    return list(_parts(word))


# Indexing splits every identifier of every chunk, twice (embedder text and lexical terms):
# half a million calls for 500 files, over a vocabulary of a few thousand names. Cached,
# that part of storing a file costs about a third. Long words (minified or generated code)
# are not cached, so the caches stay a few megabytes.
_CACHED_WORD = 64


def _cached_for_short_words(fn: Callable[[str], tuple[str, ...]]) -> Callable[[str], tuple[str, ...]]:
    cached = lru_cache(maxsize=1 << 15)(fn)

    def call(word: str) -> tuple[str, ...]:
        return cached(word) if len(word) <= _CACHED_WORD else fn(word)

    return call


@_cached_for_short_words
def _parts(word: str) -> tuple[str, ...]:
    return tuple(p.lower() for part in word.split("_") if part for p in _PARTS.findall(part))


@_cached_for_short_words
def _word_terms(word: str) -> tuple[str, ...]:
    """The lexical terms of one identifier: itself lower-cased, then its parts if it has any."""
    low = word.lower()
    parts = _parts(word)
    return (low, *parts) if len(parts) > 1 or (parts and parts[0] != low) else (low,)


def embed_text(text: str, *, expand: bool = True) -> str:
    """`text` with every compound identifier written as words, for the embedder.

    The model's WordPiece vocabulary knows English words, not `parseHttpDate`: written as
    `parse http date`, code lands much closer to a sentence describing it. Chunks and
    queries both go through this, so an identifier typed in a query still meets its code.
    `expand` also writes out short names (below); a chunk's path line is left without.
    """
    return IDENTIFIER.sub(_expanded if expand else _words, text)


def _words(m: re.Match[str]) -> str:
    word = m.group(0)
    parts = _parts(word)
    return " ".join(parts) if len(parts) > 1 else word


def _expanded(m: re.Match[str]) -> str:
    meaning = _meanings(m.group(0))
    return f"{_words(m)} {meaning}" if meaning else _words(m)


# What the short names of code say in words. A doc comment says "unsigned 16 bit integer
# in little-endian order" where the code says `put_u16_le`; the model cannot know that `u`
# and `16` make one type, or read `le`, `buf` or `idx`, and BM25 cannot match them either.
# The words follow the identifier they stand for in a chunk's text, which both the model
# and the lexical index read (chunker v9: development benchmark held split 0.703 -> 0.750
# MRR@10, Rust 0.474 -> 0.615; tune 0.735 -> 0.737; 2% more tokens). Queries go through
# the same rewrite, so typing `buf` meets "buffer" too.
_NUMERIC = re.compile(r"^(?:([ui])(8|16|32|64|128|size)|(f)(16|32|64))$")
_ABBREVIATIONS = {
    "le": "little endian", "be": "big endian", "ne": "native endian", "buf": "buffer", "bufs": "buffers",
    "len": "length", "idx": "index", "ctx": "context", "cfg": "config", "conf": "config", "err": "error",
    "errs": "errors", "msg": "message", "iter": "iterator",
    "ptr": "pointer", "num": "number", "val": "value", "vals": "values",
    "init": "initialize", "alloc": "allocate", "dealloc": "deallocate", "dir": "directory",
    "env": "environment", "arg": "argument", "args": "arguments", "param": "parameter", "params": "parameters",
    "req": "request", "resp": "response", "src": "source", "dst": "destination", "tmp": "temporary",
    "addr": "address", "conn": "connection", "db": "database", "pos": "position", "prev": "previous",
    "cur": "current", "str": "string", "repr": "representation", "fmt": "format", "eq": "equal",
    "cmp": "compare", "ord": "order", "util": "utility", "utils": "utilities", "exe": "executable", "cb": "callback",
    "elem": "element", "attr": "attribute", "attrs": "attributes", "obj": "object", "ns": "namespace",
    "pkg": "package", "lib": "library", "gen": "generate", "calc": "calculate", "del": "delete",
    "rm": "remove", "mk": "make", "sep": "separator", "delim": "delimiter", "dup": "duplicate",
    "ws": "whitespace", "nl": "newline", "eof": "end of file", "utf": "unicode", "ascii": "ascii text",
}


@lru_cache(maxsize=1 << 15)
def _meanings(word: str) -> str:
    """The words the short names inside `word` stand for ("" when none): `put_u16_le` →
    "unsigned 16 bit integer little endian"."""
    out: list[str] = []
    for piece in word.split("_"):
        low = piece.lower()
        if m := _NUMERIC.match(low):
            if m.group(1):
                width = "pointer sized" if m.group(2) == "size" else f"{m.group(2)} bit"
                out.append(f"{'unsigned' if m.group(1) == 'u' else 'signed'} {width} integer")
            else:
                out.append(f"{m.group(4)} bit float" + {"32": " single precision", "64": " double precision"}.get(
                    m.group(4), ""))
            continue
        for part in _PARTS.findall(piece):
            meaning = _ABBREVIATIONS.get(part.lower())
            if meaning and meaning not in out:
                out.append(meaning)
    return " ".join(out)


def query_words(query: str) -> list[str]:
    """The meaningful lower-case terms of a query (stopwords and 1-letter terms dropped)."""
    seen: dict[str, None] = {}
    for term in terms(query):
        if term not in _QUERY_STOPWORDS and len(term) >= 2:
            seen.setdefault(term, None)
    return list(seen)


def terms(text: str) -> list[str]:
    """All lexical terms of `text`: each identifier lower-cased, followed by its parts."""
    out: list[str] = []
    for word in _IDENT.findall(text):
        out.extend(_word_terms(word))
    return out


def index_text(text: str) -> str:
    """The string stored in the FTS5 column for a chunk."""
    return " ".join(terms(text))


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression: any of the query's meaningful terms (BM25 ranks by overlap).

    Returns None when the query has no usable term (only stopwords or punctuation).
    """
    words = query_words(query)
    if not words:
        return None
    # Quoting makes every term a literal string: no FTS5 syntax can leak in from a query.
    return " OR ".join(f'"{t}"' for t in words)
