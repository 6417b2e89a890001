"""tree-sitter chunking: symbols per language, budget invariant, coverage, odd input.

The token counter is a fake (words and punctuation + 2 special tokens): these tests check
chunk boundaries, not the model's tokenizer (tests/integration covers that).
"""

from __future__ import annotations

import re

import pytest

from indexer.chunking import SUPPORTED_LANGUAGES, chunk_file, language_for_path
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


def test_chunk_body_is_exact_source_and_header_names_the_path() -> None:
    text = (POLYGLOT / "web/cart.js").read_text()
    lines = text.split("\n")
    for c in chunk_file("web/cart.js", text, count_tokens=count, max_tokens=256).chunks:
        assert c.body == "\n".join(lines[c.start_line - 1 : c.end_line])
        assert c.text.startswith("web/cart.js\n") and c.text.endswith(c.body)


def test_methods_of_a_class_carry_the_class_in_their_header() -> None:
    cf = chunk_file("s.ts", (POLYGLOT / "web/debounce.ts").read_text(), count_tokens=count, max_tokens=256)
    chunk = next(c for c in cf.chunks if c.symbol == "SearchBox.submit")
    assert chunk.text.split("\n")[1].startswith("export class SearchBox")


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
    assert all(count(c.text) <= budget and c.tokens == count(c.text) for c in cf.chunks)
    covered = {n for c in cf.chunks for n in range(c.start_line, c.end_line + 1)}
    lines = BIG.split("\n")
    assert [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered] == []


def test_split_symbol_parts_name_their_signature() -> None:
    parts = [c for c in chunk_file("big.py", BIG, count_tokens=count, max_tokens=64).chunks if c.symbol == "big"]
    assert len(parts) > 3
    assert all(p.text.split("\n")[1] == "... def big(x):" for p in parts[1:])


def test_tiny_members_merge() -> None:
    cf = chunk_file("big.py", BIG, count_tokens=count, max_tokens=256)
    k_chunks = [c for c in cf.chunks if c.symbol and c.symbol.startswith("K")]
    assert len(k_chunks) < 100 / 3  # 100 two-line methods do not make 100 chunks


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
