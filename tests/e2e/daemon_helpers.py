"""Helpers for the daemon tests: start a real daemon, talk to it raw, read its log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.core.settings import load_settings
from server.auth import secret as keyring_secret
from server.auth.proof import make_proof
from server.daemon.client import Endpoint, find_daemon, handshake, open_connection
from server.daemon.framing import frame, read_message
from server.daemon.paths import DaemonPaths, log_file, paths_for
from tests.conftest import REPO


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args: str, check: bool = True, timeout: float = 300, extra_env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True,
                         timeout=timeout, env={**env(), **(extra_env or {})})
    if check and out.returncode != 0:
        raise AssertionError(f"forge-indexer {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out


@dataclass
class Daemon:
    paths: DaemonPaths
    proc: subprocess.Popen[bytes] | None
    log: Path
    state: str  # its state dir: CLI calls must name it to find this daemon

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--state-dir", self.state, **kw)

    @property
    def endpoint(self) -> Endpoint:
        found = find_daemon(self.paths)
        assert found is not None, f"no daemon registered for {self.paths.workspace}; log: {self.log_text()[-2000:]}"
        return found

    @property
    def pid(self) -> int:
        return self.endpoint.pid

    def secret(self) -> bytes:
        backend = keyring_secret.select_backend()
        value = keyring_secret.read_secret(self.paths.id, backend)
        assert value is not None
        return value

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def audit_lines(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if "forge.audit" in line]


def daemon_paths(ws: Path) -> tuple[DaemonPaths, Path]:
    settings, _ = load_settings(ws)
    paths = paths_for(ws, settings)
    return paths, log_file(settings, paths.id)


def wait_for(check: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise AssertionError(f"{what}: the daemon exited with {proc.returncode}; log: {text}")
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


@contextmanager
def running_daemon(ws: Path, *args: str) -> Iterator[Daemon]:
    """`forge-indexer daemon -w WS` in the background until the block ends."""
    paths, log = daemon_paths(ws)
    proc = subprocess.Popen([sys.executable, "-m", "server.daemon", "-w", str(ws), "--background", *args],
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: find_daemon(paths), 60, "daemon start", proc, log)
        yield Daemon(paths, proc, log, os.environ["FORGE_INDEXER_STATE_DIR"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Raw:
    """An authenticated connection that sends whatever proof a test wants."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes) -> None:
        self.reader, self.writer, self.key = reader, writer, key
        self._next = 0

    @classmethod
    async def open(cls, daemon: Daemon, secret: bytes | None = None) -> Raw:
        reader, writer = await open_connection(daemon.endpoint)
        key = await handshake(reader, writer, secret or daemon.secret())
        return cls(reader, writer, key)

    def body(self, method: str | None, params: Any = None, *, request: bool = True) -> tuple[bytes, Any]:
        msg: dict[str, Any] = {"jsonrpc": "2.0"}
        msg_id = None
        if request:
            self._next += 1
            msg_id = msg["id"] = self._next
        if method is not None:
            msg["method"] = method
            msg["params"] = params
        return json.dumps(msg).encode(), msg_id

    async def send(self, body: bytes, proof: str | None) -> None:
        self.writer.write(frame(body, {"Forge-Proof": proof} if proof is not None else None))
        await self.writer.drain()

    async def request(self, method: str, params: Any = None, *, proof: str | None = "auto",
                      timeout: float = 60) -> dict[str, Any]:
        body, msg_id = self.body(method, params)
        await self.send(body, make_proof(self.key, method, body) if proof == "auto" else proof)
        return await self.answer(msg_id, timeout)

    async def answer(self, msg_id: Any, timeout: float = 60) -> dict[str, Any]:
        while True:
            got = await asyncio.wait_for(read_message(self.reader), timeout)
            assert got is not None, "the daemon closed the connection"
            msg = json.loads(got[1])
            if msg.get("id") == msg_id and "method" not in msg:
                return msg  # type: ignore[no-any-return]

    async def initialize(self, ws: Path) -> None:
        reply = await self.request("initialize", {"processId": None, "rootUri": ws.as_uri(), "capabilities": {}})
        assert "result" in reply, reply
        body, _ = self.body("initialized", {}, request=False)
        await self.send(body, make_proof(self.key, "initialized", body))

    async def closed(self, timeout: float = 10) -> bool:
        """True once the daemon has closed this connection."""
        try:
            while True:
                got = await asyncio.wait_for(read_message(self.reader), timeout)
                if got is None:
                    return True
        except (ConnectionError, asyncio.IncompleteReadError):
            return True
        except Exception as exc:
            if type(exc).__name__ == "FramingError":
                return True
            raise

    def close(self) -> None:
        self.writer.close()
