"""The daemon's shared endpoint against bad peers: proofs, framing, other users, floods.

One real daemon (real keyring secret in gnome-keyring, real model, Chroma, SQLite) serves
a copy of the polyglot fixture for the whole module; every attack gets its own connection
and the daemon must keep serving the others.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.auth.proof import b64, make_proof, unb64
from server.daemon.framing import frame, read_message
from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import Daemon, Raw, cli, running_daemon

pytestmark = [pytest.mark.slow]
async_test = pytest.mark.asyncio(loop_scope="function")
PROOF_ERROR = -32001


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("daemon-auth")
    ws = base / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    saved = os.environ.get("FORGE_INDEXER_STATE_DIR")
    os.environ["FORGE_INDEXER_STATE_DIR"] = str(base / "state")
    try:
        with running_daemon(ws, "--idle-timeout", "0") as d:
            d.cli("index", str(ws))  # through the daemon: the index is complete from here on
            yield d
    finally:
        if saved is None:
            os.environ.pop("FORGE_INDEXER_STATE_DIR", None)
        else:
            os.environ["FORGE_INDEXER_STATE_DIR"] = saved


async def still_serves(daemon: Daemon) -> None:
    raw = await Raw.open(daemon)
    try:
        await raw.initialize(daemon.paths.workspace)
        reply = await raw.request("forge/search", {"query": "parse a duration like 1h30m"})
        assert reply["result"]["results"], reply
    finally:
        raw.close()


def bad_proof(key: bytes, method: str, body: bytes, **claims: Any) -> str:
    """A proof with chosen claims, correctly MAC'd with `key` (so only the claim is wrong)."""
    good = make_proof(key, method, body)
    data = json.loads(unb64(good.split(".")[0]))
    data.update(claims)
    encoded = b64(json.dumps(data, separators=(",", ":")).encode())
    import hashlib
    import hmac

    mac = hmac.new(key, b"forge-proof-v1\0" + encoded.encode(), hashlib.sha256).digest()
    return f"{encoded}.{b64(mac)}"


@async_test
@pytest.mark.parametrize("case", ["missing", "forged", "expired", "future", "replayed",
                                  "wrong-method", "wrong-digest", "malformed"])
async def test_a_bad_proof_is_refused_and_does_nothing(daemon: Daemon, case: str) -> None:
    raw = await Raw.open(daemon)
    try:
        await raw.initialize(daemon.paths.workspace)
        audits_before = len(daemon.audit_lines())
        # The request a bad proof carries would stop the daemon if it were obeyed.
        body, msg_id = raw.body("forge/daemon", {"action": "stop"})
        now = time.time()
        proof: str | None
        if case == "missing":
            proof = None
        elif case == "forged":
            proof = make_proof(b"\x01" * 32, "forge/daemon", body)
        elif case == "expired":
            proof = make_proof(raw.key, "forge/daemon", body, now=now - 120)
        elif case == "future":
            proof = make_proof(raw.key, "forge/daemon", body, now=now + 120)
        elif case == "wrong-method":
            proof = make_proof(raw.key, "forge/search", body)
        elif case == "wrong-digest":
            other, _ = raw.body("forge/daemon", {"action": "info"})
            proof = make_proof(raw.key, "forge/daemon", other)
        elif case == "malformed":
            proof = "not-a-proof"
        else:  # replayed: a proof that was accepted once, sent again with the same body
            info, info_id = raw.body("forge/daemon", {"action": "info"})
            proof = make_proof(raw.key, "forge/daemon", info)
            await raw.send(info, proof)
            assert "result" in await raw.answer(info_id)
            audits_before = len(daemon.audit_lines())
            body, msg_id = info, info_id
        await raw.send(body, proof)
        reply = await raw.answer(msg_id)
        assert reply["error"]["code"] == PROOF_ERROR, reply
        assert reply["error"]["data"]["reason"] == case, reply
        # One audit line, naming the reason, without any secret material in it.
        time.sleep(0.1)
        new = daemon.audit_lines()[audits_before:]
        assert len(new) == 1 and f"rejected {case}" in new[0], new
        assert b64(daemon.secret()) not in daemon.log_text()
    finally:
        raw.close()
    assert daemon.proc is not None and daemon.proc.poll() is None, "a refused request stopped the daemon"
    await still_serves(daemon)


@async_test
async def test_the_wrong_secret_is_denied_at_connect(daemon: Daemon) -> None:
    from server.daemon.client import DaemonUnavailable

    with pytest.raises(DaemonUnavailable, match="refused"):
        await Raw.open(daemon, secret=b"\x02" * 32)
    assert "audit: denied" in daemon.log_text()
    await still_serves(daemon)


@async_test
async def test_a_client_that_skips_the_proof_is_denied_and_never_downgrades(daemon: Daemon) -> None:
    """A keyring daemon never takes peer mode's answer; a client whose entry says keyring
    never takes a peer-mode hello."""
    from server.daemon.client import DaemonUnavailable, handshake, open_connection

    entry = daemon.paths.read_registry()
    assert entry is not None and entry["auth"] == "keyring" and daemon.endpoint.auth == "keyring"
    reader, writer = await open_connection(daemon.endpoint)
    hello = json.loads((await read_message(reader) or ({}, b"{}"))[1])
    assert hello["auth"] == "keyring" and hello["nonce"]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "forge/search", "params": {"query": "x"}}).encode()
    # Both frames in one send: the daemon denies and closes right after the first, and a
    # second send racing that close fails with a broken pipe before the denial is read.
    writer.write(frame(json.dumps({"forge": "auth", "auth": "peer"}).encode()) + frame(body))
    await writer.drain()
    answer = await read_message(reader)
    assert answer is not None and json.loads(answer[1])["forge"] == "denied", answer
    assert "requires a proof" in json.loads(answer[1])["reason"]
    assert await reader.read() == b""  # closed; the search was never answered
    assert "a client without a proof of the secret" in daemon.log_text()
    # The client side: a socket that offers no challenge although proofs are expected.
    fake = Path(tempfile.mkdtemp(prefix="fx-down-", dir="/tmp")) / "d.sock"

    async def peer_hello(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(frame(json.dumps({"forge": "hello", "v": 1, "auth": "peer"}).encode()))
        await w.drain()
        await r.read()

    server = await asyncio.start_unix_server(peer_hello, path=str(fake))
    try:
        r, w = await asyncio.open_unix_connection(str(fake))
        with pytest.raises(DaemonUnavailable, match="offers no proof"):
            await handshake(r, w, daemon.secret())
        w.close()
    finally:
        server.close()
        shutil.rmtree(fake.parent)
    await still_serves(daemon)


@async_test
async def test_a_message_before_authentication_closes_the_connection(daemon: Daemon) -> None:
    from server.daemon.client import open_connection

    reader, writer = await open_connection(daemon.endpoint)
    await reader.readuntil(b"}")  # the hello
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "forge/search", "params": {"query": "x"}}).encode()
    writer.write(frame(body))
    await writer.drain()
    assert await reader.read() == b""  # closed without an answer
    await still_serves(daemon)


@async_test
@pytest.mark.parametrize("attack", ["10 GB Content-Length", "truncated body", "garbage", "no auth at all"])
async def test_framing_attacks_close_only_that_connection(daemon: Daemon, attack: str) -> None:
    bystander = await Raw.open(daemon)
    await bystander.initialize(daemon.paths.workspace)
    raw = await Raw.open(daemon)
    try:
        if attack == "10 GB Content-Length":
            raw.writer.write(b"Content-Length: 10737418240\r\n\r\n" + b"{" * 1024)
        elif attack == "truncated body":
            raw.writer.write(b"Content-Length: 500\r\n\r\n{\"jsonrpc\": \"2.0\"")
            raw.writer.write_eof()
        elif attack == "garbage":
            # Seeded, and without colons: every complete line is then not a header. Fresh
            # random bytes sometimes split into lines that all parse as headers, with the
            # daemon rightly waiting for the rest of the message (a CI run met that).
            raw.writer.write(random.Random(4096).randbytes(4096).replace(b":", b"") + b"\n")
        await raw.writer.drain()
        if attack == "no auth at all":
            from server.daemon.client import open_connection

            reader, writer = await open_connection(daemon.endpoint)
            await reader.readuntil(b"}")  # the hello; then silence
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 15) == b""
            assert time.monotonic() - started < 10
            writer.close()
        else:
            assert await raw.closed()
        reply = await bystander.request("forge/search", {"query": "parse a duration"})
        assert reply["result"]["results"]
    finally:
        raw.close()
        bystander.close()
    if attack == "10 GB Content-Length":
        assert "exceeds the limit" in daemon.log_text()


def _as_nobody(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60,
    )


def test_another_user_cannot_connect(daemon: Daemon) -> None:
    if os.getuid() != 0:
        pytest.fail("this test switches to uid 65534 with setpriv and must run as root (CI does)")
    sock = daemon.endpoint.address
    script = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        f"try:\n    s.connect({sock!r})\nexcept OSError as e:\n    print('refused', e.errno); sys.exit(0)\n"
        "s.settimeout(10)\n"
        "data=b''\n"
        "try:\n    data=s.recv(100)\nexcept OSError as e:\n    print('error', e)\n"
        "print('got', len(data))\n"
    )
    # First line of defence: the runtime dir is 0700, so the socket cannot even be reached.
    out = _as_nobody(script)
    assert out.stdout.startswith("refused 13"), (out.stdout, out.stderr)
    # Second line: with the directory opened up by mistake, the daemon checks the peer's
    # uid (SO_PEERCRED) and closes the connection before sending anything.
    run_dir = Path(sock).parent
    mode_dir, mode_sock = run_dir.stat().st_mode, Path(sock).stat().st_mode
    try:
        os.chmod(run_dir.parent, 0o755)
        os.chmod(run_dir, 0o755)
        os.chmod(sock, 0o777)
        out = _as_nobody(script)
        assert out.stdout.strip().endswith("got 0"), (out.stdout, out.stderr)
    finally:
        os.chmod(run_dir, mode_dir & 0o777)
        os.chmod(sock, mode_sock & 0o777)
    assert "peer uid 65534 is not the daemon's uid" in daemon.log_text()


@async_test
async def test_a_flood_of_searches_gets_answers_not_errors(daemon: Daemon) -> None:
    """1,000 searches over 50 connections at once: every one answered, none refused."""
    queries = ["parse a duration", "load the config file", "http request handler", "sort items",
               "compute a checksum", "retry with backoff", "render a template", "user model"]
    latencies: list[float] = []
    errors: list[Any] = []

    async def one_connection(n: int) -> None:
        raw = await Raw.open(daemon)
        try:
            await raw.initialize(daemon.paths.workspace)
            bodies = []
            for i in range(20):
                body, msg_id = raw.body("forge/search", {"query": queries[(n + i) % len(queries)], "limit": 5})
                bodies.append((body, msg_id))
            sent: dict[Any, float] = {}
            for body, msg_id in bodies:  # all 20 at once: the hub bounds what it reads ahead
                sent[msg_id] = time.monotonic()
                raw.writer.write(frame(body, {"Forge-Proof": make_proof(raw.key, "forge/search", body)}))
            await raw.writer.drain()
            waiting = set(sent)
            while waiting:  # answers come back in any order
                got = await asyncio.wait_for(read_message(raw.reader), 300)
                assert got is not None, "the daemon closed a flooding connection"
                reply = json.loads(got[1])
                if reply.get("id") in waiting:
                    waiting.discard(reply["id"])
                    latencies.append(time.monotonic() - sent[reply["id"]])
                    if "error" in reply:
                        errors.append(reply["error"])
        finally:
            raw.close()

    started = time.monotonic()
    await asyncio.gather(*(one_connection(n) for n in range(50)))
    elapsed = time.monotonic() - started
    assert not errors, errors[:3]
    assert len(latencies) == 1000
    cuts = statistics.quantiles(latencies, n=100)
    print(f"\nflood: 1000 searches / 50 connections in {elapsed:.1f} s "
          f"({1000 / elapsed:.0f}/s), p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms")
    await still_serves(daemon)


def test_cli_goes_through_the_daemon(daemon: Daemon) -> None:
    before = daemon.log_text().count("is forge-indexer cli")
    out = daemon.cli("search", "parse a duration like 1h30m", "-w", str(daemon.paths.workspace), "--json")
    hits = json.loads(out.stdout)["results"]
    assert hits and hits[0]["path"] == "src/config/loader.py", hits
    status = json.loads(daemon.cli("status", "-w", str(daemon.paths.workspace), "--json").stdout)
    assert status["daemon_pid"] == daemon.pid and status["chunks"] == status["vectors"] > 0
    ctx = json.loads(daemon.cli("context", "parse a duration", "-w", str(daemon.paths.workspace), "--json",
                                "--budget", "300").stdout)
    assert ctx["snippets"] and ctx["tokens_used"] <= 300
    assert daemon.log_text().count("is forge-indexer cli") == before + 3
    # One model load for everything this daemon has served.
    assert daemon.log_text().count("loaded the embedding model") == 1
    listed = json.loads(cli("daemon", "status", "--json").stdout)["daemons"]
    mine = [d for d in listed if d["pid"] == daemon.pid]
    assert mine and mine[0]["workspace"] == str(daemon.paths.workspace) and mine[0]["connections"] >= 1, listed
