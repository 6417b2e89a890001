"""The CLI's daemon client (`server.cli_fast`) reads an invocation exactly as the full CLI
would, or leaves it to the full CLI; and it reads the daemon-locating settings as
`load_settings` does, or leaves those to it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main

from indexer.core.settings import load_settings
from server import cli_fast
from server.cli import app
from server.cli_fast import ClientSettings, Defer, client_settings, parse

HANDLED = [
    ["search", "q"],
    ["search", "parse a duration", "-k", "5", "--lang", "python", "--lang", "go", "--path", "src/**",
     "--mode", "lexical", "--min-score", "0.5", "--json", "-w", "/tmp/x", "--state-dir", "/tmp/s"],
    ["search", "--limit", "200", "q", "--mode", "vector"],
    ["search", "q", "--min-score", "0", "--path", "a", "--path", "b"],
    ["context", "q"],
    ["context", "--file", "src/a.py", "--line", "3", "--budget", "16", "--json"],
    ["context", "q", "-w", "ws", "--budget", "5000"],
    ["status"],
    ["status", "-w", "/tmp/x", "--json", "--state-dir", "s"],
]

DEFERRED = [
    [], ["--help"], ["index", "."], ["model"], ["lsp"], ["daemon", "status"], ["doctor"],
    ["--log-format", "json", "search", "q"],
    ["search"], ["search", "--help"], ["search", "q", "-h"], ["search", "--queries", "f.txt"],
    ["search", "q", "--rev", "main"], ["search", "q", "-k", "0"], ["search", "q", "-k", "201"],
    ["search", "q", "-k", "x"], ["search", "q", "--mode", "fuzzy"], ["search", "q", "--min-score", "1.5"],
    ["search", "q", "--bogus"], ["search", "a", "b"], ["search", "--", "-q"], ["search", "q", "--lim", "3"],
    ["context", "q", "--budget", "15"], ["context", "q", "--line", "0", "--file", "a"],
    ["context", "--file", "a"], ["context", "q", "--line", "3"],
    ["status", "--rev", "main"], ["status", "extra"],
]


def _commands() -> dict[str, Any]:
    """The full CLI's commands, as click (typer's vendored copy) parses them."""
    return typer.main.get_command(app).commands  # type: ignore[attr-defined,no-any-return]


def _click_params(argv: list[str]) -> dict[str, Any]:
    cmd = _commands()[argv[0]]
    with cmd.make_context(argv[0], list(argv[1:])) as ctx:
        return dict(ctx.params)


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, tuple | list):
        return list(ours or []) == list(theirs)
    if isinstance(theirs, Path) or isinstance(ours, Path):
        return (None if ours is None else Path(ours)) == (None if theirs is None else Path(theirs))
    return bool(ours == theirs)


@pytest.mark.parametrize("argv", HANDLED, ids=" ".join)
def test_an_invocation_it_answers_is_read_as_the_full_cli_reads_it(argv: list[str]) -> None:
    args = parse(argv)
    theirs = _click_params(argv)
    for name, value in theirs.items():
        if name in ("rev", "queries"):
            assert value is None  # never given on this path
            continue
        assert hasattr(args, name), f"the fast path has no {name!r} (the full CLI's option)"
        assert _same(getattr(args, name), value), (name, getattr(args, name), value)


@pytest.mark.parametrize("argv", DEFERRED, ids=lambda a: " ".join(a) or "(none)")
def test_anything_else_is_left_to_the_full_cli(argv: list[str]) -> None:
    with pytest.raises(Defer):
        parse(argv)


def test_every_option_of_the_full_commands_is_either_read_or_deferred() -> None:
    """A new option added to `server.cli` must not be mistaken by the fast path."""
    deferred = {"--rev", "--queries", "--help"}
    for name in cli_fast.COMMANDS:
        for param in _commands()[name].params:
            for opt in [*param.opts, *param.secondary_opts]:
                if not opt.startswith("-"):
                    continue
                sample = {"--mode": "lexical", "--budget": "64", "--min-score": "0.5"}.get(opt, "1")
                value = [] if getattr(param, "is_flag", False) else [sample]
                # --file and --line go together (alone, each is the full CLI's error to print).
                partner = {"--file": ["--line", "1"], "--line": ["--file", "a"]}.get(opt, [])
                argv = [name, *(["q"] if name == "search" else []), opt, *value, *partner]
                if opt in deferred:
                    with pytest.raises(Defer):
                        parse(argv)
                    continue
                try:
                    args = parse(argv)
                except Defer:
                    pytest.fail(f"{name} {opt}: the fast path does not know this option of the full CLI")
                assert _same(getattr(args, param.name or ""), _click_params(argv)[param.name or ""])


# --- settings ------------------------------------------------------------------------


Sources = Callable[[str, str, dict[str, str]], Path]


@pytest.fixture()
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sources:
    """Writes the user config file, the workspace file and FORGE_INDEXER_* variables (and
    no others); returns the workspace."""
    import os

    for key in list(os.environ):
        if key.startswith("FORGE_INDEXER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    user = tmp_path / "config" / "forge-indexer" / "config.toml"
    user.parent.mkdir(parents=True)
    ws = tmp_path / "ws"
    ws.mkdir()

    def write(user_file: str, ws_file: str, env: dict[str, str]) -> Path:
        user.write_text(user_file)
        (ws / ".forge-indexer.toml").write_text(ws_file)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return ws

    return write


SETTING_CASES: list[tuple[str, str, dict[str, str]]] = [
    ("", "", {}),
    ('stateDir = "/tmp/elsewhere"\nkeyringBackend = "keyring.backends.SecretService.Keyring"', "", {}),
    ("state_dir = '/tmp/a'\nshared_daemon = false", "", {}),
    ("sharedDaemon = false", "sharedDaemon = true", {}),
    ("", "sharedDaemon = false\nmaxTokens = 64", {}),
    ('stateDir = "/tmp/a"', "", {"FORGE_INDEXER_STATE_DIR": "/tmp/b"}),
    ("", "", {"FORGE_INDEXER_SHARED_DAEMON": "false"}),
    ("", "", {"FORGE_INDEXER_SHARED_DAEMON": "0"}),
    ("", "", {"FORGE_INDEXER_SHARED_DAEMON": "Yes"}),
    ("sharedDaemon = false", "", {"FORGE_INDEXER_SHARED_DAEMON": "on"}),
    ("", "", {"FORGE_INDEXER_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}),
]


@pytest.mark.parametrize(("user_file", "ws_file", "env"), SETTING_CASES)
def test_the_daemon_settings_agree_with_load_settings(
    sources: Sources, user_file: str, ws_file: str, env: dict[str, str]
) -> None:
    ws = sources(user_file, ws_file, env)
    for override in (None, ws / "flag-state"):
        full, _ = load_settings(ws, {"state_dir": override} if override else None)
        ours = client_settings(ws, override)
        assert ours == ClientSettings(full.state_dir, full.shared_daemon, full.keyring_backend)


@pytest.mark.parametrize(("user_file", "ws_file", "env"), [
    ("stateDir = [1]", "", {}),  # invalid: the full CLI warns
    ("this is not toml", "", {}),  # unreadable: the full CLI warns
    ("", 'stateDir = "/tmp/x"', {}),  # a workspace may not choose it: the full CLI warns
    ("", 'keyringBackend = "keyrings.alt.file.PlaintextKeyring"', {}),
    ("", "sharedDaemon = 'maybe'", {}),
    ("", "", {"FORGE_INDEXER_SHARED_DAEMON": "maybe"}),
    ("", "", {"FORGE_INDEXER_STATE_DIR": ""}),
])
def test_settings_the_fast_path_cannot_read_plainly_go_to_the_full_cli(
    sources: Sources, user_file: str, ws_file: str, env: dict[str, str]
) -> None:
    ws = sources(user_file, ws_file, env)
    with pytest.raises(Defer):
        client_settings(ws, None)


def test_its_user_only_keys_are_the_settings_models() -> None:
    from indexer.core.settings import USER_ONLY_KEYS, Settings

    assert set(cli_fast.KEYS) <= set(Settings.model_fields)
    assert {k for k in cli_fast.KEYS if k in USER_ONLY_KEYS} == cli_fast.USER_ONLY


def test_importing_it_loads_nothing_heavy() -> None:
    """What the CLI pays before it knows whether a daemon answers (the e2e test covers a whole
    search through one)."""
    code = (
        "import sys; from server import cli_fast; "
        "cli_fast.parse(['search', 'q']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    heavy = ["chromadb", "llama_cpp", "numpy", "tree_sitter", "pydantic", "typer", "rich", "lsprotocol",
             "pygls", "watchdog", "keyring"]
    out = subprocess.run([sys.executable, "-c", code, *heavy], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
