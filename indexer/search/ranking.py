"""The relevance model: raw retrieval evidence → a calibrated score in [0, 1].

A score is the estimated probability that a hit is what the query asks for, from a
logistic model over a handful of features that mean the same thing for every query:

- `cosine`: the query's cosine similarity to the chunk's vector;
- `bm25`: FTS5's BM25 divided by the query's IDF mass (0 when no query term occurs);
- `name`: the share of the symbol's name words that the query says (`ld` says nothing,
  `levenshtein_distance` says "levenshtein" and "distance");
- `path`: the share of the query's words found in the file path;
- `demoted`: the file is a test, fixture, example, generated, vendored or prose file and
  the query does not ask for that kind of file (say "test", "fixture", "example", ...);
- `glue`: a chunk of code between definitions (imports, constants), not a symbol;
- `quoted`: the share of the identifiers a query quotes as code (`` `iterable` ``,
  `{@code n}`, `**SizeHint**`) that the candidate's signature declares, its own name left
  out (`name` reads that): "Iterate `iterable` with a running index" quotes the parameter
  of `enumerate(iterable: I)`, and "Apply the function `f` on the value `b` in
  `Right(b)`" the `f` of `map_right(self, f: F)`, not of `right(&self)`. 0 for a query
  that quotes nothing. Set by hand (1.0; see HYBRID).
- `late_name`: every word of the candidate's name is said by the query, but not by its
  first word. A doc comment, and a person asking for code, open with what the code does
  ("Put back a single value", "Emits only the index of the first value ...", Go's
  "ServeHTTP dispatches ..."), and the name most often says that; a name said only further
  on names a thing the action is about (`window` in "... to determine when to start a new
  window", `Observable.subscribe` in "... subscribes to the next one"), so its full `name`
  credit is trimmed. The first word counts as said when it is the name written whole, or
  the name of the symbol's owner (`Workspace.index` for "Workspace index"). Set by hand
  (-0.5; see HYBRID).
- `head`: the head of a type (class, struct, interface, trait, impl, enum, type alias,
  module), for a query that asks for an action ("parse a version string"): the head's
  text names the type and lists its members or fields, so it matches every query about
  one of them, while such a question asks for the code that does the thing. A query that
  describes a thing ("A pair of comparison operator and partial version", "Route stores
  ..."; see `describes_thing`) reads like a type's documentation, and there the head is
  the answer: the feature is 0, except for `impl` blocks and Rust associated types (tune
  split with `--answers types`: type queries 0.350 -> 0.545 MRR@10, function queries
  unchanged; docs/benchmarks.md).
- `trait_impl`: a method of a Rust `impl Trait for Type` block (`next`, `fmt`, `size_hint`
  of an iterator adaptor): a trait's contract filled in, documented where the trait is,
  while the chunk's header and symbol repeat the type's name, so it outranked the
  function a query describes (`filter_ok` lost to `FilterOk.next`). Its weight is set by
  hand from a sweep on the tune pools (docs/benchmarks.md); Java's and C#'s overrides
  tested the same way answered queries as often as other methods and are not included.
- `nested`: a function defined inside another function (a closure, a decorator's wrapper,
  an observer's `next`/`complete` inside an rxjs operator): a unit of its own, so that a
  question about the helper finds its lines, but its parent's unit covers the same lines
  and is what a question about the behaviour means; short common names (`next`, `emit`,
  `wrapper`) said by the query put the helper first. Set by hand (-0.5; fitted -0.06 at
  90k and -0.44 at 400k characters per project, and -0.5 to -1.0 ranked best at both).

The coefficients were fitted by `tests/bench/fit_ranking.py` on the development
benchmark's tune split only (listwise for the order, then Platt scaling, so the output is
calibrated, not just ordered); the role prior's weight is set by hand (see HYBRID).
Single-retriever modes use one-feature models of their own evidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Protocol

import snowballstemmer

from indexer.chunking.lexical import query_words, split_identifier

FEATURES = ("cosine", "bm25", "name", "path", "demoted", "glue", "head", "trait_impl", "nested", "quoted",
            "late_name")
_HEAD_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "impl", "module", "namespace", "type"})

# Fitted coefficients (intercept first, then FEATURES in order); see the module docstring.
# One exception: `demoted` was fitted at -2.117, but the tune corpora hold few tests (pip
# packages ship none), so the fit barely sees the case the prior exists for, where a test
# repeats its implementation's words. It is set by hand to -3.5, which leaves tune MRR@10
# unchanged (0.733 either way) and puts an implementation above a test that says the
# query outright (tests/integration/test_search_quality.py).
# `trait_impl` is set by hand as well: -1.0 was the best of -0.5, -1.0, -1.5 and -2.0 on the
# tune pools at both corpus sizes, the fitted -1.6 to -2.3 ranked worse; `nested` and
# `quoted` too (see the module docstring; `quoted`: 0.5, 1.0, 1.5, 2.0 swept, 1.0 best at
# 90k and within 0.004 of the best at 400k); `late_name` too (-0.25, -0.5, -0.75 swept, -0.5
# best at 90k and 400k; a listwise refit of every weight ranked worse).
HYBRID = (-7.862, 4.481, 3.471, 1.338, 1.142, -3.5, -1.651, -2.561, -1.0, -0.5, 1.0, -0.5)
# The score a hybrid hit shows: the relevance z above and its margin over the best other
# candidate of the same query, through one more logistic fit (fit_ranking.py, tune split).
# The relevance alone rates every candidate as if it stood alone, so a right first hit
# that clearly leads the rest scored 0.03-0.3 ("is this the answer?" - "maybe"); its lead
# is the strongest sign that it is. Order is unchanged: the score rises with z for every
# candidate and the best keeps the highest.
DISPLAY = (-0.284, 0.203, 1.656)  # intercept, z, margin
MARGIN_CAP = 6.0
VECTOR = (-9.273, 10.628)  # intercept, cosine
LEXICAL = (-5.996, 4.186)  # intercept, bm25

_ROLE_DIRS = {
    "test": {"test", "tests", "testing", "__tests__", "spec", "specs", "e2e", "integration_tests", "benches",
             "bench", "benchmarks"},
    "fixture": {"fixture", "fixtures", "testdata", "test_data", "mocks", "__mocks__", "__snapshots__"},
    "example": {"example", "examples", "samples", "sample", "demo", "demos"},
    "vendor": {"vendor", "third_party", "thirdparty", "node_modules", "external"},
    "generated": {"generated", "gen", "__generated__", "dist", "build"},
    "docs": {"doc", "docs", "documentation"},
}
_TEST_FILE = re.compile(
    r"(^|/)(test_[^/]*\.py|[^/]*_test\.(py|go|rb|exs?|cc|cpp|c)|conftest\.py|[^/]*\.(test|spec)\.[cm]?[jt]sx?|"
    r"[^/]*(Test|Tests|Spec|IT)\.(java|kt|cs|scala|swift|php)|[^/]*_spec\.rb)$"
)
_GENERATED_FILE = re.compile(r"(\.pb\.go|_pb2\.py|_pb2_grpc\.py|\.g\.dart|\.generated\.\w+|\.min\.js|_generated\.\w+)$")
_PROSE = (".md", ".markdown", ".mdx", ".rst", ".txt", ".adoc")
# Query words that ask for a role, so it is not demoted.
_ROLE_WORDS = {
    "test": {"test", "tests", "testing", "tested", "unittest", "spec", "specs", "assert", "asserts", "pytest",
             "benchmark", "benchmarks", "bench"},
    "fixture": {"fixture", "fixtures", "testdata", "mock", "mocks", "stub", "stubs", "sample", "test", "tests"},
    "example": {"example", "examples", "sample", "samples", "demo", "demos", "usage"},
    "vendor": {"vendor", "vendored", "third", "party", "dependency"},
    "generated": {"generated", "protobuf", "proto", "codegen", "dist", "build", "bundle", "minified"},
    "docs": {"doc", "docs", "documentation", "readme", "guide", "manual", "changelog", "explain", "explained"},
}


class Scored(Protocol):
    """What the model reads from a candidate (indexer.search.query.Candidate)."""

    path: str
    symbol: str | None
    language: str
    kind: str | None
    body: str
    within: str
    cosine: float
    bm25: float
    score: float


def role_of(path: str, language: str = "") -> str:
    """"code", or the role that demotes a file for plain queries: test, fixture, example,
    vendor, generated or docs."""
    low = path.lower()
    parts = low.split("/")
    for role in ("vendor", "fixture", "test", "example", "generated", "docs"):
        if any(p in _ROLE_DIRS[role] for p in parts[:-1]):
            return role
    if _TEST_FILE.search(path):
        return "test"
    if _GENERATED_FILE.search(low):
        return "generated"
    if low.endswith(_PROSE) or language == "markdown":
        return "docs"
    return "code"


def in_test_module(symbol: str, language: str) -> bool:
    """A definition inside a Rust `mod tests` (or `mod test`), the inline unit tests of a
    source file: tests by role whatever the file's path."""
    return language == "rust" and symbol.split(".", 1)[0] in ("tests", "test")


def wanted_roles(query: str) -> set[str]:
    """Roles the query asks about ("tests for the parser" wants tests and fixtures)."""
    words = set(_stem_all(query_words(query)) + query_words(query))
    return {role for role, ws in _ROLE_WORDS.items() if words & ws}


# The Snowball (Porter 2) English stemmer: "scores" and "score", "parsing" and "parse" meet.
# The hand-written suffix stripper before it cut "scores" to "scor" and left "score" whole,
# so a name never matched a query that said its word in the plural or another tense.
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(w: str) -> str:
    return str(_STEMMER.stemWord(w))


def _stem_all(words: Iterable[str]) -> list[str]:
    return [_stem(w) for w in words]


# Per-symbol and per-file word sets, cached: the same files and symbols come back query
# after query, and splitting and stemming them was a quarter of a search at 100k chunks.
# Conventional words of code names and the query words that say them: a doc comment says
# "Creates a new parser", "Removes and returns the last element" or "Whether the set is
# empty" where the name says `new`, `pop` or `is_empty`, so `new`, `pop` and `is` count as
# said (the `name` feature) when the query says one of those words. Generic conventions of
# every language, not of one project; on the development benchmark's tune pools, with the
# coefficients unchanged, MRR@10 rose 0.741 -> 0.751 (90k characters per project), 0.622
# -> 0.633 (400k) and Java 0.554 -> 0.572 (docs/benchmarks.md).
_NAME_GROUPS = (
    ("get fetch read load peek", "get gets retrieve retrieves obtain obtains fetch fetches give gives"),
    ("is has can should contains", "whether true check checks test tests determine determines"),
    ("new create make build init construct from of with",
     "create creates construct constructs new make makes build builds instance"),
    ("to into as", "convert converts transform transforms turn turns"),
    ("len count size length", "number count size length many"),
    ("remove delete pop take drop clear del rm",
     "remove removes delete deletes pop pops drop drops discard discards erase erases clear clears"),
    ("add insert push append put offer", "add adds insert inserts push pushes append appends put puts"),
    ("iter iterator each", "iterate iterates iterator each"),
    ("eq equals cmp compare", "equal equals compare compares"),
)
_SAID_BY: dict[str, frozenset[str]] = {}
for _names, _says in _NAME_GROUPS:
    for _name in _names.split():
        _SAID_BY[_name] = _SAID_BY.get(_name, frozenset()) | frozenset(_stem(w) for w in _says.split())


@lru_cache(maxsize=65536)
def _name_words(symbol: str) -> tuple[frozenset[str], ...]:
    """For each word of a symbol's own name, the stemmed query words that say it: its stem,
    and for a conventional word (`new`, `is`, `len`, ...) the words of its _NAME_GROUPS."""
    return tuple(frozenset({_stem(w)}) | _SAID_BY.get(w.lower(), frozenset())
                 for w in split_identifier(re.split(r"[.:]", symbol)[-1]))


@lru_cache(maxsize=65536)
def _path_facts(path: str, language: str) -> tuple[frozenset[str], str]:
    words = frozenset(_stem_all(split_identifier(" ".join(re.findall(r"[A-Za-z0-9_]+", path)))))
    return words, role_of(path, language)


# How a type's documentation opens: with an article ("A pair of ...", "The rules ..."), or
# with its own name and a verb of being or holding ("Route stores ...", "NullUUID represents
# ..."). A function's opens with what it does ("Returns ...", "Create ...").
_ARTICLES = frozenset({"a", "an", "the", "this", "these", "those", "some", "any", "each", "every"})
_NOT_A_NAME = frozenset({"what", "where", "how", "which", "who", "why", "when", "it", "there", "that", "here"})
_THING_VERBS = re.compile(
    r"^\S+\s+(?:is|are|represents|holds|stores|describes|defines|wraps|contains|encapsulates|maintains|"
    r"provides|implements|manages|keeps|tracks)\b", re.I)


@lru_cache(maxsize=4096)
def describes_thing(query: str) -> bool:
    """Whether a query reads like the description of a thing (a type) rather than of an
    action (a function)."""
    words = re.findall(r"[A-Za-z0-9_]+", query)
    if not words:
        return False
    first = words[0].lower()
    if first in _ARTICLES:
        return True
    return first not in _NOT_A_NAME and bool(_THING_VERBS.match(query.strip(" *`'\"")))


def _never_the_type(c: Scored) -> bool:
    """An `impl` block, or a Rust associated type (`type Item = T;` inside one): kinds of a
    type's head that a description of the type never means (the struct or trait is)."""
    return c.kind == "impl" or (c.kind == "type" and c.language == "rust" and "." in (c.symbol or ""))


# The header of a member of `impl<...> Trait for Type` (not of an inherent `impl Type`).
_TRAIT_IMPL = re.compile(r"(?:unsafe\s+)?impl\b[^{]*?\bfor\b")


def implements_trait(c: Scored) -> bool:
    """Whether a candidate is a method of a Rust trait implementation (its nearest enclosing
    definition, the last of `within`'s " > "-joined signatures, is `impl ... for ...`)."""
    return (c.language == "rust" and c.kind in ("method", "function") and
            bool(_TRAIT_IMPL.match(c.within.rsplit(" > ", 1)[-1])))


def is_nested(c: Scored) -> bool:
    """Whether a candidate is a function defined inside another function: the chunker
    names a member of a class, struct, impl, trait or module a method and qualifies any
    nested definition with its parent's name (`lastValueFrom.complete`)."""
    return c.kind == "function" and "." in (c.symbol or "")


# How a doc comment or a person quotes code: `x`, ``x``, {@code x} / {@link x}, **x**.
_QUOTES = (re.compile(r"`([^`]+)`"), re.compile(r"\{@(?:code|link|linkplain|literal)\s+([^}]+)\}"),
           re.compile(r"\*\*([^*]+)\*\*"))
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Where a signature ends: the body's brace, an arrow function's `=>`, Python's line-ending `:`.
_SIGNATURE_END = re.compile(r"\{|=>|:\s*$", re.M)
_SIGNATURE_SCAN = 2000  # characters of a body searched for that end
_SIGNATURE_FALLBACK = 300  # characters taken when none is found (a macro, a one-line alias)


@lru_cache(maxsize=4096)
def quoted_identifiers(query: str) -> frozenset[str]:
    """The identifiers inside the code a query quotes (`Right(b)` gives Right and b)."""
    return frozenset(w for pattern in _QUOTES for span in pattern.findall(query) for w in _IDENT.findall(span))


def _signature_identifiers(c: Scored) -> frozenset[str]:
    """The identifiers of a candidate's signature (parameters, types, generics), its own
    name's identifiers left out."""
    m = _SIGNATURE_END.search(c.body, 0, _SIGNATURE_SCAN)
    head = c.body[: m.start()] if m else c.body[:_SIGNATURE_FALLBACK]
    return frozenset(_IDENT.findall(head)) - frozenset(_IDENT.findall(c.symbol or ""))


Lead = tuple[str, str]  # the query's first term: stemmed, and as written without underscores


@lru_cache(maxsize=4096)
def lead_word(query: str) -> Lead | None:
    """The first meaningful term of a query (an identifier whole, `read_secret`), or None."""
    words = query_words(query)
    return (_stem(words[0]), words[0].replace("_", "")) if words else None


@lru_cache(maxsize=65536)
def _symbol_segments(symbol: str) -> frozenset[str]:
    """The names a qualified symbol is made of, lower-cased, without underscores and
    generic parameters: `EitherOrBoth<A, B>.map_right` gives eitherorboth and mapright."""
    bare = symbol
    while (shorter := re.sub(r"<[^<>]*>", "", bare)) != bare:
        bare = shorter
    return frozenset(seg.replace("_", "").lower() for seg in re.split(r"[.:]+", bare) if seg)


def _first_word_misses(c: Scored, name_words: tuple[frozenset[str], ...], lead: Lead | None) -> bool:
    """Whether the query's first term says none of the candidate's name words and is
    neither its name written whole nor its owner's (see `late_name`)."""
    return (lead is not None and not any(lead[0] in says for says in name_words)
            and lead[1] not in _symbol_segments(c.symbol or ""))


def features(c: Scored, qwords: set[str], wanted: set[str], thing: bool = False,
             quoted: frozenset[str] = frozenset(), lead: Lead | None = None) -> list[float]:
    """The FEATURES of one candidate for a query (its stemmed words, wanted roles, whether
    it describes a thing, the identifiers it quotes and its first term)."""
    name_words = _name_words(c.symbol) if c.symbol else ()
    name = sum(1 for says in name_words if not says.isdisjoint(qwords)) / len(name_words) if name_words else 0.0
    path_words, role = _path_facts(c.path, c.language)
    if role == "code" and c.symbol and in_test_module(c.symbol, c.language):
        role = "test"
    path_share = sum(1 for w in qwords if w in path_words) / len(qwords) if qwords else 0.0
    demoted = 1.0 if role != "code" and role not in wanted else 0.0
    glue = 1.0 if c.symbol is None and role != "docs" and c.language not in ("text", "markdown") else 0.0
    head = 1.0 if c.kind in _HEAD_KINDS and (not thing or _never_the_type(c)) else 0.0
    return [c.cosine, c.bm25, name, path_share, demoted, glue, head, 1.0 if implements_trait(c) else 0.0,
            1.0 if is_nested(c) else 0.0,
            len(quoted & _signature_identifiers(c)) / len(quoted) if quoted else 0.0,
            1.0 if name == 1.0 and _first_word_misses(c, name_words, lead) else 0.0]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


def margins(zs: Sequence[float]) -> list[float]:
    """Each candidate's relevance minus the best other candidate's, within ±MARGIN_CAP (the
    best candidate's margin is its lead over the second; a lone candidate leads by the cap)."""
    if not zs:
        return []
    best = max(range(len(zs)), key=zs.__getitem__)
    second = max((z for i, z in enumerate(zs) if i != best), default=zs[best] - MARGIN_CAP)
    return [max(-MARGIN_CAP, min(MARGIN_CAP, z - (second if i == best else zs[best]))) for i, z in enumerate(zs)]


def score(pool: Sequence[Scored], query: str, mode: str = "hybrid") -> None:
    """Set `score` on every candidate of `pool` for `query` (in place)."""
    qwords = set(_stem_all(query_words(query)))
    wanted = wanted_roles(query)
    thing = describes_thing(query)
    quoted = quoted_identifiers(query)
    lead = lead_word(query)
    zs: list[float] = []
    for c in pool:
        if mode == "vector":
            c.score = _sigmoid(VECTOR[0] + VECTOR[1] * c.cosine)
        elif mode == "lexical":
            c.score = _sigmoid(LEXICAL[0] + LEXICAL[1] * c.bm25)
        else:
            f = features(c, qwords, wanted, thing, quoted, lead)
            zs.append(HYBRID[0] + sum(w * x for w, x in zip(HYBRID[1:], f, strict=True)))
    if mode not in ("vector", "lexical"):
        for c, z, m in zip(pool, zs, margins(zs), strict=True):
            c.score = _sigmoid(DISPLAY[0] + DISPLAY[1] * z + DISPLAY[2] * m)
