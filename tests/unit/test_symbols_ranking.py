"""Fuzzy workspace/symbol ranking over a real SQLite symbols table."""

from pathlib import Path

import pytest

from indexer.search.symbols import SymbolIndex
from indexer.store.index import SqliteState

NAMES = [
    "getUserName",
    "get_user_name",
    "UserNameGetter",
    "getUser",
    "gun",
    "parse_config",
    "ConfigParser",
    "parse",
    "Parser",
    "unrelated",
    "g_u_n_x",
]


@pytest.fixture
def index(tmp_path: Path) -> SymbolIndex:
    sql = SqliteState(tmp_path / "s.sqlite")
    with sql.transaction() as conn:
        conn.executemany(
            "INSERT INTO symbols(path, name, kind, container, start_line, end_line, start_col) VALUES(?,?,?,?,?,?,?)",
            [("a.py", n, "function", None, i + 1, i + 1, 0) for i, n in enumerate(NAMES)],
        )
    sql.set_meta("last_indexed", "1")
    return SymbolIndex(sql)


def names(index: SymbolIndex, q: str) -> list[str]:
    return [m.name for m in index.search(q, limit=20)]


def test_exact_beats_prefix_beats_subsequence(index: SymbolIndex) -> None:
    got = names(index, "parse")
    assert got[0] == "parse"
    assert got.index("parse_config") < got.index("ConfigParser")


def test_case_insensitive_exact_then_prefix(index: SymbolIndex) -> None:
    assert names(index, "parser")[0] == "Parser"


def test_word_starts_match_camel_and_snake(index: SymbolIndex) -> None:
    got = names(index, "get user")
    assert set(got[:3]) >= {"getUserName", "get_user_name"} or set(got[:3]) >= {
        "getUser",
        "getUserName",
    }
    assert "unrelated" not in got


def test_initials(index: SymbolIndex) -> None:
    got = names(index, "gun")
    assert got[0] == "gun"
    assert "getUserName" in got[:4]


def test_no_match(index: SymbolIndex) -> None:
    assert names(index, "zzz") == []
