"""Security defaults: a cloned repository cannot redirect models or state, secrets are never
read, index folders are private, and path globs that cannot mean what was typed are refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from indexer.core.globs import check_globs, glob_problem
from indexer.core.locations import private_dir
from indexer.core.settings import Settings, load_settings
from indexer.files.discover import discover, secret_reason


def test_workspace_file_cannot_choose_the_model_or_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORGE_INDEXER_STATE_DIR", raising=False)
    (tmp_path / ".forge-indexer.toml").write_text(
        "modelPath = '/tmp/evil.gguf'\nstate_dir = '/tmp/exfil'\nsearchLimit = 7\n"
    )
    s, warnings = load_settings(tmp_path)
    assert s.model_path is None and s.state_dir is None
    assert s.search_limit == 7  # harmless keys still apply
    assert any("'modelPath' ignored" in w and "may not choose it" in w for w in warnings)
    assert any("'stateDir' ignored" in w for w in warnings)


def test_user_sources_may_still_choose_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path / "st"))
    s, warnings = load_settings(tmp_path, {"modelPath": str(tmp_path / "m.gguf")})
    assert warnings == []
    assert s.state_dir == tmp_path / "st" and s.model_path == tmp_path / "m.gguf"


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", "config/.env.production", "certs/server.pem", "tls.key", "id_rsa",
     "id_ed25519.pub", ".ssh/config", "home/.aws/credentials", "deploy/credentials.json",
     ".netrc", "secrets.yaml", "keys/store.p12"],
)
def test_secret_bearing_files_are_recognised(path: str) -> None:
    reason = secret_reason(path)
    assert reason is not None and reason.startswith("may hold secrets")


@pytest.mark.parametrize("path", ["src/env.py", "environment.ts", "docs/keys.md", "key.go", "pemfile.txt"])
def test_ordinary_files_are_not_secrets(path: str) -> None:
    assert secret_reason(path) is None


def test_discovery_skips_secrets_and_tool_configuration_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def main():\n    return 1\n")
    (tmp_path / ".env").write_text("API_TOKEN=hunter2\n")
    (tmp_path / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host x\n")
    (tmp_path / ".gitignore").write_text("build/\n")
    found = discover(tmp_path, Settings())
    assert [f.path for f in found.files] == ["app.py"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons[".env"] == "may hold secrets (.env)"
    assert reasons["server.pem"] == "may hold secrets (server.pem)"
    assert reasons[".ssh/config"] == "may hold secrets (inside .ssh/)"
    assert reasons[".gitignore"] == "tool configuration, not code"


def test_state_folders_are_private(tmp_path: Path) -> None:
    target = tmp_path / "a" / "state"
    private_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    target.chmod(0o755)  # an older, looser folder is tightened
    private_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


@pytest.mark.parametrize("glob", ["[unclosed", "src/[abc", "a[!x"])
def test_unclosed_brackets_are_refused(glob: str) -> None:
    problem = glob_problem(glob)
    assert problem is not None and "never closed" in problem
    with pytest.raises(ValueError, match="bad path glob"):
        check_globs(["ok/**", glob])


@pytest.mark.parametrize("glob", ["src/**/*.py", "[ab]*.go", r"lit\[eral", "[]x]", "[!a]b", "web/**"])
def test_usable_globs_pass(glob: str) -> None:
    assert glob_problem(glob) is None


def test_empty_and_huge_globs_are_refused() -> None:
    assert glob_problem("  ") is not None
    assert glob_problem("a" * 5000) is not None
