"""Secrets recognised by content: every kind the scanner knows, ordinary code left alone,
discovery skipping such files with a reason, and the user's `indexSecretFiles` override.

The fake secrets are generated from random bytes when the test runs (the generators are
the benchmark's, `tests/bench/bench_secret_scan.py`), so nothing in the repository looks
like a leaked key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.core.settings import Settings, load_settings
from indexer.core.types import Skipped
from indexer.files.discover import discover, load_source, secret_allowed
from indexer.files.secret_scan import SCAN_CHARS, looks_random, scan
from tests.bench.bench_secret_scan import CORPUS, pem, rand
from tests.conftest import REPO


def test_every_kind_of_fake_secret_is_found() -> None:
    """Random values are random: a rare short or low-entropy password can pass for a word
    (the benchmark measures 99.8%), so each kind must be found in 4 of 5 samples."""
    missed = {}
    for kind, make in CORPUS.items():
        samples = [make() for _ in range(5)]
        found = [f for name, text in samples if (f := scan(text, name)) is not None]
        assert all(f.line >= 1 for f in found)
        if len(found) < 4:
            missed[kind] = [text[-80:] for name, text in samples if scan(text, name) is None]
    assert not missed, missed


@pytest.mark.parametrize("name, text", [
    ("a.py", "password = get_password()\ntoken = self.token\nsecret = os.environ['SECRET']\n"),
    ("a.py", 'TOKEN_HEADER = "X-Auth-Token"\nPASSWORD_FIELD = "passwordField"\n'),
    ("a.py", 'PEM_HEADER = "-----BEGIN PRIVATE KEY-----"\n'),
    ("a.py", "for token in tokens:\n    if token.kind == 'name': pass\n"),
    ("a.py", 'EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n'),
    ("README.md", "export GH_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"),
    ("a.py", 'def login(password: str = "changeme") -> None: ...\n'),
    ("values.yaml", "password: ${DB_PASSWORD}\ntoken: {{ .Values.token }}\n"),
    ("app.env", "API_KEY=your-api-key-here\nDB_PASSWORD=\n"),
    ("a.go", 'const tokenURL = "https://oauth2.googleapis.com/token"\n'),
    ("a.ts", 'const secretName = "app-secret-name-v2";\nconst passes = 1234567890;\n'),
    ("a.py", 'n_tokens_output: "_Pointer[c_size_t]"\ntoken_filename="not_exists_file_1123"\n'),
    ("a.py", 'proxy_url = "socks5h://<username>:<password>@proxy-host"\n'),
])
def test_ordinary_code_is_not_a_secret(name: str, text: str) -> None:
    assert scan(text, name) is None


def test_unquoted_values_count_in_config_files_only() -> None:
    value = rand(12) + "7"
    assert scan(f"db_password = {value}\n", "app.properties") is not None
    assert scan(f"db_password = {value}\n", "app.py") is None  # an expression in code


def test_a_finding_names_the_kind_and_line_never_the_value() -> None:
    value = rand(20) + "9"
    finding = scan(f"# db\nhost = db\nclient_secret = '{value}'\n", "conf/app.ini")
    assert finding is not None and finding.line == 3
    assert value not in str(finding) and "client_secret" in str(finding)


def test_only_a_bounded_prefix_is_read() -> None:
    key = pem("OPENSSH PRIVATE KEY", 400)
    assert scan("x = 1\n" * 10 + key, "k") is not None
    assert scan("x = 1\n" * (SCAN_CHARS // 6 + 1) + key, "k") is None


def test_random_values_and_words() -> None:
    assert looks_random("Xk8dP2qLmN4v")
    assert looks_random("3f9a1c7e5b2d8f60")
    for word in ("changeme", "X-Auth-Token", "minio123", "passwordField", "V1LocalObjectReference", "12345678"):
        assert not looks_random(word), word


def _secret_bits(text: str) -> list[str]:
    """The parts of a fake secret file that must never be printed: key material, the password."""
    return re.findall(r"[A-Za-z0-9+/]{40,}", text) + re.findall(r'password = "([^"]+)"', text)


def _workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    ws = tmp_path / "ws"
    (ws / "conf").mkdir(parents=True)
    files = {
        "conf/deploy_key": CORPUS["OpenSSH key"]()[1],
        "conf/service-account.json": CORPUS["GCP service account"]()[1],
        "conf/prod.tfvars": CORPUS["tfvars password"]()[1],
        "src/main.py": "def main() -> int:\n    return 0\n",
    }
    for rel, text in files.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    return ws, files


def test_discovery_skips_secret_content_with_a_reason(tmp_path: Path) -> None:
    ws, files = _workspace(tmp_path)
    settings = Settings()
    found = discover(ws, settings)
    loaded = {f.path: load_source(f, settings) for f in found.files}
    for rel in ("conf/deploy_key", "conf/service-account.json", "conf/prod.tfvars"):
        res = loaded[rel]
        assert isinstance(res, Skipped) and res.reason.startswith("may hold secrets"), res
        assert _secret_bits(files[rel]) and not any(b in res.reason for b in _secret_bits(files[rel]))
    assert not isinstance(loaded["src/main.py"], Skipped)


def test_the_user_may_index_such_a_file_anyway(tmp_path: Path) -> None:
    ws, _ = _workspace(tmp_path)
    settings = Settings(index_secret_files=["conf/deploy_key", "*.tfvars"])
    assert secret_allowed("conf/deploy_key", settings) and not secret_allowed("conf/x.json", settings)
    loaded = {f.path: load_source(f, settings) for f in discover(ws, settings).files}
    assert not isinstance(loaded["conf/deploy_key"], Skipped)
    assert not isinstance(loaded["conf/prod.tfvars"], Skipped)
    assert isinstance(loaded["conf/service-account.json"], Skipped)
    # By name too: `.env` files are refused by name, and indexed when listed.
    (ws / ".env").write_text("DEBUG=1\n")
    assert ".env" not in {f.path for f in discover(ws, Settings()).files}
    assert ".env" in {f.path for f in discover(ws, Settings(index_secret_files=[".env"])).files}


def test_a_workspace_file_cannot_ask_for_secrets_to_be_indexed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-user-config"))
    ws, _ = _workspace(tmp_path)
    (ws / ".forge-indexer.toml").write_text('index_secret_files = ["conf/"]\n')
    settings, warnings = load_settings(ws)
    assert settings.index_secret_files == []
    assert any("indexSecretFiles" in w and "may not" in w for w in warnings), warnings


def _explain(ws: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "server.cli", "explain", *args], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=60)


def test_explain_says_why_a_file_is_or_is_not_indexed(tmp_path: Path) -> None:
    ws, files = _workspace(tmp_path)
    out = _explain(ws, "conf/deploy_key")
    assert out.returncode == 0, out.stderr
    assert "not indexed: may hold secrets (private key on line 1)" in out.stdout
    assert "indexSecretFiles" in out.stdout
    assert "src/main.py: indexed" in _explain(ws, "src/main.py").stdout
    data = json.loads(_explain(ws, "conf/prod.tfvars", "--json").stdout)
    assert data["indexed"] is False and "db_password" in data["reason"]
    allowed = json.loads(_explain(ws, "conf/deploy_key", "--json",
                                  extra_env={"FORGE_INDEXER_INDEX_SECRET_FILES": "conf/"}).stdout)
    assert allowed["indexed"] is True and "indexSecretFiles matches it" in allowed["override"]
    for text in files.values():  # the secret itself is never printed
        assert not any(b in out.stdout + data["reason"] for b in _secret_bits(text))
    missing = _explain(ws, "nothere.py")
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and len(missing.stderr.splitlines()) == 1
    outside = _explain(ws, "/etc/hostname")
    assert outside.returncode == 1 and "not inside the workspace" in outside.stderr


def test_no_file_of_this_repository_looks_like_a_secret() -> None:
    """Its own tests and benchmark build fake keys at run time; none of its files holds one."""
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True)
    flagged = []
    for rel in tracked.stdout.splitlines():
        try:
            text = (REPO / rel).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if (finding := scan(text, rel)) is not None:
            flagged.append(f"{rel}: {finding}")
    assert not flagged, flagged
