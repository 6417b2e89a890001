"""`forge-indexer doctor`: findings, fixes and exit codes, on real SQLite files and real HTTP."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from indexer.core.settings import load_settings
from indexer.workspace import state_dir_for
from server.cli import app

SECRET = "Bearer s3cr3t-never-printed"


@pytest.fixture(scope="module", autouse=True)
def _converted_model() -> None:
    """Doctor never converts; the healthy case needs the default model converted (once per machine)."""
    from indexer.embed.model import ensure_default_gguf

    ensure_default_gguf()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src/a.py").write_text("def a():\n    return 1\n")
    return root


def state_dir(root: Path) -> Path:
    return state_dir_for(root, load_settings(root)[0])


def make_index(root: Path) -> Path:
    """A real (small) SQLite database where the index of `root` lives."""
    db = state_dir(root) / "index.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE files (path TEXT PRIMARY KEY, hash TEXT)")
    conn.executemany("INSERT INTO files VALUES (?, ?)", [(f"f{i}.py", "x" * 40) for i in range(500)])
    conn.commit()
    conn.close()
    return db


def doctor(root: Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, ["doctor", "-w", str(root), "--json"])
    data = json.loads(result.stdout)
    return result.exit_code, {c["check"]: c for c in data["checks"]}, result.stdout


def test_a_healthy_workspace_exits_0(ws: Path) -> None:
    make_index(ws)
    code, checks, _ = doctor(ws)
    assert {name: c["status"] for name, c in checks.items()} == {
        "model": "ok", "sqlite": "ok", "chroma": "ok", "keyring": "ok", "inotify": "ok", "disk": "ok",
        "daemon": "ok",
    }
    assert code == 0
    text = CliRunner().invoke(app, ["doctor", "-w", str(ws)])
    assert text.exit_code == 0 and "all checks passed" in text.stdout
    assert "OK    sqlite" in text.stdout


def test_only_warnings_exit_2(ws: Path) -> None:
    code, checks, _ = doctor(ws)  # never indexed
    assert checks["sqlite"]["status"] == "warn"
    assert checks["sqlite"]["fix"] == f"forge-indexer index {ws}"
    assert code == 2


def test_a_corrupt_index_database_fails_with_the_rebuild_command(ws: Path) -> None:
    db = make_index(ws)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xde\xad" * ((4096 - 100) // 2)  # the header page past the magic string
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    code, checks, _ = doctor(ws)
    assert checks["sqlite"]["status"] == "fail"
    assert checks["sqlite"]["fix"] == f"forge-indexer index --rebuild {ws}"
    assert code == 1
    assert db.read_bytes() == before  # doctor only looks


def test_a_missing_model_path_fails(ws: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_index(ws)
    monkeypatch.setenv("FORGE_INDEXER_MODEL_PATH", str(tmp_path / "gone.gguf"))
    code, checks, _ = doctor(ws)
    assert checks["model"]["status"] == "fail"
    assert "gone.gguf" in checks["model"]["finding"] and checks["model"]["fix"]
    assert code == 1


def test_a_file_that_is_not_gguf_fails(ws: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"NOTGGUF" + bytes(100))
    monkeypatch.setenv("FORGE_INDEXER_MODEL_PATH", str(fake))
    code, checks, _ = doctor(ws)
    assert checks["model"]["status"] == "fail" and code == 1


def test_a_damaged_vector_store_fails_in_the_probe_not_here(ws: Path) -> None:
    make_index(ws)
    chroma = state_dir(ws) / "chroma"
    chroma.mkdir()
    (chroma / "chroma.sqlite3").write_bytes(b"garbage, not a database" * 200)
    code, checks, _ = doctor(ws)
    assert checks["chroma"]["status"] == "fail", checks["chroma"]
    assert "forge-indexer index" in checks["chroma"]["fix"]
    assert code == 1


class _Engine(BaseHTTPRequestHandler):
    """A stand-in Chroma / embeddings server that checks the credential header."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:  # http.server's name for it
        type(self).seen.append(dict(self.headers))
        if self.headers.get("Authorization") != SECRET:
            self.send_response(401)
            self.end_headers()
            return
        body = {"/api/v2/heartbeat": {"nanosecond heartbeat": 1},
                "/v1/models": {"data": [{"id": "all-MiniLM-L6-v2"}]}}.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(json.dumps(body or {}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def engine() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_engines_are_checked_with_their_credential_never_printed(
    ws: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.auth.remote_secrets import store_credential

    make_index(ws)
    monkeypatch.setenv("FORGE_INDEXER_CHROMA_URL", engine)
    monkeypatch.setenv("FORGE_INDEXER_CHROMA_AUTH_HEADER", "Authorization")
    monkeypatch.setenv("FORGE_INDEXER_EMBEDDER_URL", engine + "/v1")
    monkeypatch.setenv("FORGE_INDEXER_EMBEDDER_AUTH_HEADER", "Authorization")
    settings = load_settings(ws)[0]
    # No credential stored yet: both fail and say how to store one.
    code, checks, out = doctor(ws)
    assert checks["remote-store"]["status"] == "fail" and code == 1
    assert checks["remote-store"]["fix"] == "forge-indexer remote-secret set chroma"
    store_credential(settings, "chroma", SECRET)
    store_credential(settings, "embedder", SECRET)
    code, checks, out = doctor(ws)
    assert checks["remote-store"]["status"] == "ok", checks["remote-store"]
    assert checks["remote-embedder"]["status"] == "ok", checks["remote-embedder"]
    assert "all-MiniLM-L6-v2" in checks["remote-embedder"]["finding"]
    assert checks["chroma"]["finding"].startswith("vectors are on the Chroma server")
    assert SECRET not in out and "s3cr3t" not in out
    assert any(h.get("Authorization") == SECRET for h in _Engine.seen)
    # A wrong credential: refused, and still not printed.
    store_credential(settings, "chroma", "Bearer wrong-one")
    code, checks, out = doctor(ws)
    assert checks["remote-store"]["status"] == "fail" and "refused the credential" in checks["remote-store"]["finding"]
    assert "wrong-one" not in out and code == 1


def test_a_dead_remote_store_fails_with_what_to_do(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    make_index(ws)
    monkeypatch.setenv("FORGE_INDEXER_CHROMA_URL", f"http://127.0.0.1:{port}")
    code, checks, _ = doctor(ws)
    assert checks["remote-store"]["status"] == "fail"
    assert "no Chroma server answers" in checks["remote-store"]["finding"]
    assert "chroma run" in checks["remote-store"]["fix"]
    assert code == 1


def test_inotify_limits_against_the_folder_count(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server import cli_doctor

    for i in range(30):
        (ws / f"d{i}").mkdir()
    limits = {"/proc/sys/fs/inotify/max_user_watches": 20, "/proc/sys/fs/inotify/max_user_instances": 128}
    monkeypatch.setattr(cli_doctor, "_read_int", lambda path: limits[path])
    found = cli_doctor.check_inotify(ws)
    assert found.status == "warn" and "more folders than watches" in found.finding
    assert found.fix is not None and "fs.inotify.max_user_watches=" in found.fix
    limits["/proc/sys/fs/inotify/max_user_watches"] = 8192
    assert cli_doctor.check_inotify(ws).status == "ok"
