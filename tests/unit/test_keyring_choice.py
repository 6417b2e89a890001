"""Which keyring backends the daemon accepts, and that a hanging keyring cannot hang it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail, null

from server.auth import secret


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


@pytest.mark.parametrize("backend", [null.Keyring, fail.Keyring])
def test_null_and_fail_backends_are_refused_with_the_fix(restore_keyring: None, backend: type) -> None:
    keyring.set_keyring(backend())
    with pytest.raises(secret.KeyringUnavailable) as info:
        secret.select_backend()
    text = str(info.value)
    assert "no OS keyring is available" in text and f"keyring.backends.{backend.__module__.rsplit('.', 1)[-1]}" in text
    assert "gnome-keyring" in text and "keyringBackend" in text


def test_a_backend_named_by_the_user_is_accepted() -> None:
    chosen = secret.select_backend("keyring.backends.null.Keyring")
    assert secret.backend_name(chosen) == "keyring.backends.null.Keyring"


def test_prompting_and_unknown_backends_are_refused_even_when_named() -> None:
    with pytest.raises(secret.KeyringUnavailable, match="asks for a password"):
        secret.select_backend("keyrings.alt.file.EncryptedKeyring")
    with pytest.raises(secret.KeyringUnavailable, match="cannot be loaded"):
        secret.select_backend("no.such.Backend")


def test_a_keyring_call_that_hangs_times_out() -> None:
    started = time.monotonic()
    with pytest.raises(secret.KeyringUnavailable, match="did not answer within"):
        secret._call(lambda: time.sleep(30), "testing", timeout_s=0.2)
    assert time.monotonic() - started < 2


def test_a_value_that_is_not_a_secret_is_reported_not_used() -> None:
    class Stored:
        def get_password(self, service: str, user: str) -> str:
            return "not base64!"

    with pytest.raises(secret.KeyringUnavailable, match="token rotate"):
        secret.read_secret("ws", Stored())
