"""Remote-engine credentials live in the real OS keyring, bound to the server's URL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from indexer.core.errors import ForgeError
from indexer.core.settings import Settings
from server.auth import remote_secrets
from server.auth.secret import select_backend


@pytest.fixture
def chroma_settings() -> Settings:
    try:
        select_backend()
    except Exception as exc:
        pytest.fail(f"these tests need a real Secret Service (run them through tests/run.sh): {exc}")
    # A URL of its own per test run: the keyring outlives the test.
    return Settings(chroma_url=f"http://127.0.0.1:1/{uuid.uuid4().hex}", chroma_auth_header="Authorization")


def test_store_read_delete_round_trip(chroma_settings: Settings) -> None:
    entry = remote_secrets.store_credential(chroma_settings, "chroma", "Bearer s3cr3t-value")
    assert entry.startswith("remote:chroma:http://127.0.0.1:1/")
    assert remote_secrets.lookup(chroma_settings)("chroma") == "Bearer s3cr3t-value"
    assert remote_secrets.delete_credential(chroma_settings, "chroma") is True
    assert remote_secrets.delete_credential(chroma_settings, "chroma") is False


def test_a_credential_is_never_sent_to_another_url(chroma_settings: Settings) -> None:
    remote_secrets.store_credential(chroma_settings, "chroma", "Bearer for-the-first-server")
    try:
        moved = chroma_settings.model_copy(update={"chroma_url": "http://127.0.0.1:2/elsewhere"})
        with pytest.raises(remote_secrets.RemoteCredentialMissing) as info:
            remote_secrets.read_credential(moved, "chroma")
        assert "remote-secret set chroma" in str(info.value)
        assert "for-the-first-server" not in str(info.value)
    finally:
        remote_secrets.delete_credential(chroma_settings, "chroma")


def test_no_header_configured_means_no_keyring_call() -> None:
    # No auth header: nothing is read (works even without a keyring).
    assert remote_secrets.read_credential(Settings(chroma_url="http://127.0.0.1:1"), "chroma") is None
    with pytest.raises(ForgeError, match="unknown remote engine"):
        remote_secrets.read_credential(Settings(), "redis")


def test_cli_reads_the_value_from_stdin_never_argv(chroma_settings: Settings, tmp_path: Path) -> None:
    env_url = chroma_settings.chroma_url or ""
    env = {"FORGE_INDEXER_CHROMA_URL": env_url, "FORGE_INDEXER_CHROMA_AUTH_HEADER": "Authorization"}
    run = subprocess.run(
        [sys.executable, "-m", "server.cli", "remote-secret", "set", "chroma", "-w", str(tmp_path)],
        input="Bearer from-stdin\n", capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )
    assert run.returncode == 0, run.stderr
    assert "from-stdin" not in run.stdout + run.stderr
    try:
        assert remote_secrets.read_credential(chroma_settings, "chroma") == "Bearer from-stdin"
    finally:
        remote_secrets.delete_credential(chroma_settings, "chroma")
