"""Proofs and framing, without a daemon: every rejection reason and every framing limit."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable

import pytest

from server.auth.proof import (
    ProofRejected,
    ReplayCache,
    client_auth,
    daemon_auth,
    make_proof,
    session_key,
    verify,
)
from server.daemon.framing import MAX_BODY, FramingError, frame, read_message, read_message_sync

KEY = bytes(range(32))
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "forge/search", "params": {"query": "q"}}).encode()
MSG = json.loads(BODY)


def check(proof: str | None, body: bytes = BODY, now: float | None = None, replay: ReplayCache | None = None) -> None:
    verify(KEY, proof, body, json.loads(body), replay if replay is not None else ReplayCache(), now=now)


def reason(fn: Callable[[], None]) -> str:
    with pytest.raises(ProofRejected) as info:
        fn()
    return info.value.reason


def test_a_good_proof_passes_once() -> None:
    replay = ReplayCache()
    proof = make_proof(KEY, "forge/search", BODY)
    check(proof, replay=replay)
    assert reason(lambda: check(proof, replay=replay)) == "replayed"


def test_each_bad_proof_has_its_reason() -> None:
    t = 1_800_000_000.0
    assert reason(lambda: check(None)) == "missing"
    assert reason(lambda: check("x.y.z")) == "malformed"
    assert reason(lambda: check("bm90IGpzb24.AAAA")) == "malformed"
    assert reason(lambda: check(make_proof(b"k" * 32, "forge/search", BODY))) == "forged"
    assert reason(lambda: check(make_proof(KEY, "forge/search", BODY, now=t - 61), now=t)) == "expired"
    assert reason(lambda: check(make_proof(KEY, "forge/search", BODY, now=t + 6), now=t)) == "future"
    assert reason(lambda: check(make_proof(KEY, "forge/status", BODY))) == "wrong-method"
    assert reason(lambda: check(make_proof(KEY, "forge/search", BODY + b" "))) == "wrong-digest"
    # Within the window and the allowed skew, a proof is fine.
    check(make_proof(KEY, "forge/search", BODY, now=t - 59), now=t)
    check(make_proof(KEY, "forge/search", BODY, now=t + 4), now=t)


def test_a_rejected_proof_does_not_use_up_its_id() -> None:
    replay = ReplayCache()
    good = make_proof(KEY, "forge/search", BODY, jti="a" * 32)
    forged = make_proof(b"k" * 32, "forge/search", BODY, jti="a" * 32)
    assert reason(lambda: check(forged, replay=replay)) == "forged"
    check(good, replay=replay)


def test_replay_ids_are_forgotten_after_the_window() -> None:
    replay = ReplayCache(window_s=10)
    assert replay.first_use("id-1", 100.0)
    assert not replay.first_use("id-1", 105.0)
    assert replay.first_use("id-1", 111.0)
    replay.first_use("other", 200.0)
    assert len(replay) == 1  # pruned


def test_handshake_values_differ_per_role_and_per_nonce() -> None:
    secret = b"s" * 32
    a = client_auth(secret, b"n" * 32, b"c" * 32)
    assert a != daemon_auth(secret, b"n" * 32, b"c" * 32)
    assert a != client_auth(secret, b"m" * 32, b"c" * 32)
    assert session_key(secret, b"n" * 32, b"c" * 32) != session_key(secret, b"n" * 32, b"d" * 32)


def read_sync(data: bytes) -> tuple[dict[str, str], bytes] | None:
    return read_message_sync(io.BytesIO(data))


def read_async(data: bytes) -> tuple[dict[str, str], bytes] | None:
    async def run() -> tuple[dict[str, str], bytes] | None:
        reader = asyncio.StreamReader(limit=16 * 1024)
        reader.feed_data(data)
        reader.feed_eof()
        return await read_message(reader)

    return asyncio.run(run())


@pytest.mark.parametrize("read", [read_sync, read_async])
def test_framing_round_trip_and_limits(read: Callable[[bytes], tuple[dict[str, str], bytes] | None]) -> None:
    rd = read
    got = rd(frame(b'{"a":1}', {"Forge-Proof": "p.q"}))
    assert got is not None
    headers, body = got
    assert body == b'{"a":1}' and headers["forge-proof"] == "p.q"
    assert rd(b"") is None
    with pytest.raises(FramingError, match="exceeds the limit"):
        rd(f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode())
    with pytest.raises(FramingError, match="Content-Length"):
        rd(b"Content-Type: x\r\n\r\n{}")
    with pytest.raises(FramingError):
        rd(b"Content-Length: 10\r\n\r\n{}")
    with pytest.raises(FramingError):
        rd(b"\x00\x01garbage without a colon\r\n\r\n")
    with pytest.raises(FramingError, match="too"):
        rd(b"X: " + b"a" * 20000 + b"\r\n\r\n")
