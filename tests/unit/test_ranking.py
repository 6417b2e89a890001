"""Ranking rules: file-role prior, exact filters, score floor, calibrated and monotone scores.

The search tests run the real pipeline, SQLite/FTS5 and Chroma through `Workspace`; only
the model is a fake (a bag-of-words hashing embedder), because these tests check ranking
rules, not embedding quality (tests/integration/test_search_quality.py uses the model).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from indexer.chunking.lexical import query_words, terms
from indexer.core.errors import InvalidQuery
from indexer.core.settings import Settings
from indexer.search import query as query_mod
from indexer.search import ranking
from indexer.workspace import Workspace

DIM = 128


class BagOfWords:
    """A deterministic stand-in for the model: hashed word counts, normalised."""

    model_id = "fake-bag-of-words"
    dim = DIM
    max_tokens = 256
    input_tokens = 256

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(DIM, dtype=np.float32)
        for t in terms(text):
            v[int(hashlib.md5(t.encode()).hexdigest(), 16) % DIM] += 1.0
        n = float(np.linalg.norm(v))
        return v / n if n else v + 1.0 / np.sqrt(DIM)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self._vec(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)



class Recording(BagOfWords):
    """BagOfWords that keeps every document text it was given."""

    def __init__(self) -> None:
        self.given: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.given.extend(texts)
        return super().embed_documents(texts)

IMPL = '''def parse_config(text):
    settings = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    return settings
'''
# The test says the query's words more often than the implementation does.
TEST = '''from parser import parse_config


def test_parse_config_text_into_settings():
    settings = parse_config("a=1")  # parse config text into settings
    assert settings == {"a": "1"}  # config settings parsed from text
'''
TS = '''export function parseConfigText(text: string): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const line of text.split("\\n")) { const [k, v] = line.split("="); settings[k] = v; }
  return settings;
}
'''


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("ranking")
    (root / "src").mkdir()
    (root / "tests").mkdir()
    (root / "web").mkdir()
    (root / "src" / "parser.py").write_text(IMPL)
    (root / "tests" / "test_parser.py").write_text(TEST)
    (root / "web" / "config.ts").write_text(TS)
    w = Workspace(root, Settings(state_dir=root.parent / f"{root.name}-state"), embedder=BagOfWords())
    w.index()
    yield w
    w.close()


def test_role_of_paths() -> None:
    assert ranking.role_of("tests/test_parser.py") == "test"
    assert ranking.role_of("pkg/parser_test.go") == "test"
    assert ranking.role_of("web/cart.spec.ts") == "test"
    assert ranking.role_of("src/main/java/FooTest.java") == "test"
    assert ranking.role_of("examples/basic.py") == "example"
    assert ranking.role_of("pkg/testdata/in.go") == "fixture"
    assert ranking.role_of("api/v1/types.pb.go") == "generated"
    assert ranking.role_of("vendor/github.com/x/y.go") == "vendor"
    assert ranking.role_of("README.md", "markdown") == "docs"
    assert ranking.role_of("src/parser.py") == "code"
    assert ranking.role_of("src/testing_utils.py") == "code"  # a word inside a name is not a role


def test_queries_that_ask_for_tests_want_them() -> None:
    assert "test" in ranking.wanted_roles("tests for the config parser")
    assert "example" in ranking.wanted_roles("usage example of the retry decorator")
    assert ranking.wanted_roles("parse config text into settings") == set()


def test_plain_query_puts_the_implementation_above_its_test(ws: Workspace) -> None:
    hits = ws.search("parse config text into settings", limit=10)
    paths = [h.path for h in hits]
    assert paths[0] in ("src/parser.py", "web/config.ts"), paths
    assert "tests/test_parser.py" in paths  # demoted, still found
    assert paths.index("src/parser.py") < paths.index("tests/test_parser.py")


def test_without_the_prior_the_test_would_win(ws: Workspace) -> None:
    # Guards the fixture: the demotion is what puts the implementation first.
    store = ws.store
    from indexer.search import query

    pool = query.candidates(store, ws.embedder, "parse config text into settings")
    by_path = {c.path: c for c in pool if c.symbol}
    assert by_path["tests/test_parser.py"].bm25 > by_path["src/parser.py"].bm25


def test_a_query_about_tests_finds_the_test_first(ws: Workspace) -> None:
    hits = ws.search("test that parse config turns text into settings", limit=5)
    assert hits[0].path == "tests/test_parser.py"


def test_a_path_filter_selects_tests_and_stays_exact(ws: Workspace) -> None:
    hits = ws.search("parse config text into settings", limit=10, paths=["tests/**"])
    assert hits and all(h.path.startswith("tests/") for h in hits)


def test_language_filter_is_exact(ws: Workspace) -> None:
    hits = ws.search("parse config text into settings", limit=10, languages=["typescript"])
    assert hits and {h.language for h in hits} == {"typescript"}


def test_scores_are_probabilities_in_order(ws: Workspace) -> None:
    for mode in ("hybrid", "vector", "lexical"):
        hits = ws.search("parse config text into settings", limit=10, mode=mode)
        scores = [h.score for h in hits]
        assert scores and all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)


def test_score_floor_is_honoured(ws: Workspace) -> None:
    from indexer.search import query

    everything = query.search(ws.store, ws.embedder, "parse config text into settings", limit=10)
    floor = everything[len(everything) // 2].score
    kept = query.search(ws.store, ws.embedder, "parse config text into settings", limit=10, min_score=floor)
    assert kept and all(h.score >= floor for h in kept)
    assert [h.chunk_id for h in kept] == [h.chunk_id for h in everything if h.score >= floor]
    assert query.search(ws.store, ws.embedder, "parse config", limit=10, min_score=1.0) == []
    with pytest.raises(InvalidQuery):
        query.search(ws.store, ws.embedder, "parse config", min_score=1.5)


@dataclass
class _C:
    path: str = "src/a.py"
    symbol: str | None = "load_settings"
    language: str = "python"
    kind: str | None = "function"
    body: str = ""
    within: str = ""
    cosine: float = 0.4
    bm25: float = 0.5
    score: float = 0.0


_QUOTED = ranking.FEATURES.index("quoted")


def _score(c: _C, query: str = "load the settings") -> float:
    ranking.score([c], query)
    return c.score


@pytest.mark.parametrize("field", ["cosine", "bm25"])
def test_score_is_monotone_in_the_evidence(field: str) -> None:
    scores = []
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        c = _C()
        setattr(c, field, v)
        scores.append(_score(c))
    assert scores == sorted(scores) and scores[0] < scores[-1]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_score_is_comparable_across_queries() -> None:
    # Same evidence, different query wording: the score depends on the evidence only.
    a = _score(_C(symbol="x"), "load the settings")
    b = _score(_C(symbol="x"), "read every configured option from the file on disk")
    assert a == pytest.approx(b)


def test_name_match_and_role_move_the_score() -> None:
    assert _score(_C(symbol="load_settings")) > _score(_C(symbol="helper"))
    assert _score(_C(path="tests/test_a.py")) < _score(_C())
    # Asked for tests, a test file is not demoted (its path even matches the query).
    assert _score(_C(path="tests/test_a.py"), "test load the settings") >= _score(_C(), "test load the settings")


def test_a_type_head_comes_after_the_function_with_the_same_evidence() -> None:
    # A class/struct/impl head lists its members' names, so it matches queries about any
    # of them; with equal evidence the function (what a question in words asks for) wins.
    func = _score(_C(kind="function"))
    for kind in ("class", "struct", "impl", "interface", "type", "trait"):
        assert _score(_C(kind=kind)) < func
    assert _score(_C(kind="method")) == pytest.approx(func)
    # ...but a head still outranks a function with clearly weaker evidence.
    assert _score(_C(kind="struct", cosine=0.7, bm25=1.0)) > _score(_C(kind="function", cosine=0.3, bm25=0.2))


RUST_ADAPTOR = """pub struct FilterOk<I, F> {
    iter: I,
    f: F,
}

impl<I, F> FilterOk<I, F> {
    pub fn into_inner(self) -> I {
        self.iter
    }
}

impl<I, F, T, E> Iterator for FilterOk<I, F>
where
    I: Iterator<Item = Result<T, E>>,
{
    type Item = Result<T, E>;

    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next()
    }
}

pub fn filter_ok<I, F>(iter: I, f: F) -> FilterOk<I, F> {
    FilterOk { iter, f }
}
"""


def test_a_rust_trait_implementation_member_comes_after_a_function_with_the_same_evidence() -> None:
    # `fn next` of `impl Iterator for FilterOk` fills in Iterator's contract; its header and
    # symbol repeat the adaptor's name, and it used to beat the function a query describes.
    member = _C(language="rust", kind="method", symbol="FilterOk<I, F>.next",
                within="impl<I, F, T, E> Iterator for filter ok<I, F>")
    assert ranking.implements_trait(member)
    assert _score(member) < _score(_C(language="rust", kind="method", symbol="FilterOk<I, F>.next"))
    for within, language in (("impl<I, F> filter ok<I, F> {", "rust"),  # an inherent impl
                             ("pub trait Itertools : Iterator {", "rust"),  # a provided method
                             ("impl Iterator for filter ok {", "python")):  # never outside Rust
        assert not ranking.implements_trait(_C(language=language, kind="method", within=within)), within


def test_search_candidates_carry_the_signatures_around_a_member(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "adaptors.rs").write_text(RUST_ADAPTOR)
    with Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=BagOfWords()) as w:
        w.index()
        pool = {c.symbol: c for c in query_mod.candidates(w.store, w.embedder, "filter ok values")}
    assert {s for s, c in pool.items() if ranking.implements_trait(c)} == {"FilterOk<I, F>.next"}
    assert pool["FilterOk<I, F>.into_inner"].within.startswith("impl<I, F> filter ok<I, F>")
    assert pool["filter_ok"].within == ""  # top level: nothing around it



def test_a_function_nested_in_another_comes_after_a_function_with_the_same_evidence() -> None:
    # A closure or an observer's `complete` inside an operator is a unit of its own, but its
    # parent's unit covers its lines and is what a question about the behaviour means.
    top = _score(_C(kind="function", symbol="last_value_from"))
    assert _score(_C(kind="function", symbol="last_value_from.complete")) < top
    assert _score(_C(kind="method", symbol="Observable.complete")) == pytest.approx(
        _score(_C(kind="function", symbol="complete")))  # a class's member is not nested



def test_identifiers_a_query_quotes_are_read_from_every_way_of_quoting_code() -> None:
    assert ranking.quoted_identifiers("Apply `f` on `b` in `Right(b)`") == {"f", "b", "Right"}
    assert ranking.quoted_identifiers("Returns {@code n} copies of {@link Item}") == {"n", "Item"}
    assert ranking.quoted_identifiers("Multiply **x** with a **SizeHint** (see ``len``)") == {"x", "SizeHint", "len"}
    assert ranking.quoted_identifiers("parse a version string") == frozenset()
    assert ranking.quoted_identifiers("`" * 9 + "**") == frozenset()  # only punctuation


def test_a_signature_that_declares_the_quoted_identifiers_comes_first() -> None:
    query = "Apply the function `f` on the value `b` in `Right(b)`"
    quoted = ranking.quoted_identifiers(query)
    mapper = _C(language="rust", kind="method", symbol="EitherOrBoth.map_second",
                body="pub fn map_second<F, M>(self, f: F) -> EitherOrBoth<A, M>\nwhere\n    F: FnOnce(B) -> M,\n{")
    getter = _C(language="rust", kind="method", symbol="EitherOrBoth.second",
                body="pub fn second(self) -> Option<B> {\n    match self {")
    assert ranking.features(mapper, set(), set(), quoted=quoted)[_QUOTED] == pytest.approx(1 / 3)  # `f`, case kept
    assert ranking.features(getter, set(), set(), quoted=quoted)[_QUOTED] == 0.0
    ranking.score([getter, mapper], query)
    assert mapper.score > getter.score
    # Only the signature counts (not the body), and never the candidate's own name, which
    # the `name` feature reads: a class head quoting its name gains nothing here.
    late = _C(body="def apply(values):\n    f = b = None\n    return Right(b)")
    assert ranking.features(late, set(), set(), quoted=ranking.quoted_identifiers(query))[_QUOTED] == 0.0
    head = _C(kind="class", symbol="Pattern", body="class Pattern(Base):\n    pass")
    assert ranking.features(head, set(), set(), quoted=frozenset({"Pattern"}))[_QUOTED] == 0.0
    python = _C(body="def enumerate(iterable, start=0):\n    return zip(count(start), iterable)")
    assert ranking.features(python, set(), set(), quoted=frozenset({"iterable", "start"}))[_QUOTED] == 1.0


def _late(query: str, symbol: str) -> float:
    """The `late_name` feature of a function called `symbol` for `query`."""
    return _feature("late_name", symbol, query)


@pytest.mark.parametrize(("query", "symbol", "late"), [
    # the name is said further on than the query's first word: the thing acted on
    ("Branch out the values into a new window", "window", 1.0),
    ("Subscribes to the next one", "Observable.subscribe", 0.0),  # "subscribes" opens the query
    ("Put back a single value", "PutBack.put_back", 0.0),
    ("Put back a single value", "single", 1.0),
    ("Returns the maximum of the values", "maximum", 0.0),  # "returns" is a stop word
    # the first word written as the name whole, or as its owner's name
    ("ServeHTTP dispatches the handler", "Router.ServeHTTP", 0.0),
    ("read_secret keyring", "read_secret", 0.0),
    ("Workspace index", "Workspace.index", 0.0),
    ("EitherOrBoth right", "EitherOrBoth<A, B>.right", 0.0),
    # not every word said: `name` is partial, nothing to trim
    ("Branch out the values into a window", "window_when", 0.0),
    ("", "window", 0.0),
    ("?!", "window", 0.0),
])
def test_a_name_said_only_after_the_first_word_is_trimmed(query: str, symbol: str, late: float) -> None:
    assert _late(query, symbol) == late


def test_the_name_the_query_opens_with_beats_one_it_says_later() -> None:
    query = "Merge the values from all observables into a single observable"
    merge = _C(language="typescript", symbol="merge", path="src/merge.ts")
    single = _C(language="typescript", symbol="single", path="src/single.ts")
    ranking.score([single, merge], query)
    assert merge.score > single.score
    assert ranking.lead_word("`read_secret`: the keyring entry") == ("read_secret", "readsecret")
    assert ranking.lead_word("the of and") is None


NESTED = """def retry(times):
    def decorate(func):
        def wrapper(*args):
            return func(*args)
        return wrapper
    return decorate


class Client:
    def send(self, payload):
        return payload
"""


def test_the_chunker_names_nested_functions_so_the_ranking_can_tell(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "retry.py").write_text(NESTED)
    with Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=BagOfWords()) as w:
        w.index()
        pool = {c.symbol: c for c in query_mod.candidates(w.store, w.embedder, "retry wrapper send payload")}
    assert {s for s, c in pool.items() if ranking.is_nested(c)} == {"retry.decorate", "retry.decorate.wrapper"}
    assert not ranking.is_nested(pool["Client.send"]) and not ranking.is_nested(pool["retry"])


@pytest.mark.parametrize(("query", "thing"), [
    ("A pair of comparison operator and partial version", True),
    ("An iterator adaptor that merges two sorted iterators", True),
    ("The rules defining how the zone offset varies", True),
    ("**SemVer version** requirement", False),
    ("Route stores information to match a request", True),
    ("NullUUID represents a UUID that may be null", True),
    ("Returns the value of the flag", False),
    ("Create a new parser", False),
    ("parse a version string", False),
    ("where are settings loaded", False),
    ("", False),
])
def test_queries_that_describe_a_thing(query: str, thing: bool) -> None:
    assert ranking.describes_thing(query) is thing


def test_a_query_that_describes_a_thing_does_not_demote_type_heads() -> None:
    # How a type's documentation reads ("An iterator that ..."): the struct, trait, class
    # or enum is the answer, so with equal evidence it ties with a function...
    about = "An iterator that merges two sorted inputs"
    func = _score(_C(kind="function"), about)
    for kind in ("class", "struct", "interface", "type", "trait", "enum"):
        assert _score(_C(kind=kind), about) == pytest.approx(func), kind
    # ...except an impl block and a Rust associated type (`type Item = T;` in an impl):
    # neither is ever the type a description means.
    assert _score(_C(kind="impl"), about) < func
    assert _score(_C(kind="type", language="rust", symbol="MergeBy<I>.Item"), about) < func
    # (A name the query does not say, so the evidence stays equal: with stemming "MergeBy"
    # would match "merges".)
    assert _score(_C(kind="type", language="rust", symbol="Interleave"), about) == pytest.approx(func)
    # The same heads are demoted again for a query that asks for an action.
    assert _score(_C(kind="struct"), "merge two sorted inputs") < _score(_C(kind="function"), "merge two sorted inputs")


def test_vector_and_lexical_modes_score_their_own_evidence() -> None:
    lo, hi = _C(cosine=0.2), _C(cosine=0.7)
    ranking.score([lo, hi], "q", "vector")
    assert 0.0 <= lo.score < hi.score <= 1.0
    lo, hi = _C(bm25=0.1), _C(bm25=2.0)
    ranking.score([lo, hi], "q", "lexical")
    assert 0.0 <= lo.score < hi.score <= 1.0


def test_unknown_mode_is_refused(ws: Workspace) -> None:
    with pytest.raises(InvalidQuery):
        ws.search("x", mode="fuzzy")


def test_workspace_root_has_no_state(ws: Workspace) -> None:
    assert not any(p.name.endswith(".sqlite") for p in Path(ws.root).rglob("*"))


def test_common_terms_are_left_out_of_large_lexical_queries_only() -> None:
    from indexer.search.query import _selective

    small = {"get": 400, "user": 30, "name": 10}
    assert _selective(1000, small) == ["get", "user", "name"]  # a small index keeps every term
    big = {"get": 40_000, "user": 3_000, "name": 900}
    assert _selective(100_000, big) == ["user", "name"]  # 40% of chunks: no signal, all cost
    assert _selective(100_000, {"get": 40_000, "set": 50_000}) == ["get"]  # never nothing


def test_long_hybrid_queries_keep_their_rarest_terms_in_a_large_index() -> None:
    from indexer.search.query import _POSTINGS_BUDGET, _selective

    df = {"parse": 1_900, "version": 1_500, "string": 1_800, "semver": 40, "prerelease": 12}
    assert sum(df.values()) > _POSTINGS_BUDGET
    kept = _selective(100_000, df)
    assert kept == [w for w in df if w in kept]  # query order
    assert {"semver", "prerelease"} <= set(kept) and sum(df[w] for w in kept) <= _POSTINGS_BUDGET
    assert _selective(100_000, df, budget=False) == list(df)  # lexical mode: every selective term
    assert _selective(10_000, df) == list(df)  # a small index: every term
    assert _selective(100_000, {"a": 1_999, "b": 1_998, "c": 1_997}) != []  # never nothing


def test_path_and_language_filters_scan_their_selection_exactly(ws: Workspace) -> None:
    from indexer.chunking import lexical
    from indexer.search import query

    store = ws.store
    allowed = query.matching_paths(store, ["src/**", "web/**"])
    assert allowed and query.matching_paths(store, ["src/**", "web/**"]) is allowed  # cached
    qvec = np.asarray(ws.embedder.embed_query(lexical.embed_text("parse config text into settings")), np.float32)
    rows = store.sql.conn.execute(
        "SELECT c.id, c.path, c.language, v.vector FROM chunks c JOIN vectors v ON v.text_hash = c.text_hash"
    ).fetchall()
    sim = {cid: float(np.frombuffer(b, np.float32) @ qvec / (np.linalg.norm(np.frombuffer(b, np.float32)) or 1.0))
           for cid, _, _, b in rows}
    inside = sorted((sim[cid] for cid, path, _, _ in rows if path in allowed), reverse=True)
    got = query._vector(store, qvec, 3, [], allowed)
    assert [round(sim[c], 5) for c in got] == [round(s, 5) for s in inside[:3]]  # the true nearest, in order
    ts = query._vector(store, qvec, 50, ["typescript"], allowed)
    by_id = {cid: (path, lang) for cid, path, lang, _ in rows}
    assert ts and all(by_id[c][1] == "typescript" and by_id[c][0] in allowed for c in ts)
    # A language filter whose wide query found too few falls back to the same exact scan.
    python = sorted((sim[cid] for cid, _, lang, _ in rows if lang == "python"), reverse=True)
    scanned = query._scan_languages(store, qvec, 2, ["python"])
    assert scanned and [round(sim[c], 5) for c in scanned] == [round(s, 5) for s in python[:2]]
    assert all(by_id[c][1] == "python" for c in scanned)


def test_copies_of_a_file_tie_and_come_back_in_path_order(tmp_path: Path) -> None:
    # The model is not given the path, so copies of a file get one vector and equal scores;
    # ties go by path and line, whatever order the stores hold them in.
    root = tmp_path / "ws"
    for d in ("c", "a", "d", "b"):
        (root / d).mkdir(parents=True)
        (root / d / "parser.py").write_text(IMPL)
    model = Recording()
    with Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=model) as w:
        w.index()
        hits = w.search("parse config text into settings", limit=4)
    assert [h.path for h in hits] == ["a/parser.py", "b/parser.py", "c/parser.py", "d/parser.py"]
    assert len({h.score for h in hits}) == 1
    # The four copies give the model one input, embedded once.
    assert len(model.given) == 1 and all("parse config" in t and "parser.py" not in t for t in model.given)


def test_tests_and_glue_are_embedded_briefly_and_code_and_prose_in_full(tmp_path: Path) -> None:
    body = "".join(f"    step_{i} = compute_step({i}, settings)\n" for i in range(12))
    imports = "".join(f"from steps.part_{i} import step_{i}\n" for i in range(12))
    prose = "".join(f"Step {i} computes part {i} of the settings.\n" for i in range(12))
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "src" / "steps.py").write_text(f"{imports}\n\ndef run_steps(settings):\n{body}    return settings\n")
    (root / "tests" / "test_steps.py").write_text(f"def test_run_steps(settings):\n{body}    assert settings\n")
    (root / "STEPS.md").write_text(f"# Steps\n\n{prose}")
    model = Recording()
    with Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=model) as w:
        summary = w.index()
        assert w.search("tests for run steps", limit=1)[0].path == "tests/test_steps.py"  # still found when asked
        assert w.search("import step 11 from part 11", mode="lexical", limit=1)[0].start_line == 1  # glue: all read
    (code,) = [t for t in model.given if t.startswith("def run steps")]
    (test,) = [t for t in model.given if t.startswith("def test run steps")]
    (glue,) = [t for t in model.given if t.startswith("from steps.part 0")]
    (doc,) = [t for t in model.given if "Step 0" in t]
    assert "step 11" in code and code.endswith("return settings")
    assert "step 11" not in test and len(test) <= 120
    assert "step 11" not in glue and len(glue) <= 120
    assert "Step 11" in doc  # prose is not glue: embedded whole
    assert summary.tokens_embedded == sum(min(model.count_tokens(t), 256) for t in model.given)


def _cand(path: str, start: int, end: int, symbol: str | None, score: float) -> query_mod.Candidate:
    body = "\n".join(f"line {n}" for n in range(start, end + 1))
    return query_mod.Candidate(f"{path}:{start}", start, path, start, end, symbol, "markdown", None, body,
                               score=score)


def test_pieces_of_one_definition_merge_into_one_result_at_the_best_place() -> None:
    ranked = [_cand("a.md", 11, 20, "Setup", 0.9), _cand("b.py", 1, 5, "f", 0.5),
              _cand("a.md", 1, 12, "Setup", 0.4), _cand("a.md", 21, 30, "Other", 0.3),
              _cand("a.md", 40, 45, "Setup", 0.2)]
    merged = query_mod.merge_pieces(ranked)
    assert [(c.path, c.start_line, c.end_line, c.symbol, c.score) for c in merged] == [
        ("a.md", 1, 20, "Setup", 0.9), ("b.py", 1, 5, "f", 0.5), ("a.md", 21, 30, "Other", 0.3),
        ("a.md", 40, 45, "Setup", 0.2)]  # another symbol, or a gap, stays apart
    assert merged[0].body.split("\n") == [f"line {n}" for n in range(1, 21)]  # each line once


def test_a_clear_lead_reads_as_likely_and_order_never_changes() -> None:
    zs = [2.0, -3.0, -3.5, -6.0]
    shown = []
    for z, m in zip(zs, ranking.margins(zs), strict=True):
        shown.append(ranking._sigmoid(ranking.DISPLAY[0] + ranking.DISPLAY[1] * z + ranking.DISPLAY[2] * m))
    assert shown == sorted(shown, reverse=True)
    assert shown[0] > 0.9 > 0.05 > shown[1]  # a lead of 5 reads as likely, the rest as unlikely
    close = [ranking._sigmoid(ranking.DISPLAY[0] + ranking.DISPLAY[1] * z + ranking.DISPLAY[2] * m)
             for z, m in zip([-1.0, -1.1], ranking.margins([-1.0, -1.1]), strict=True)]
    assert 0.2 < close[1] < close[0] < 0.6  # two close candidates: neither is likely
    assert ranking.margins([]) == [] and ranking.margins([1.0]) == [ranking.MARGIN_CAP]


def test_a_name_matches_its_word_in_another_form() -> None:
    # "scores" and "score", "parsing" and "parse": the name feature reads stems of both.
    for query, name in (("combine the scores", "score"), ("parsing a header", "parse"),
                        ("matches a glob", "match")):
        assert _name_share(name, query) == 1.0, (query, name)


def _name_share(symbol: str, query: str) -> float:
    """The `name` feature of a function called `symbol` for `query`."""
    return _feature("name", symbol, query)


def _feature(feature: str, symbol: str, query: str) -> float:
    """One feature of a function called `symbol` for `query`."""
    qwords = set(ranking._stem_all(query_words(query)))
    f = ranking.features(_C(symbol=symbol), qwords, set(), lead=ranking.lead_word(query))
    return f[ranking.FEATURES.index(feature)]


@pytest.mark.parametrize(("query", "symbol", "share"), [
    ("Creates a new parser", "Parser.new", 1.0),
    ("Whether the set is empty", "IndexSet.is_empty", 1.0),
    ("Removes and yields the last element", "Deque.pop_back", 0.5),
    ("Retrieves the error index", "ParsePosition.getErrorIndex", 1.0),
    ("Converts the value into a string", "Value.to_string", 1.0),
    ("Number of elements in the map", "IndexMap.len", 1.0),
])
def test_conventional_name_words_are_said_by_the_words_a_doc_comment_uses(query: str, symbol: str,
                                                                            share: float) -> None:
    assert _name_share(symbol, query) == share


@pytest.mark.parametrize(("query", "symbol"), [
    ("empty the set", "IndexSet.is_empty"),  # no word of the "is" group
    ("sets the error index", "ParsePosition.getErrorIndex"),  # "sets" says no getter
    ("parse a header", "Header.new"),
])
def test_a_conventional_word_needs_its_own_kind_of_query_word(query: str, symbol: str) -> None:
    assert _name_share(symbol, query) < 1.0
