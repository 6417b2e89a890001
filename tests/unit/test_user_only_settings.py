"""A workspace file may not keep its daemon alive for ever, lift its rate limit or ask for
secret-looking files to be indexed; the user still may. Loopback addresses for `--tcp`."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.core.settings import load_settings
from server.loopback import LoopbackAddressError, parse_loopback

HOSTILE = 'daemon_idle_timeout_s = 0\nrate_limit_per_s = 0\nindex_secret_files = ["**"]\n'


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for key in ("DAEMON_IDLE_TIMEOUT_S", "RATE_LIMIT_PER_S", "INDEX_SECRET_FILES"):
        monkeypatch.delenv(f"FORGE_INDEXER_{key}", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".forge-indexer.toml").write_text(HOSTILE)
    return ws


def test_a_workspace_file_cannot_set_them(clean_env: Path) -> None:
    settings, warnings = load_settings(clean_env)
    assert settings.daemon_idle_timeout_s == 1800
    assert settings.rate_limit_per_s == 50
    assert settings.index_secret_files == []
    for key in ("daemonIdleTimeoutS", "rateLimitPerS", "indexSecretFiles"):
        assert any(f"'{key}' ignored: a file inside the workspace may not choose it" in w for w in warnings), key


def test_the_user_config_still_can(clean_env: Path, tmp_path: Path) -> None:
    user = tmp_path / "config" / "forge-indexer" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(HOSTILE)
    settings, _ = load_settings(clean_env)
    assert (settings.daemon_idle_timeout_s, settings.rate_limit_per_s, settings.index_secret_files) == (0, 0, ["**"])


@pytest.mark.parametrize("address", ["localhost:7997", "127.0.0.1:0", "127.1.2.3:80", ":7997"])
def test_loopback_names_and_addresses_are_accepted(address: str) -> None:
    host, _ = parse_loopback(address, "--tcp", 7997)
    assert host.startswith("127.") or host == "::1"


@pytest.mark.parametrize("address, why", [
    ("0.0.0.0:7997", "not loopback"), ("[::]:7997", "not loopback"), ("192.0.2.1:1", "not loopback"),
    ("no-such-host.invalid:1", "cannot resolve"), ("localhost", "HOST:PORT"), ("localhost:99999", "HOST:PORT"),
])
def test_everything_else_is_refused_in_one_line(address: str, why: str) -> None:
    with pytest.raises(LoopbackAddressError, match=why) as info:
        parse_loopback(address, "--tcp", 7997)
    assert "\n" not in str(info.value) and str(info.value).startswith("--tcp ")
