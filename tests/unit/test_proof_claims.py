"""Proof claims of the wrong type or a non-finite issued-at are refused as malformed.

A NaN `iat` compares False with everything, so it used to pass both freshness checks and
be accepted again once the replay cache had forgotten its id. Each proof here is MAC'd
with the right key, so only the claim is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from server.auth.proof import ProofRejected, ReplayCache, b64, digest, verify

KEY = bytes(range(32))
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "forge/search", "params": {"query": "q"}}).encode()
NOW = 1_800_000_000.0


def signed(claims_json: str) -> str:
    encoded = b64(claims_json.encode())
    mac = hmac.new(KEY, b"forge-proof-v1\0" + encoded.encode(), hashlib.sha256).digest()
    return f"{encoded}.{b64(mac)}"


def claims(**change: Any) -> dict[str, Any]:
    return {"m": "forge/search", "d": digest(BODY), "iat": int(NOW * 1000), "jti": "0123456789abcdef", **change}


def check(header: str, replay: ReplayCache | None = None, now: float = NOW) -> None:
    verify(KEY, header, BODY, json.loads(BODY), replay or ReplayCache(), now=now)


def test_a_well_typed_proof_still_passes() -> None:
    check(signed(json.dumps(claims())))
    check(signed(json.dumps(claims(iat=NOW * 1000 + 0.5))))  # a float iat is a number too


@pytest.mark.parametrize("iat", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_issued_at_is_malformed(iat: str) -> None:
    raw = json.dumps(claims(iat=0)).replace('"iat": 0', f'"iat": {iat}')
    with pytest.raises(ProofRejected) as info:
        check(signed(raw))
    assert info.value.reason == "malformed"


def test_a_nan_proof_is_not_accepted_after_the_replay_window() -> None:
    """The attack of issue 21: replay a NaN-dated proof once its id is forgotten."""
    replay = ReplayCache()
    raw = json.dumps(claims(iat=0)).replace('"iat": 0', '"iat": NaN')
    for later in (0.0, 70.0, 3600.0):
        with pytest.raises(ProofRejected):
            check(signed(raw), replay, now=NOW + later)


@pytest.mark.parametrize("field, value", [
    ("iat", True), ("iat", "1800000000000"), ("iat", None), ("iat", [1]),
    pytest.param("iat", 10**400, id="iat-a-400-digit-int"),
    ("m", 1), ("m", None), ("m", ["forge/search"]),
    ("d", 5), ("d", {"x": 1}),
    ("jti", 12345678901), ("jti", None), ("jti", "short"), ("jti", "x" * 200),
])
def test_every_claim_of_the_wrong_type_is_malformed(field: str, value: Any) -> None:
    with pytest.raises(ProofRejected) as info:
        check(signed(json.dumps(claims(**{field: value}))))
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("raw", ["[1, 2, 3]", '"claims"', "7", "null", '{"m": "x"}', "[" * 300 + "]" * 300])
def test_claims_that_are_not_an_object_are_malformed(raw: str) -> None:
    with pytest.raises(ProofRejected) as info:
        check(signed(raw))
    assert info.value.reason == "malformed"
