"""One daemon per workspace, shared by editors (through `forge-indexer lsp`) and the CLI.

Real everything: pytest-lsp clients start the real `python -m server`, which relays to a
real daemon holding its secret in a real gnome-keyring (tests/keyring.sh); the CLI runs
as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from server.auth.proof import b64
from server.daemon.client import find_daemon
from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import cli, daemon_paths, env, running_daemon, wait_for
from tests.e2e.helpers import call, names, search, start, stop, wait_indexed

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("server_env")]
async_test = pytest.mark.asyncio(loop_scope="function")


def polyglot(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    return ws


async def editor(ws: Path, name: str = "visual_studio_code") -> LanguageClient:
    """An editor's server on the folder `ws` (it hands over to the shared daemon)."""
    return await start(ws.parent, (ws.name,), name)


close = stop


def require_keyring() -> None:
    from server.auth.secret import select_backend

    try:
        select_backend()
    except Exception as exc:
        pytest.fail(f"these tests need a real Secret Service (run them through tests/run.sh): {exc}")


@async_test
async def test_two_editors_and_the_cli_share_one_daemon(tmp_path: Path) -> None:
    require_keyring()
    ws = polyglot(tmp_path)
    paths, log = daemon_paths(ws)
    first = await editor(ws)
    second = None
    try:
        await wait_indexed(first, roots=1, timeout=300)
        daemon = find_daemon(paths)
        assert daemon is not None, "the editor's server did not start a daemon"
        second = await editor(ws, "neovim")
        status = await wait_indexed(second, roots=1, timeout=60)
        assert status["roots"][0]["chunks"] == status["roots"][0]["vectors"] > 0
        assert "ConfigLoader" in names(await search(second, "load configuration from a file"))
        # The CLI is a third client of the same daemon.
        out = cli("search", "parse a duration like 1h30m", "-w", str(ws), "--json")
        assert json.loads(out.stdout)["results"][0]["path"] == "src/config/loader.py"
        text = log.read_text()
        assert text.count("loaded the embedding model") == 1, text
        assert "is forge-indexer cli" in text
        # Closing one editor leaves the other working.
        await close(first)
        first = None
        assert "ConfigLoader" in names(await search(second, "load configuration from a file"))
        symbols = await second.workspace_symbol_async(types.WorkspaceSymbolParams(query="parse_duration"))
        assert symbols
        assert find_daemon(paths) == daemon
    finally:
        for lsp in (first, second):
            if lsp is not None:
                await close(lsp)


@async_test
async def test_a_killed_daemon_is_replaced_and_the_index_stays_consistent(tmp_path: Path) -> None:
    require_keyring()
    ws = polyglot(tmp_path)
    for i in range(150):  # enough work that the kill lands mid-index
        (ws / f"src/gen_{i}.py").write_text(
            "".join(f"def helper_{i}_{j}(value):\n    \"\"\"Scale value {j} by {i}.\"\"\"\n"
                    f"    return value * {i} + {j}\n\n" for j in range(20))
        )
    paths, _ = daemon_paths(ws)
    lsp = await editor(ws)
    try:
        async def indexing() -> bool:
            roots = (await call(lsp, "forge/status"))["roots"]
            return bool(roots and roots[0]["chunks"])

        deadline = time.monotonic() + 120
        while not await indexing():
            assert time.monotonic() < deadline, "indexing never started"
            await asyncio.sleep(0.05)
        old = find_daemon(paths)
        assert old is not None
        os.kill(old.pid, signal.SIGKILL)
        # The relay starts a new daemon; the editor keeps its session.
        new = wait_for(lambda: (d := find_daemon(paths)) and d.pid != old.pid and d, 60, "a new daemon")
        status = await wait_indexed(lsp, roots=1, timeout=600)
        root = status["roots"][0]
        assert root["chunks"] == root["vectors"] > 500, (root["chunks"], root["vectors"], root)
        found = await lsp.workspace_symbol_async(types.WorkspaceSymbolParams(query="helper_7_3"))
        assert found and found[0].name.endswith("helper_7_3"), found
        assert find_daemon(paths) == new
    finally:
        await close(lsp)
    # The CLI sees the same, consistent index through the new daemon.
    st = json.loads(cli("status", "-w", str(ws), "--json").stdout)
    assert st["chunks"] == st["vectors"] and st["daemon_pid"] == new.pid


@async_test
async def test_rotating_the_secret_reauthenticates_connected_editors(tmp_path: Path) -> None:
    require_keyring()
    ws = polyglot(tmp_path)
    _, log = daemon_paths(ws)
    lsp = await editor(ws)
    try:
        await wait_indexed(lsp, roots=1, timeout=300)
        out = cli("token", "rotate", "-w", str(ws))
        assert "asked 1 connected clients to re-authenticate" in out.stdout, out.stdout
        await asyncio.sleep(0.5)
        assert "ConfigLoader" in names(await search(lsp, "load configuration from a file"))
        text = log.read_text()
        assert "1 connections must re-authenticate" in text
        # The editor's relay answered the new challenge: its connection authenticated twice.
        number = text.split(" is a client")[0].rsplit("connection ", 1)[-1]
        assert text.count(f"connection {number} authenticated") == 2, text[-3000:]
        assert json.loads(cli("status", "-w", str(ws), "--json").stdout)["chunks"] > 0
    finally:
        await close(lsp)


def test_daemon_lifecycle_idle_stop_and_tcp(tmp_path: Path) -> None:
    require_keyring()
    ws = polyglot(tmp_path)
    paths, log = daemon_paths(ws)
    with running_daemon(ws, "--idle-timeout", "2") as d:
        assert d.proc is not None
        out = cli("search", "parse a duration", "-w", str(ws), "--json")
        assert json.loads(out.stdout)["results"] is not None
        d.proc.wait(60)  # stops by itself once idle (after its first index is done)
        assert "no client for" in log.read_text()
        assert find_daemon(paths) is None and not paths.socket.exists()
    with running_daemon(ws, "--tcp", "127.0.0.1:0", "--idle-timeout", "0") as d:
        assert d.endpoint.kind == "tcp" and d.endpoint.address.startswith("127.0.0.1:")
        out = cli("status", "-w", str(ws), "--json")
        assert json.loads(out.stdout)["daemon_pid"] == d.pid
        cli("daemon", "stop", "-w", str(ws))
        assert d.proc is not None and d.proc.wait(30) == 0
    refused = cli("daemon", "-w", str(ws), "--tcp", "0.0.0.0:0", check=False)
    assert refused.returncode == 1 and "loopback" in refused.stderr


def test_no_secret_in_files_logs_or_process_arguments(tmp_path: Path) -> None:
    require_keyring()
    ws = polyglot(tmp_path)
    with running_daemon(ws, "--idle-timeout", "0") as d:
        cli("index", str(ws))
        cli("search", "parse a duration", "-w", str(ws))
        secret = d.secret()
        forms = [secret, b64(secret).encode(), secret.hex().encode(),
                 __import__("base64").b64encode(secret)]
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True).stdout
        assert not any(f in ps for f in forms)
        environ = Path(f"/proc/{d.pid}/environ").read_bytes()
        assert not any(f in environ for f in forms)
        roots = [Path(os.environ["FORGE_INDEXER_STATE_DIR"]), d.paths.run, ws]
        checked = 0
        for root in roots:
            for path in root.rglob("*"):
                if path.is_file() and not path.is_socket():
                    data = path.read_bytes()
                    checked += 1
                    assert not any(f in data for f in forms), f"the secret is in {path}"
        assert checked > 5


def test_a_keyring_daemon_is_never_used_without_its_proof(tmp_path: Path) -> None:
    """A client that cannot read the keyring (here: no D-Bus session) does not fall back to
    peer mode against a daemon whose entry says keyring: it says why, in one line."""
    require_keyring()
    ws = polyglot(tmp_path)
    no_bus = {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-such-bus"}
    with running_daemon(ws, "--idle-timeout", "0") as d:
        assert d.endpoint.auth == "keyring"
        out = cli("status", "-w", str(ws), check=False, extra_env=no_bus)
        assert out.returncode == 1 and out.stdout == "", out
        assert out.stderr.startswith(f"error: a daemon (pid {d.pid}) serves {ws}, but ") and "keyring" in out.stderr
        assert out.stderr.count("\n") == 1
        assert "is forge-indexer cli" not in d.log_text()
        # An editor in the same spot is served in its own process, told so in one short line.
        proc = subprocess.run(
            [sys.executable, "-c", _EDITOR_NOTICE_SCRIPT, str(ws)], capture_output=True, text=True,
            timeout=120, env={**env(), **no_bus},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        messages = json.loads(proc.stdout.strip().splitlines()[-1])
        off = [m for m in messages if "shared daemon off" in m]
        assert len(off) == 1 and len(off[0]) <= 150 and "\n" not in off[0], messages
        assert "is forge-indexer cli" not in d.log_text() and d.log_text().count("authenticated (") == 0


def test_keyrings_alt_file_backends_are_refused_unless_named(tmp_path: Path) -> None:
    """keyrings.alt installed in a throwaway location: its plaintext file backend is refused."""
    target = tmp_path / "alt"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
                          "--no-deps", "keyrings.alt==5.0.2"], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, f"could not install keyrings.alt for this test: {pip.stderr[-1000:]}"
    ws = polyglot(tmp_path)
    alt_env = {"PYTHONPATH": f"{target}{os.pathsep}{env()['PYTHONPATH']}",
               "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent", "HOME": str(tmp_path / "home"),
               "XDG_DATA_HOME": str(tmp_path / "data")}
    chosen = subprocess.run([sys.executable, "-c", "import keyring; print(type(keyring.get_keyring()))"],
                            capture_output=True, text=True, env={**env(), **alt_env})
    assert "keyrings.alt" in chosen.stdout, chosen  # keyring would silently use a file
    # Not named, it is never used: the daemon runs in peer mode, and no secret reaches a file.
    proc = subprocess.Popen([sys.executable, "-m", "server.daemon", "-w", str(ws), "--background",
                             "--idle-timeout", "0"], env={**env(), **alt_env})
    try:
        paths, log = daemon_paths(ws)
        found = wait_for(lambda: find_daemon(paths), 60, "the daemon without a keyring", proc, log)
        assert found.auth == "peer" and "running in peer mode" in log.read_text()
        assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()], "a keyring file was written"
    finally:
        proc.terminate()
        proc.wait(30)
    # Named by the user, it is accepted (and the log says so).
    named = {**alt_env, "FORGE_INDEXER_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    proc = subprocess.Popen([sys.executable, "-m", "server.daemon", "-w", str(ws), "--background",
                             "--idle-timeout", "0"], env={**env(), **named})
    try:
        paths, log = daemon_paths(ws)
        wait_for(lambda: find_daemon(paths), 60, "the daemon with an opted-in file keyring", proc, log)
        assert "because the keyringBackend setting names it" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
    encrypted = {**alt_env, "FORGE_INDEXER_KEYRING_BACKEND": "keyrings.alt.file.EncryptedKeyring"}
    out = cli("daemon", "-w", str(ws), check=False, extra_env=encrypted)
    assert out.returncode == 1 and "asks for a password" in out.stderr


# A minimal editor: initialize, wait for its first messages, print them as JSON.
_EDITOR_NOTICE_SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path
from pytest_lsp import ClientServerConfig
from tests.e2e.helpers import init_params

async def main(ws):
    lsp = await ClientServerConfig(server_command=[sys.executable, "-m", "server"]).start()
    await lsp.initialize_session(init_params(ws.parent, "neovim", roots=(ws.name,)))
    for _ in range(100):
        if lsp.messages:
            break
        await asyncio.sleep(0.1)
    await lsp.shutdown_session()
    await lsp.stop()
    print(json.dumps([m.message for m in lsp.messages]))

asyncio.run(main(Path(sys.argv[1])))
"""
