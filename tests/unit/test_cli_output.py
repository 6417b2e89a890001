"""Search results in the terminal: `path:line` a terminal can open, and a short, dedented
preview of each hit's code (its first line, then the lines that match the query), the same
text with or without colour; `--json` keeps its shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.core.types import SearchHit
from server import cli_output
from server.cli_output import clip, display_path, preview_lines, print_search

BODY = '''    def parse_duration(text: str) -> float:
        """Turn '1h30m' into seconds."""

        total = 0.0
        for amount, unit in PATTERN.findall(text):
            total += float(amount) * UNITS[unit]
        if not total:
            raise ValueError(f"not a duration: {text!r}")
        return total'''


def test_the_first_line_and_the_lines_that_match_the_query_dedented() -> None:
    got = preview_lines(BODY, 40, "raise ValueError when not a duration")
    assert got[0] == (40, "def parse_duration(text: str) -> float:")
    assert [n for n, _ in got] == [40, 46, 47]  # in file order; blank lines never count
    assert got[1:] == [(46, "    if not total:"), (47, "        raise ValueError(f\"not a duration: {text!r}\")")]


def test_without_matching_words_the_lines_that_follow_the_first() -> None:
    assert [n for n, _ in preview_lines(BODY, 1, "zzz")] == [1, 2, 4]
    assert [n for n, _ in preview_lines(BODY, 1, None, limit=2)] == [1, 2]
    assert preview_lines("\n\n", 1, "q") == []
    assert preview_lines("\tx = 1\n\ty = 2", 5, None) == [(5, "x = 1"), (6, "y = 2")]


def test_paths_are_relative_to_the_current_folder_or_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    monkeypatch.chdir(root)
    assert display_path("src/a.py", root) == "src/a.py"
    monkeypatch.chdir(tmp_path)
    assert display_path("src/a.py", root) == "ws/src/a.py"
    monkeypatch.chdir(root / "src")
    assert display_path("src/a.py", root) == "a.py"
    assert display_path("b.py", root) == str(root / "b.py")  # not under here: absolute
    assert display_path("src/a.py", None) == "src/a.py"


def test_clip() -> None:
    assert clip("x" * 30, 20) == "x" * 19 + "…"
    assert clip("short", 20) == "short"
    assert clip("y" * 30, 20, "...") == "y" * 17 + "..."


HITS = [SearchHit(path="src/dur.py", start_line=40, end_line=48, score=0.87654, symbol="parse_duration",
                  language="python", kind="function", chunk_id="c1", preview=BODY),
        SearchHit(path="src/b.py", start_line=3, end_line=3, score=0.5, symbol=None, language="python",
                  kind=None, chunk_id="c2", preview="x = 1")]


def test_plain_text_when_not_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "60")
    print_search("a duration", HITS, as_json=False, root=tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "0.877  src/dur.py:40  parse_duration  (40-48)"
    assert out[1] == "    40 │ def parse_duration(text: str) -> float:"
    assert out[3].startswith("    47 │         raise ValueError(") and len(out[3]) == 60 and out[3].endswith("…")
    assert out[4:] == ["0.500  src/b.py:3  (3-3)", "    3 │ x = 1"]
    assert "\x1b[" not in "".join(out)


def test_colour_only_on_a_terminal_that_takes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_output, "_colour", lambda: True)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich, writing to the captured stdout
    print_search("a duration", HITS[1:], as_json=False, root=tmp_path)
    styled = capsys.readouterr().out
    assert "\x1b[" in styled
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            assert cli_output._colour() is False


def test_json_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    print_search("q", HITS, as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert [sorted(h) for h in data["results"]] == [["end_line", "language", "path", "score", "start_line", "symbol"]] * 2
