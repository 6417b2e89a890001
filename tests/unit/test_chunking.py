"""tree-sitter chunking: symbols per language, one unit per symbol, ranges, budget, odd input.

The token counter is a fake (words and punctuation + 2 special tokens): these tests check
chunk boundaries, not the model's tokenizer (tests/integration covers that).
"""

from __future__ import annotations

import re

import pytest

from indexer.chunking import SUPPORTED_LANGUAGES, chunk_file, language_for_path
from indexer.chunking.treesitter import TEXT_LINES
from indexer.search import ranking
from tests.conftest import FIXTURES


def count(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text)) + 2


POLYGLOT = FIXTURES / "polyglot"
EXPECTED = {
    "src/config/loader.py": {("ServerConfig", "class", None), ("load", "method", "ConfigLoader"),
                             ("parse_duration", "function", None)},
    "web/cart.js": {("addItemToCart", "function", None), ("save", "method", "CartStorage")},
    "web/debounce.ts": {("SearchQuery", "interface", None), ("submit", "method", "SearchBox")},
    "web/Avatar.tsx": {("initialsOf", "function", None), ("Avatar", "function", None)},
    "services/billing/invoice.go": {("Invoice", "type", None), ("Total", "method", "Invoice")},
    "native/ringbuf.rs": {("RingBuffer", "struct", None), ("push", "method", "RingBuffer<T>")},
    "services/billing/RateLimiter.java": {("tryAcquire", "method", "RateLimiter")},
    "native/hash.c": {("fnv1a_hash", "function", None), ("clamp_int", "function", None)},
    "native/matrix.cpp": {("Matrix", "class", "linalg"), ("transpose", "method", "linalg.Matrix")},
    "services/billing/Currency.cs": {("Convert", "method", "Billing.Currency")},
    "scripts/slugify.rb": {("slugify", "method", "Blog.Slugger")},
    "scripts/validate_email.php": {("is_valid_email", "function", None), ("send", "method", "Mailer")},
    "scripts/backup.sh": {("compress_directory", "function", None)},
}


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_symbols_per_language(path: str) -> None:
    cf = chunk_file(path, (POLYGLOT / path).read_text(), count_tokens=count, max_tokens=256)
    got = {(s.name, s.kind, s.container) for s in cf.symbols}
    assert EXPECTED[path] <= got, got
    assert cf.language == language_for_path(path) != "text"


def test_every_language_has_a_grammar_offline() -> None:
    assert {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "csharp", "ruby",
            "php", "bash"} <= set(SUPPORTED_LANGUAGES)


def test_symbol_lines_and_columns() -> None:
    cf = chunk_file("loader.py", (POLYGLOT / "src/config/loader.py").read_text(), count_tokens=count, max_tokens=256)
    sym = next(s for s in cf.symbols if s.name == "parse_duration")
    lines = (POLYGLOT / "src/config/loader.py").read_text().splitlines()
    assert lines[sym.start_line - 1][sym.start_col:].startswith("parse_duration")
    assert lines[sym.end_line - 1].strip() == "return total"


@pytest.mark.parametrize("path", ["web/cart.js", "src/config/loader.py", "docs/architecture.md"])
def test_chunk_text_starts_with_its_path_which_the_model_does_not_see(path: str) -> None:
    # The path line keeps text hashes unique per file and feeds the lexical index; the
    # embedder gets the rest (embedding_input), as measured in docs/benchmarks.md.
    from indexer.chunking import embedding_input

    text = (POLYGLOT / path).read_text()
    lines = text.split("\n")
    chunks = chunk_file(path, text, count_tokens=count, max_tokens=256).chunks
    assert chunks
    for c in chunks:
        assert c.body == "\n".join(lines[c.start_line - 1 : c.end_line])
        assert c.text.startswith(path + "\n")
        assert embedding_input(c.text) == c.text[len(path) + 1 :] and path not in embedding_input(c.text)


def test_methods_of_a_class_carry_the_class_in_their_header() -> None:
    cf = chunk_file("s.ts", (POLYGLOT / "web/debounce.ts").read_text(), count_tokens=count, max_tokens=256)
    chunk = next(c for c in cf.chunks if c.symbol == "SearchBox.submit")
    # Identifiers are written as words for the embedder: SearchBox -> "search box".
    assert chunk.text.split("\n")[1].startswith("export class search box")


def test_identifiers_are_words_in_the_text_but_not_in_the_body() -> None:
    src = "def parseHttpDate(raw_value):\n    return HTTPServer.parse(raw_value)\n"
    (c,) = chunk_file("a.py", src, count_tokens=count, max_tokens=256).chunks
    assert "parse http date" in c.text and "raw value" in c.text and "http server" in c.text
    assert c.body == src.rstrip("\n")


BIG = (
    "import os\n\n"
    + "def big(x):\n"
    + "".join(f"    y{i} = x + {i} * (x - {i}) // 3\n    if y{i} > 10:\n        x += y{i}\n" for i in range(300))
    + "\nclass K:\n    '''Doc.'''\n"
    + "".join(f"    def m{i}(self):\n        return {i}\n" for i in range(100))
)


@pytest.mark.parametrize("budget", [32, 64, 256])
def test_budget_invariant_and_full_coverage(budget: int) -> None:
    cf = chunk_file("big.py", BIG, count_tokens=count, max_tokens=budget)
    # `tokens` is what the model reads: it truncates a longer text at its input cap.
    assert all(c.tokens == min(count(c.text), budget) for c in cf.chunks)
    covered = {n for c in cf.chunks for n in range(c.start_line, c.end_line + 1)}
    lines = BIG.split("\n")
    assert [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered] == []


def test_a_long_function_is_one_unit_whose_text_holds_its_head() -> None:
    (big,) = [c for c in chunk_file("big.py", BIG, count_tokens=count, max_tokens=64).chunks if c.symbol == "big"]
    assert (big.start_line, big.end_line) == (3, 903)
    assert big.text.count("\n") <= TEXT_LINES + 1 and "y 0 = x" in big.text.replace("y0", "y 0")


def test_markdown_sections() -> None:
    cf = chunk_file("docs/architecture.md", (POLYGLOT / "docs/architecture.md").read_text(), count_tokens=count,
                    max_tokens=256)
    assert [c.symbol for c in cf.chunks] == ["Architecture", "Configuration", "Billing", "Storefront"]
    assert cf.chunks[1].text.split("\n")[1] == "Architecture > Configuration"
    assert {(s.name, s.container) for s in cf.symbols} >= {("Billing", "Architecture")}


def test_text_fallback_windows() -> None:
    text = "\n".join(f"key{i}: value {i}" for i in range(300))
    cf = chunk_file("conf.yaml", text, count_tokens=count, max_tokens=64)
    assert cf.language == "yaml" and len(cf.chunks) > 5 and cf.symbols == ()
    assert all(c.tokens <= 64 for c in cf.chunks)


@pytest.mark.parametrize("text", ["", "\n\n\n", "# only a comment\n", "def (:\n  broken ((\n", "x = 1\r\ny = 2\r\n",
                                  "\ufeffdef f():\n    pass\n", "\x00\x01\x02", "x = '" + "a" * 200_000 + "'\n",
                                  "\tdef\ttabs():\n\t\treturn 'é✓'\n"])
def test_odd_input_never_raises(text: str) -> None:
    cf = chunk_file("odd.py", text, count_tokens=count, max_tokens=64)
    assert all(c.tokens <= 64 for c in cf.chunks)


def _agree(path: str, text: str) -> None:
    """Every chunk naming a symbol starts on that symbol's own first line."""
    cf = chunk_file(path, text, count_tokens=count, max_tokens=256)
    starts = {(s.name, s.start_line) for s in cf.symbols}
    for c in cf.chunks:
        if c.symbol is not None:
            assert (c.symbol.split(".")[-1], c.start_line) in starts, (c.symbol, c.start_line, c.end_line)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_chunk_ranges_start_at_their_symbol(path: str) -> None:
    _agree(path, (POLYGLOT / path).read_text())


def test_small_first_go_function_does_not_swallow_the_file_head() -> None:
    # fixtures/lsp_ws/root_b/geometry.go: package clause, import and a constant above a
    # small function; the function's hit must not start at line 1 (issue 6).
    path = FIXTURES / "lsp_ws" / "root_b" / "geometry.go"
    text = path.read_text()
    cf = chunk_file("geometry.go", text, count_tokens=count, max_tokens=256)
    chunk = next(c for c in cf.chunks if c.symbol == "HaversineDistance")
    assert text.split("\n")[chunk.start_line - 1].startswith("func HaversineDistance(")
    assert "great circle distance" in chunk.text.replace("great-circle", "great circle")  # the doc comment is kept
    _agree("geometry.go", text)


def test_decorators_and_doc_comments_are_text_not_range() -> None:
    src = "import functools\n\n# Cache results.\n@functools.cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
    cf = chunk_file("f.py", src, count_tokens=count, max_tokens=256)
    (fib,) = [c for c in cf.chunks if c.symbol == "fib"]
    assert fib.start_line == 5 and "@functools.cache" in fib.text and "Cache results." in fib.text
    assert all(c.symbol is None for c in cf.chunks if c.start_line == 1)


def test_java_annotation_types_are_symbols() -> None:
    src = "package a;\n\npublic @interface Audited {\n    String value() default \"\";\n    int level() default 1;\n}\n"
    cf = chunk_file("Audited.java", src, count_tokens=count, max_tokens=256)
    assert ("Audited", "interface") in {(s.name, s.kind) for s in cf.symbols}
    assert any(c.symbol == "Audited" and c.start_line == 3 for c in cf.chunks)


def test_rust_trait_lists_its_methods_and_struct_is_one_unit() -> None:
    src = (
        "/// A shape.\npub trait Shape {\n    /// Area of it.\n    fn area(&self) -> f64;\n"
        "    fn name(&self) -> String { String::from(\"shape\") }\n}\n\n"
        "pub struct Circle {\n    pub radius: f64,\n    pub centre: (f64, f64),\n}\n"
    )
    cf = chunk_file("shapes.rs", src, count_tokens=count, max_tokens=256)
    assert {("area", "method", "Shape"), ("name", "method", "Shape")} <= {(s.name, s.kind, s.container) for s in cf.symbols}
    head = next(c for c in cf.chunks if c.symbol == "Shape")
    assert head.start_line == 2 and "fn area" in head.text  # the trait's head lists its members
    circle = next(c for c in cf.chunks if c.symbol == "Circle")
    assert (circle.start_line, circle.end_line) == (8, 11)


def test_functions_are_fewer_units_than_before() -> None:
    # One unit per function/method (tiny ones merged), no pieces: the polyglot fixture's
    # loader has fewer chunks than symbols.
    text = (POLYGLOT / "src/config/loader.py").read_text()
    cf = chunk_file("src/config/loader.py", text, count_tokens=count, max_tokens=64)
    named = [c for c in cf.chunks if c.symbol]
    assert len({c.symbol for c in named}) == len(named)  # never two pieces of one symbol


def test_typescript_overload_signatures_fold_into_their_implementation() -> None:
    src = (
        "export function pipe(): number;\n"
        "export function pipe<T>(a: T): T;\n"
        "export function pipe(...fns: unknown[]): unknown {\n"
        "  const first = fns[0];\n"
        "  return fns.reduce((acc, fn) => (fn as (x: unknown) => unknown)(acc), first);\n"
        "}\n"
        "\n"
        "export declare function external(x: string): void;\n"
    )
    cf = chunk_file("pipe.ts", src, count_tokens=count, max_tokens=256)
    # One `pipe` symbol and unit, the implementation; overloads are not competitors.
    assert [s.start_line for s in cf.symbols if s.name == "pipe"] == [3]
    assert [c.start_line for c in cf.chunks if c.symbol == "pipe"] == [3]
    # A signature with no body in its scope (a declaration) is still a symbol.
    assert any(s.name == "external" for s in cf.symbols)


def test_python_overload_stubs_fold_into_their_implementation() -> None:
    src = (
        "import typing\n"
        "from typing import overload\n"
        "\n"
        "@overload\n"
        "def load(path: str) -> str: ...\n"
        "@typing.overload\n"
        "def load(path: bytes) -> bytes: ...\n"
        "def load(path):\n"
        "    with open(path) as fh:\n"
        "        return fh.read()\n"
    )
    cf = chunk_file("load.py", src, count_tokens=count, max_tokens=256)
    assert [s.start_line for s in cf.symbols if s.name == "load"] == [8]
    assert [c.start_line for c in cf.chunks if c.symbol == "load"] == [8]


def test_a_brief_model_input_keeps_the_container_and_the_symbol_line() -> None:
    # Tests get a brief input (indexer.pipeline.model_input): a long decorator or comment
    # above a test must not push its own name out of it.
    from indexer.chunking import BRIEF_CHARS, embedding_input

    text = (
        "import pytest\n\n\nclass TestParser:\n"
        "    # Several inputs, each with the value it must parse to, covering the edge cases.\n"
        '    @pytest.mark.parametrize("text, expected", [("1s", 1), ("2m", 120), ("3h", 10800), ("bad", None)])\n'
        "    def test_parse_duration_handles_units(self, text, expected):\n"
        "        value = parse_duration(text)\n"
        "        assert value == expected, f'{text!r} parsed to {value!r}, wanted {expected!r}'\n"
        "        assert isinstance(value, int | None)\n"
    )
    lines = text.split("\n")
    (method,) = [c for c in chunk_file("tests/test_x.py", text, count_tokens=count, max_tokens=256).chunks
                 if c.symbol == "TestParser.test_parse_duration_handles_units"]
    full = embedding_input(method.text)
    brief = embedding_input(method.text, brief_from=lines[method.start_line - 1])
    assert full.startswith("class test parser:") and "parametrize" in full and "isinstance" in full
    assert brief.split("\n")[:2] == ["class test parser:", "    def test parse duration handles units(self, text, expected):"]
    assert "parametrize" not in brief and "isinstance" not in brief and len(brief) <= BRIEF_CHARS
    short = chunk_file("tests/test_y.py", "def test_one():\n    assert one() == 1\n", count_tokens=count, max_tokens=256)
    (c,) = short.chunks
    assert embedding_input(c.text, brief_from="def test_one():") == embedding_input(c.text)  # short: whole


def test_tiny_members_are_units_of_their_own() -> None:
    cf = chunk_file("big.py", BIG, count_tokens=count, max_tokens=256)
    members = {c.symbol: (c.start_line, c.end_line) for c in cf.chunks if c.symbol and c.symbol.startswith("K.")}
    assert len(members) == 100  # a two-line method is the result for a question about it
    assert members["K.m4"] == (915, 916)


_FUNCTION_VALUES_TS = """\
export class Ky {
\tprotected _count = 0;

\t/** Delay before the next try. */
\tprivate _retryDelay = async (error: Error) => {
\t\tthis._count++;
\t\treturn this._count * 2;
\t};
}

const helpers = {
\tdeepMerge: <T>(...sources: T[]): T => {
\t\tlet value: any = {};
\t\treturn value;
\t},
};

export default function (options: Options) {
\treturn options.x + 1;
}

module.exports.parseThing = function (input) {
\treturn input.trim();
};

Foo.prototype.bar = (x) => x + 1;

const handler = useCallback(() => { go(); }, []);
"""


def test_function_values_are_definitions_in_typescript_and_javascript() -> None:
    js = re.sub(r"<T>|: [A-Za-z<>\[\]]+", "", _FUNCTION_VALUES_TS).replace("private ", "").replace("protected ", "")
    for path, text in (("a.ts", _FUNCTION_VALUES_TS), ("a.js", js)):
        cf = chunk_file(path, text, count_tokens=count, max_tokens=128)
        units = {c.symbol: (c.start_line, c.end_line, c.kind) for c in cf.chunks if c.symbol}
        assert units["Ky._retryDelay"] == (5, 8, "method"), (path, units)
        assert units["deepMerge"][:2] == (12, 15), (path, units)
        assert units["default"][:2] == (18, 20), (path, units)
        assert units["parseThing"][:2] == (22, 24), (path, units)
        assert units["bar"][:2] == (26, 26), (path, units)
        assert not any("_count" in u for u in units) and "handler" not in units  # values, not functions
        retry = next(c for c in cf.chunks if c.symbol == "Ky._retryDelay")
        assert "delay before the next try" in retry.text.lower()  # its doc comment leads it


NESTED = '''def outer(x):
    def inner(y):
        """Callback."""
        return y + 1

    a = inner(x)
    return a
'''


def test_definitions_nested_in_a_function_are_units_too() -> None:
    cf = chunk_file("m.py", NESTED, count_tokens=count, max_tokens=128)
    units = {c.symbol: (c.start_line, c.end_line) for c in cf.chunks if c.symbol}
    assert units == {"outer": (1, 7), "outer.inner": (2, 4)}


def test_a_rust_tests_module_is_a_test_for_the_ranking() -> None:
    assert ranking.in_test_module("tests.it_works", "rust")
    assert not ranking.in_test_module("tests.it_works", "python")
    assert not ranking.in_test_module("Map.tests", "rust")


JAVA_ANONYMOUS = """class Ops {
    static Op make() {
        return new Op() {
            @Override
            public int apply(int x) {
                return x + 1;
            }
        };
    }
}
"""


def test_an_anonymous_class_in_a_java_method_stays_inside_it() -> None:
    cf = chunk_file("Ops.java", JAVA_ANONYMOUS, count_tokens=count, max_tokens=128)
    assert [c.symbol for c in cf.chunks if c.symbol] == ["Ops", "Ops.make"]
