"""Per-connection rate limiting on the daemon socket: a flooding connection is refused
(-32803, "rate limited ... retry after N ms") while another connection's searches keep
answering fast. Real daemon, real keyring secret, real model, Chroma and SQLite."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from server.auth.proof import make_proof
from server.daemon.framing import frame, read_message
from server.daemon.hub import RATE_LIMITED_ERROR, TokenBucket
from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import Daemon, Raw, running_daemon

pytestmark = [pytest.mark.slow]
async_test = pytest.mark.asyncio(loop_scope="function")
RATE = 10  # requests/s per connection, bursts of 20


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("daemon-rate")
    ws = base / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    saved = {k: os.environ.get(k) for k in ("FORGE_INDEXER_STATE_DIR", "FORGE_INDEXER_RATE_LIMIT_PER_S")}
    os.environ["FORGE_INDEXER_STATE_DIR"] = str(base / "state")
    os.environ["FORGE_INDEXER_RATE_LIMIT_PER_S"] = str(RATE)
    try:
        with running_daemon(ws, "--idle-timeout", "0") as d:
            d.cli("index", str(ws))  # through the daemon (its polling stays under the limit)
            yield d
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(10, 20, clock=lambda: now[0])
    assert all(bucket.take() == 0.0 for _ in range(20))  # the burst
    assert bucket.take() == pytest.approx(0.1)  # then one every 100 ms
    now[0] += 0.35
    assert [bucket.take() == 0.0 for _ in range(4)] == [True, True, True, False]


@async_test
async def test_a_flooding_connection_is_limited_and_another_is_not(daemon: Daemon) -> None:
    flood = await Raw.open(daemon)
    calm = await Raw.open(daemon)
    await flood.initialize(daemon.paths.workspace)
    await calm.initialize(daemon.paths.workspace)
    replies: dict[Any, dict[str, Any]] = {}

    async def flooding() -> None:
        sent = []
        for _ in range(120):  # all at once: far over 10/s with bursts of 20
            body, msg_id = flood.body("forge/search", {"query": "parse a duration", "limit": 5})
            flood.writer.write(frame(body, {"Forge-Proof": make_proof(flood.key, "forge/search", body)}))
            sent.append(msg_id)
        await flood.writer.drain()
        while len(replies) < len(sent):
            got = await asyncio.wait_for(read_message(flood.reader), 120)
            assert got is not None, "the daemon closed the flooding connection"
            msg = json.loads(got[1])
            if msg.get("id") in sent and "method" not in msg:
                replies[msg["id"]] = msg

    calm_latencies: list[float] = []

    async def calm_searches() -> None:
        for _ in range(12):  # 4/s: under the limit
            started = time.monotonic()
            reply = await calm.request("forge/search", {"query": "load the config file", "limit": 5})
            calm_latencies.append(time.monotonic() - started)
            assert "result" in reply and reply["result"]["results"], reply
            await asyncio.sleep(0.25)

    try:
        await asyncio.gather(flooding(), calm_searches())
        refused = [r for r in replies.values() if "error" in r]
        answered = [r for r in replies.values() if "result" in r]
        assert len(refused) >= 60 and len(answered) >= 20, (len(refused), len(answered))
        err = refused[0]["error"]
        assert err["code"] == RATE_LIMITED_ERROR
        assert err["message"].startswith(f"rate limited: {RATE} requests/s per connection; retry after ")
        assert err["data"]["kind"] == "RateLimited" and err["data"]["retryAfterMs"] >= 1
        assert max(calm_latencies) < 5.0, calm_latencies
        print(f"\nrate limit: flood {len(answered)} answered / {len(refused)} refused; calm connection "
              f"max {max(calm_latencies) * 1000:.0f} ms, mean "
              f"{sum(calm_latencies) / len(calm_latencies) * 1000:.0f} ms over {len(calm_latencies)} searches")
        # Still limited, notifications go through: `exit` closes the connection at once.
        body, _ = flood.body("exit", None, request=False)
        await flood.send(body, make_proof(flood.key, "exit", body))
        assert await flood.closed(10)
        assert "is over its rate limit (10 requests/s)" in daemon.log_text()
        # After a pause a new burst is allowed again, on a new connection at once.
        again = await Raw.open(daemon)
        try:
            await again.initialize(daemon.paths.workspace)
            reply = await again.request("forge/search", {"query": "retry with backoff"})
            assert "result" in reply, reply
        finally:
            again.close()
    finally:
        flood.close()
        calm.close()
