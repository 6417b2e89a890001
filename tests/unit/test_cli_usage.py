"""Every usage error of the full CLI (bad option value, missing argument, unknown option or
command) is one `error: ...` line on stderr and exit status 1, as docs/cli.md promises; help
still prints and exits 0."""

from __future__ import annotations

import pytest

from server.cli import app
from server.cli_usage import run_app

USAGE_ERRORS = [
    (["search", "q", "-k", "0"], "'-k' / '--limit'"),
    (["search", "q", "-k", "many"], "'-k' / '--limit'"),
    (["search", "q", "--min-score", "2"], "--min-score"),
    (["search", "q", "--bogus"], "no such option: --bogus"),
    (["context", "q", "--budget", "1"], "--budget"),
    (["context", "q", "--line", "0"], "--line"),
    (["explain"], "missing argument"),
    (["frobnicate"], "no such command 'frobnicate'"),
    (["daemon", "stop", "--nope"], "no such option: --nope"),
    (["status", "extra"], "unexpected extra argument"),
]


@pytest.mark.parametrize(("argv", "says"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_error_line_and_status_1(argv: list[str], says: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = run_app(app, argv)
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and says.lower() in lines[0].lower(), lines[0]
    command = "forge-indexer " + " ".join(argv[:2] if argv[0] == "daemon" else argv[:1])
    if argv[0] != "frobnicate":
        assert f"(try `{command} --help`)" in lines[0]


def test_help_and_a_bare_command_still_print_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["search", "--help"]) == 0
    assert "Search the index" in capsys.readouterr().out
    assert run_app(app, []) == 0
    assert "Usage" in capsys.readouterr().out
