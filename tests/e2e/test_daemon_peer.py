"""Without an OS keyring: editors and the CLI still share one daemon, in peer mode.

A plain Linux machine over SSH or in a container has no Secret Service. Here keyring is
left to its own discovery with no D-Bus session to find one (it settles on its `fail`
backend), as on such a machine. Real everything else: headless Neovim and a pytest-lsp
editor start the real `forge-indexer lsp` (`python -m server.cli lsp`), which starts a
real daemon (real model, Chroma, SQLite); the CLI runs as a subprocess; another user is a
real process of uid 65534 (setpriv, so this test runs as root, as CI does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.daemon.client import DaemonClient, DaemonUnavailable, find_daemon
from server.daemon.notice import markers_dir
from server.daemon.notice import text as notice_text
from tests.conftest import FIXTURES, REPO
from tests.e2e.daemon_helpers import cli, daemon_paths, wait_for
from tests.e2e.helpers import names, search, system_nvim, wait_indexed
from tests.e2e.test_daemon_shared import close, editor

pytestmark = [pytest.mark.slow]
async_test = pytest.mark.asyncio(loop_scope="function")

NVIM = system_nvim()
NVIM_SCRIPT = Path(__file__).with_name("nvim_hold.lua")
NOTICE = notice_text("none")

#: A process of another uid posing as a peer-mode daemon: it plays the whole handshake, so
#: only the client's own check of the listener's uid can tell.
SQUATTER = r"""
import json, socket, sys, time
def framed(msg):
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen()
print("up", flush=True)
c, _ = s.accept()
c.sendall(framed({"forge": "hello", "v": 1, "auth": "peer"}))
c.recv(4096)
c.sendall(framed({"forge": "ok", "auth": "peer", "pid": 1}))
time.sleep(10)
"""


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A runtime dir of this test's own, short enough for socket paths (not shared with
    other tests' daemons, whose directory the uid test below opens up)."""
    base = Path(tempfile.mkdtemp(prefix="fx-peer-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "user-state"))  # the notice markers
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    # No Secret Service to be found: keyring's own discovery ends at its fail backend.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv("FORGE_INDEXER_KEYRING_BACKEND", raising=False)


def polyglot(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    return ws


def as_nobody(script: str) -> subprocess.CompletedProcess[str]:
    if os.getuid() != 0:
        pytest.fail("this test switches to uid 65534 with setpriv and must run as root (CI does)")
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


class Neovim:
    """Headless Neovim open on a workspace (tests/e2e/nvim_hold.lua) until released."""

    def __init__(self, ws: Path, tmp_path: Path) -> None:
        assert NVIM is not None, "Neovim is not installed: apt-get install -y neovim (tests/run.sh does it)"
        self.ready, self.release, self.out = tmp_path / "nvim.ready", tmp_path / "nvim.release", tmp_path / "nvim.json"
        env = {**os.environ, "FORGE_TEST_WS": str(ws), "FORGE_TEST_PYTHON": sys.executable,
               "FORGE_TEST_REPO": str(REPO), "FORGE_TEST_READY": str(self.ready),
               "FORGE_TEST_RELEASE": str(self.release), "FORGE_TEST_OUT": str(self.out),
               "XDG_CACHE_HOME": str(tmp_path / "nvim-cache")}
        self.proc = subprocess.Popen([NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {NVIM_SCRIPT}"],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                seen = self.out.read_text() if self.out.exists() else ""
                raise AssertionError(f"Neovim exited ({self.proc.returncode}) before the index was ready: {seen}")
            return self.ready.exists()

        wait_for(ready, timeout, "Neovim's index")

    def close(self) -> dict[str, Any]:
        """Let it search once more and quit; what it saw."""
        self.release.touch()
        try:
            self.proc.wait(120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        assert self.out.exists(), (self.proc.stderr.read() if self.proc.stderr else b"")[-2000:]
        seen: dict[str, Any] = json.loads(self.out.read_text())
        assert self.proc.returncode == 0 and "error" not in seen, seen.get("error")
        return seen


@async_test
async def test_without_a_keyring_editors_and_the_cli_share_one_daemon(tmp_path: Path) -> None:
    ws = polyglot(tmp_path)
    paths, log = daemon_paths(ws)
    nvim: Neovim | None = Neovim(ws, tmp_path)
    second = None
    try:
        assert nvim is not None
        nvim.wait_ready(300)
        entry = paths.read_registry()
        assert entry is not None, "Neovim's `forge-indexer lsp` started no daemon"
        assert (entry["auth"], entry["keyring"], entry["keyringProblem"]) == ("peer", None, "none"), entry
        assert "running in peer mode" in log.read_text()
        # A second editor at the same time: the same daemon, the same index.
        second = await editor(ws, "visual_studio_code")
        status = await wait_indexed(second, roots=1, timeout=60)
        assert status["roots"][0]["chunks"] == status["roots"][0]["vectors"] > 0
        assert "ConfigLoader" in names(await search(second, "load configuration from a file"))
        # The CLI beside both: answered by the daemon, not refused for the index lock.
        out = cli("status", "-w", str(ws), "--json")
        assert json.loads(out.stdout)["daemon_pid"] == entry["pid"], out.stdout
        out = cli("search", "parse a duration like 1h30m", "-w", str(ws), "--json")
        assert json.loads(out.stdout)["results"][0]["path"] == "src/config/loader.py"
        out = cli("index", str(ws))
        assert f"indexed by the daemon (pid {entry['pid']})" in out.stdout, out.stdout + out.stderr
        text = log.read_text()
        assert text.count("loaded the embedding model") == 1, text
        assert text.count("is forge-indexer cli") == 3 and "in use by another" not in text
        listed = cli("daemon", "status").stdout
        assert f"pid {entry['pid']}" in listed and "peer mode (no keyring)" in listed
        assert "clients 3" in listed  # the two editors and this call
        assert "keyring" not in out.stderr
        # Closing one editor leaves the other working; the daemon stays the same.
        seen = nvim.close()
        nvim = None
        assert "ConfigLoader" in [r["symbol"] for r in seen["search"]["results"]], seen
        # The notice: one short line, to the first editor only (once per user).
        shown = [m for m in seen["messages"] if "keyring" in m]
        assert shown == [NOTICE] and len(NOTICE) <= 150, seen["messages"]
        assert not [m for m in second.messages if "keyring" in m.message], second.messages
        assert "ConfigLoader" in names(await search(second, "load configuration from a file"))
        found = find_daemon(paths)
        assert found is not None and found.pid == entry["pid"]
        # Until its marker goes: then the CLI says it, on stderr, once.
        shutil.rmtree(markers_dir())
        assert cli("status", "-w", str(ws)).stderr.strip() == NOTICE
        assert "keyring" not in cli("status", "-w", str(ws)).stderr
    finally:
        if nvim is not None:
            nvim.release.touch()
            nvim.proc.kill()
            nvim.proc.wait()
        if second is not None:
            await close(second)
        if find_daemon(paths) is not None:
            cli("daemon", "stop", "-w", str(ws), check=False)


def test_another_user_is_refused_by_a_peer_mode_daemon_and_its_squatted_socket_by_us(
        tmp_path: Path, run_dir: Path) -> None:
    ws = polyglot(tmp_path)
    paths, log = daemon_paths(ws)
    proc = subprocess.Popen([sys.executable, "-m", "server.daemon", "-w", str(ws), "--background",
                             "--idle-timeout", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = wait_for(lambda: find_daemon(paths), 60, "the peer-mode daemon", proc, log)
        assert endpoint.peer_mode
        sock = endpoint.address
        connect = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            f"try:\n    s.connect({sock!r})\nexcept OSError as e:\n    print('refused', e.errno); sys.exit(0)\n"
            "s.settimeout(10)\n"
            "print('got', len(s.recv(100)))\n"
        )
        # The private dir keeps another user away from the socket...
        out = as_nobody(connect)
        assert out.stdout.startswith("refused 13"), (out.stdout, out.stderr)
        private = paths.run
        os.chmod(run_dir, 0o755)
        os.chmod(private, 0o777)  # ... and opened up by mistake, the uid check still does
        os.chmod(sock, 0o777)
        out = as_nobody(connect)
        assert out.stdout.strip() == "got 0", (out.stdout, out.stderr)
        assert "peer uid 65534 is not the daemon's uid" in log.read_text()
        # A squatter of that uid in the opened dir: a socket and an entry that needs no proof.
        squat = private / "squat.sock"
        listener = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", SQUATTER,
             str(squat)], stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "up"
            forged = private / "squat.json"
            forged.write_text(json.dumps({"pid": listener.pid, "endpoint": f"unix:{squat}", "auth": "peer"}))
            os.chown(forged, 65534, 65534)
            from server.daemon.paths import DaemonPaths

            squatted = DaemonPaths(id="squat", workspace=ws, run=private)
            assert find_daemon(squatted) is None  # an entry another user wrote is not believed
            os.chown(forged, os.getuid(), os.getgid())  # one of ours (say, an old one) naming their socket: refused on connect
            found = find_daemon(squatted)
            assert found is not None and found.peer_mode
            with pytest.raises(DaemonUnavailable, match="held by uid 65534"):
                DaemonClient(found, None)
        finally:
            listener.kill()
            listener.wait()
    finally:
        proc.terminate()
        proc.wait(30)


def test_tcp_without_a_keyring_is_refused(tmp_path: Path) -> None:
    ws = polyglot(tmp_path)
    out = cli("daemon", "-w", str(ws), "--tcp", "127.0.0.1:7996", check=False, timeout=120)
    assert out.returncode == 1, out.stderr
    assert [line for line in out.stderr.splitlines() if line.startswith("error: --tcp needs an OS keyring")]
    paths, _ = daemon_paths(ws)
    assert find_daemon(paths) is None
    # Nothing listens: the registry is the only way to find a daemon, and it is empty.
    assert not list(paths.run.glob("*.json"))

