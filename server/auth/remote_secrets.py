"""Credentials for remote engines (a Chroma server, an embeddings server), in the OS keyring.

A credential is the value of the HTTP header named by `chromaAuthHeader` /
`embedderAuthHeader` (e.g. "Bearer …" for Authorization). It is stored with
`forge-indexer remote-secret set chroma|embedder`, which reads it from the terminal or stdin,
never from a process argument, and it lives in the keyring only, under an entry bound to the
server's URL: pointing `chromaUrl` somewhere else never sends the old server's credential
there. Like the daemon's secret it never reaches a file, a log line or an error message.
"""

from __future__ import annotations

from collections.abc import Callable

from indexer.core.errors import ForgeError
from indexer.core.settings import Settings
from server.auth.secret import SERVICE, _call, select_backend

TARGETS = ("chroma", "embedder")


class RemoteCredentialMissing(ForgeError):
    """An auth header is configured for a remote engine but no credential is stored."""


def _target(settings: Settings, name: str) -> tuple[str | None, str | None]:
    """(URL, header name) of remote engine `name` in these settings."""
    if name == "chroma":
        return settings.chroma_url, settings.chroma_auth_header
    if name == "embedder":
        return settings.embedder_url, settings.embedder_auth_header
    raise ForgeError(f"unknown remote engine {name!r}: use one of {', '.join(TARGETS)}")


def _entry(name: str, url: str) -> str:
    return f"remote:{name}:{url.rstrip('/')}"


def read_credential(settings: Settings, name: str) -> str | None:
    """The stored header value for engine `name`, or None when no auth header is configured."""
    url, header = _target(settings, name)
    if not url or not header:
        return None
    backend = select_backend(settings.keyring_backend)
    value = _call(lambda: backend.get_password(SERVICE, _entry(name, url)), f"reading the {name} credential")
    if not value:
        raise RemoteCredentialMissing(
            f"{name}AuthHeader is set to {header} but no credential for {url} is in the keyring: "
            f"run `forge-indexer remote-secret set {name}` (it reads the value from stdin)."
        )
    return str(value)


def store_credential(settings: Settings, name: str, value: str) -> str:
    """Store the header value for engine `name`; returns the keyring entry's name."""
    url, _ = _target(settings, name)
    if not url:
        raise ForgeError(f"set {name}Url first (user config or FORGE_INDEXER_{name.upper()}_URL): "
                         "the credential is stored for that server only.")
    if not value or "\n" in value or "\r" in value:
        raise ForgeError("the credential is empty or spans several lines; give one line.")
    backend = select_backend(settings.keyring_backend)
    entry = _entry(name, url)
    _call(lambda: backend.set_password(SERVICE, entry, value), f"storing the {name} credential")
    return entry


def delete_credential(settings: Settings, name: str) -> bool:
    """Remove the stored credential for engine `name`; False if there was none."""
    url, _ = _target(settings, name)
    if not url:
        return False
    backend = select_backend(settings.keyring_backend)
    entry = _entry(name, url)
    if _call(lambda: backend.get_password(SERVICE, entry), f"reading the {name} credential") is None:
        return False
    _call(lambda: backend.delete_password(SERVICE, entry), f"deleting the {name} credential")
    return True


def lookup(settings: Settings) -> Callable[[str], str | None]:
    """What `Workspace(secrets=...)` calls: engine name → header value (or None)."""
    return lambda name: read_credential(settings, name)
