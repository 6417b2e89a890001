"""The per-workspace secret, kept in the OS keyring and nowhere else.

The secret is 32 random bytes, created by the daemon on its first start and read by
clients (the `lsp` relay, the CLI) of the same user. It never goes to a file, a log line,
an error message, an environment variable or a process argument: this module returns it
only as bytes, and every error it raises names the keyring, never the value.

Only real keyrings count. keyring's `fail` and `null` backends and the file backends of
`keyrings.alt` (plaintext or "encrypted" with a password prompt) are refused unless the
user names one in the `keyringBackend` setting (user config or environment only). Every
call runs on a daemon thread with a timeout: a locked Secret Service may wait for a GUI
prompt forever, and nothing here may ever read stdin (on `lsp` that is the editor's pipe).
"""

from __future__ import annotations

import base64
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from indexer.core.errors import ForgeError

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE = "forge-indexer"
SECRET_BYTES = 32
CALL_TIMEOUT_S = 5.0
#: Module prefixes of backends that are not an OS keyring: they fail, forget, or keep the
#: secret in a file any process of the user (or a backup) can read.
REFUSED_MODULES = (
    "keyring.backends.fail",
    "keyring.backends.null",
    "keyrings.alt",
    "keyrings.cryptfile",
)
#: Backends that ask for a password on the terminal: refused even when named.
PROMPTING = ("keyrings.alt.file.EncryptedKeyring", "keyrings.cryptfile.cryptfile.CryptFileKeyring")

HOW_TO_FIX = (
    "Install and unlock an OS keyring: on Linux a Secret Service such as gnome-keyring "
    "(desktop: log in normally; headless: see docs/security.md, 'A keyring on a headless "
    "server'); macOS Keychain and Windows Credential Locker work out of the box."
)


class KeyringUnavailable(ForgeError):
    """No usable OS keyring. `reason` is one word for notices and the daemon's registry:
    `none` (no OS keyring found), `locked`, `timeout` (it did not answer), `failed` (it
    raised), `named` (the backend the user named cannot be used), `entry` (the keyring
    holds something else under our name)."""

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


def backend_name(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _refused(name: str) -> bool:
    return name.startswith(REFUSED_MODULES)


def _call(fn: Callable[[], T], what: str, timeout_s: float = CALL_TIMEOUT_S) -> T:
    """Run one keyring call on a daemon thread; give up after `timeout_s`.

    A daemon thread, not a pool: a call stuck on a prompt must not keep the process alive.
    """
    out: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            out.put((True, fn()))
        except BaseException as exc:
            out.put((False, exc))

    threading.Thread(target=run, name="forge-keyring", daemon=True).start()
    try:
        ok, value = out.get(timeout=timeout_s)
    except queue.Empty:
        raise KeyringUnavailable(
            f"the OS keyring did not answer within {timeout_s:.0f} s while {what} (is it locked "
            f"and waiting for a password prompt?). {HOW_TO_FIX}", "timeout"
        ) from None
    if not ok:
        exc = value
        if isinstance(exc, KeyringUnavailable):
            raise exc
        raise KeyringUnavailable(
            f"the OS keyring failed while {what}: {type(exc).__name__}: {exc}. {HOW_TO_FIX}"
        ) from None
    return value


def _candidates(backend: Any) -> list[Any]:
    """The backends keyring would use, in order (a chainer is opened up)."""
    inner = getattr(backend, "backends", None)
    return list(inner) if isinstance(inner, list | tuple) else [backend]


def _named_backend(name: str) -> Any:
    import importlib

    module, _, cls_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise KeyringUnavailable(
            f"the keyring backend named in the keyringBackend setting, {name!r}, cannot be "
            f"loaded ({exc}). Give its full class name, e.g. keyrings.alt.file.PlaintextKeyring.",
            "named",
        ) from None
    return cls()


def _check_unlocked(backend: Any) -> None:
    """A locked Secret Service would pop up a prompt: refuse instead, saying how to unlock."""
    if not backend_name(backend).startswith("keyring.backends.SecretService"):
        return
    import secretstorage

    bus = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(bus)
        if collection.is_locked():
            raise KeyringUnavailable(
                "the Secret Service keyring is locked. Unlock it (log in to the desktop, or on a "
                "headless machine run `gnome-keyring-daemon --unlock` with the password on its "
                "stdin; see docs/security.md).", "locked"
            )
    finally:
        bus.close()


def select_backend(allowed: str | None = None) -> Any:
    """The keyring backend to use, or `KeyringUnavailable` saying why there is none.

    `allowed` is the user's `keyringBackend` setting: the full class name of a backend they
    accept although it is not an OS keyring.
    """

    def pick() -> Any:
        if allowed:
            if allowed in PROMPTING:
                raise KeyringUnavailable(
                    f"{allowed} asks for a password on the terminal, which a daemon cannot "
                    f"answer; it cannot be used. {HOW_TO_FIX}", "named"
                )
            backend = _named_backend(allowed)
            log.warning("using the keyring backend %s because the keyringBackend setting names it", allowed)
            return backend
        import keyring

        found = _candidates(keyring.get_keyring())
        for backend in found:
            name = backend_name(backend)
            if not _refused(name) and name != "keyring.backends.chainer.ChainerBackend":
                _check_unlocked(backend)
                return backend
        names = ", ".join(backend_name(b) for b in found) or "none"
        raise KeyringUnavailable(
            f"no OS keyring is available (keyring offers only: {names}; file and null backends "
            f"are refused because they would leave the secret readable in a file or not keep "
            f"it). {HOW_TO_FIX} To accept a file backend anyway, set keyringBackend to its class "
            f"name in your user config.", "none"
        )

    return _call(pick, "looking for a keyring backend")


def recorded_backend(name: object) -> Any | None:
    """The backend a running daemon says holds its secret (its registry entry), loaded by
    class name: a client skips keyring's discovery, which probes every backend over D-Bus
    (about 0.1 s of the CLI's start). None for anything but a keyring.backends class we
    would have chosen ourselves; the caller then selects as usual.
    """
    if not isinstance(name, str) or not name.startswith("keyring.backends.") or _refused(name):
        return None
    if name == "keyring.backends.chainer.ChainerBackend":
        return None

    def load() -> Any:
        backend = _named_backend(name)
        _check_unlocked(backend)
        return backend

    return _call(load, "opening the keyring")


def _username(workspace_id: str) -> str:
    return f"workspace:{workspace_id}"


def read_secret(workspace_id: str, backend: Any) -> bytes | None:
    """The workspace's secret, or None if none was created yet."""
    raw = _call(lambda: backend.get_password(SERVICE, _username(workspace_id)), "reading the secret")
    if raw is None:
        return None
    try:
        value = base64.b64decode(raw, validate=True)
    except ValueError:
        value = b""
    if len(value) < SECRET_BYTES:
        raise KeyringUnavailable(
            f"the keyring entry {SERVICE}/{_username(workspace_id)} is not a forge-indexer secret; "
            "replace it with `forge-indexer token rotate`.", "entry"
        )
    return value


def write_secret(workspace_id: str, backend: Any) -> bytes:
    """Create a new random secret for the workspace, store it and return it."""
    value = secrets.token_bytes(SECRET_BYTES)
    encoded = base64.b64encode(value).decode()
    _call(lambda: backend.set_password(SERVICE, _username(workspace_id), encoded), "storing the secret")
    if read_secret(workspace_id, backend) != value:
        raise KeyringUnavailable(
            f"the keyring ({backend_name(backend)}) did not keep the secret that was stored in "
            f"it. {HOW_TO_FIX}"
        )
    return value


def load_or_create(workspace_id: str, backend: Any) -> bytes:
    """The daemon's start: the existing secret, or a new one on first start."""
    return read_secret(workspace_id, backend) or write_secret(workspace_id, backend)
