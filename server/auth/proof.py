"""Challenge-response on connect and a DPoP-style proof on every message after it.

Handshake (each line one framed JSON message, see `server.daemon.framing`):

    daemon → client  {"forge": "hello", "v": 1, "nonce": N}
    client → daemon  {"forge": "auth", "cnonce": C, "mac": HMAC(secret, "auth" | N | C)}
    daemon → client  {"forge": "ok", "mac": HMAC(secret, "daemon" | N | C)}

Both nonces are fresh random 32 bytes, so the session key HMAC(secret, "session" | N | C)
is new for every connection, and the daemon's answer proves to the client that it talks to
the holder of the secret too (a process that squats the socket path cannot pose as the
daemon). After that every framed message carries a `Forge-Proof` header:

    base64url(claims) "." base64url(HMAC(session key, "proof" | base64url(claims)))
    claims = {"m": JSON-RPC method ("" for a response), "d": base64url(SHA-256(body)),
              "iat": issued-at in ms since the epoch, "jti": a random unique id}

The digest covers the exact body bytes, so it binds the params (and id) without any
canonical JSON form; other clients (the VS Code extension) compute it the same way.
The daemon checks the MAC in constant time, freshness (`WINDOW_S` back, `SKEW_S` ahead),
the method, the digest, and that the id was not seen before within the window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
NONCE_BYTES = 32
WINDOW_S = 60.0
SKEW_S = 5.0
MAX_PROOF_CHARS = 1024
HEADER = "Forge-Proof"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"forge-" + label + b"-v1\0" + b"\0".join(parts), hashlib.sha256).digest()


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def client_auth(secret: bytes, nonce: bytes, cnonce: bytes) -> bytes:
    return _mac(secret, b"auth", nonce, cnonce)


def daemon_auth(secret: bytes, nonce: bytes, cnonce: bytes) -> bytes:
    return _mac(secret, b"daemon", nonce, cnonce)


def session_key(secret: bytes, nonce: bytes, cnonce: bytes) -> bytes:
    return _mac(secret, b"session", nonce, cnonce)


def same(a: bytes, b: bytes) -> bool:
    """Constant-time comparison (a MAC must not leak how many bytes matched)."""
    return hmac.compare_digest(a, b)


def digest(body: bytes) -> str:
    return b64(hashlib.sha256(body).digest())


def make_proof(key: bytes, method: str, body: bytes, *, now: float | None = None,
               jti: str | None = None) -> str:
    """The `Forge-Proof` header value for one message body."""
    claims = {
        "m": method,
        "d": digest(body),
        "iat": int((time.time() if now is None else now) * 1000),
        "jti": jti or secrets.token_hex(16),
    }
    encoded = b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{encoded}.{b64(_mac(key, b'proof', encoded.encode()))}"


class ProofRejected(Exception):
    """A message's proof does not hold; `reason` is one word for logs and clients."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def method_of(message: Any) -> str:
    """The JSON-RPC method a body claims ("" for a response)."""
    if isinstance(message, dict):
        method = message.get("method")
        return method if isinstance(method, str) else ""
    return ""


@dataclass
class ReplayCache:
    """Proof ids seen within the window (shared by every connection of the daemon)."""

    window_s: float = WINDOW_S + SKEW_S
    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_prune: float = 0.0

    def first_use(self, jti: str, now: float) -> bool:
        with self._lock:
            if now >= self._next_prune:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
                self._next_prune = now + 5.0
            if self._seen.get(jti, 0.0) > now:
                return False
            self._seen[jti] = now + self.window_s
            return True

    def __len__(self) -> int:
        return len(self._seen)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _claims(raw: bytes) -> tuple[str, str, float, str]:
    """(m, d, iat, jti) of a proof, each of exactly its type; `ValueError` otherwise.

    Python's json reads `NaN` and `Infinity`, and every comparison with NaN is False, so a
    NaN `iat` would pass both freshness checks for ever: those constants are refused, and
    so is any `iat` that is not a finite int or float (`True` is an int to `isinstance`).
    """
    claims = json.loads(raw, parse_constant=_no_constant)
    if not isinstance(claims, dict):
        raise ValueError("the claims are not an object")
    method, dig, iat, jti = claims["m"], claims["d"], claims["iat"], claims["jti"]
    if not (type(method) is str and type(dig) is str and type(jti) is str and 8 <= len(jti) <= 128):
        raise ValueError("a claim has the wrong type")
    if type(iat) not in (int, float) or not math.isfinite(iat):
        raise ValueError("iat is not a finite number")
    return method, dig, float(iat), jti


def verify(key: bytes, header: str | None, body: bytes, message: Any, replay: ReplayCache,
           *, now: float | None = None) -> None:
    """Raise `ProofRejected` unless `header` is a fresh, unused proof for exactly `body`."""
    now = time.time() if now is None else now
    if not header:
        raise ProofRejected("missing", f"the message has no {HEADER} header")
    if len(header) > MAX_PROOF_CHARS or header.count(".") != 1:
        raise ProofRejected("malformed", f"the {HEADER} header is not <claims>.<mac>")
    encoded, mac_text = header.split(".")
    try:
        given = unb64(mac_text)
        method, dig, iat, jti = _claims(unb64(encoded))
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        raise ProofRejected("malformed", f"the {HEADER} header cannot be read") from None
    if not same(given, _mac(key, b"proof", encoded.encode())):
        raise ProofRejected("forged", "the proof's MAC does not match this session's key")
    age = now - iat / 1000
    if age > WINDOW_S:
        raise ProofRejected("expired", f"the proof was issued {age:.0f} s ago (window {WINDOW_S:.0f} s)")
    if age < -SKEW_S:
        raise ProofRejected("future", f"the proof is dated {-age:.0f} s in the future")
    if method != method_of(message):
        raise ProofRejected(
            "wrong-method", f"the proof is for {method or 'a response'!r}, the message is "
            f"{method_of(message) or 'a response'!r}"
        )
    if not same(dig.encode(), digest(body).encode()):
        raise ProofRejected("wrong-digest", "the proof's digest does not match the message body")
    if not replay.first_use(jti, now):
        raise ProofRejected("replayed", "this proof was already used")
