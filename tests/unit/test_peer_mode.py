"""Peer mode's client-side checks, without a daemon: the registry entry, the listener's uid,
no downgrade in either direction, and the once-per-user notice."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.daemon import notice
from server.daemon.client import (
    DaemonClient,
    DaemonUnavailable,
    Endpoint,
    auth_message,
    check_listener,
    find_daemon,
)
from server.daemon.framing import frame, read_message_sync
from server.daemon.paths import DaemonPaths


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return folder


def entry(run: Path, **data: object) -> DaemonPaths:
    paths = DaemonPaths(id="abc", workspace=Path("/"), run=run)
    paths.registry.write_text(json.dumps({"pid": os.getpid(), **data}))
    return paths


def test_the_registry_says_the_mode_and_anything_unknown_means_proofs(run: Path) -> None:
    sock = f"unix:{run}/abc.sock"
    assert find_daemon(entry(run, endpoint=sock, auth="peer", keyringProblem="locked")) == Endpoint(
        "unix", f"{run}/abc.sock", os.getpid(), None, "peer", "locked")
    for auth in (None, "keyring", "PEER", "none", 1):
        found = find_daemon(entry(run, endpoint=sock, auth=auth))
        assert found is not None and found.auth == "keyring" and not found.peer_mode


def test_a_peer_entry_is_only_believed_for_a_socket_in_the_private_dir(run: Path, tmp_path: Path) -> None:
    for endpoint in (f"unix:{tmp_path}/elsewhere.sock", "tcp:127.0.0.1:7997"):
        with pytest.raises(DaemonUnavailable, match="outside the private runtime dir"):
            find_daemon(entry(run, endpoint=endpoint, auth="peer"))
    with pytest.raises(DaemonUnavailable, match="never listens on TCP"):
        DaemonClient(Endpoint("tcp", "127.0.0.1:7997", 1, auth="peer"), None)


def test_an_entry_of_another_user_or_a_symlink_is_not_read(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = entry(run, endpoint=f"unix:{run}/abc.sock", auth="peer")
    assert paths.read_registry() is not None
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)  # the file is now someone else's
    assert paths.read_registry() is None
    monkeypatch.undo()
    target = run / "other.json"
    paths.registry.rename(target)
    paths.registry.symlink_to(target)
    assert paths.read_registry() is None


def test_the_client_checks_who_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = socket.socketpair()
    with a, b:
        peer = Endpoint("unix", "/x.sock", 1, auth="peer")
        check_listener(a, peer)  # our own uid
        real_uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
        with pytest.raises(DaemonUnavailable, match=f"held by uid {real_uid}"):
            check_listener(a, peer)
        with pytest.raises(DaemonUnavailable, match="held by uid"):
            check_listener(a, Endpoint("unix", "/x.sock", 1))  # in keyring mode too


def test_no_downgrade_and_no_upgrade_in_the_handshake() -> None:
    keyring_hello = {"forge": "hello", "v": 1, "nonce": "AAAA" * 11, "auth": "keyring"}
    peer_hello = {"forge": "hello", "v": 1, "auth": "peer"}
    with pytest.raises(DaemonUnavailable, match="offers no proof"):
        auth_message(b"s" * 32, peer_hello)
    with pytest.raises(DaemonUnavailable, match="offers no proof"):
        auth_message(b"s" * 32, {"forge": "hello", "v": 1})  # no nonce, no mode: no proof either
    with pytest.raises(DaemonUnavailable, match="asks for a proof"):
        auth_message(None, keyring_hello)
    assert auth_message(None, peer_hello)[0] == {"forge": "auth", "auth": "peer"}
    assert "mac" in auth_message(b"s" * 32, keyring_hello)[0]


@pytest.fixture
def fake_daemon(run: Path) -> Iterator[tuple[Path, list[dict[str, object]], threading.Thread]]:
    """A listener that plays a peer-mode daemon's handshake and records what it got."""
    path = run / "abc.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    got: list[dict[str, object]] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as stream:
            conn.sendall(frame(json.dumps({"forge": "hello", "v": 1, "auth": "peer"}).encode()))
            msg = read_message_sync(stream)
            assert msg is not None
            got.append(json.loads(msg[1]))
            conn.sendall(frame(json.dumps({"forge": "ok", "auth": "peer", "pid": 1}).encode()))
            msg = read_message_sync(stream)
            assert msg is not None
            got.append({"headers": msg[0], "body": json.loads(msg[1])})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, got, thread
    thread.join(5)
    server.close()


def test_a_peer_client_sends_no_proof(
        fake_daemon: tuple[Path, list[dict[str, object]], threading.Thread]) -> None:
    path, got, thread = fake_daemon
    client = DaemonClient(Endpoint("unix", str(path), 1, auth="peer"), None)
    try:
        client.notify("initialized", {})
        thread.join(5)
    finally:
        client.close()
    assert len(got) == 2, "the fake daemon did not get the handshake and one message"
    assert got[0] == {"forge": "auth", "auth": "peer"}
    assert got[1] == {"headers": {"content-length": got[1]["headers"]["content-length"]},  # type: ignore[index]
                      "body": {"jsonrpc": "2.0", "method": "initialized", "params": {}}}


def test_the_notice_is_one_short_line_once_per_user_and_reason(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for reason in [*notice.WHY, None, "something-new"]:
        text = notice.text(reason)
        assert len(text) <= 150 and "\n" not in text and "docs/security.md" in text
    assert notice.once("none") == notice.text("none")
    assert notice.once("none") is None
    assert notice.once("locked") == notice.text("locked")  # a new reason is a new notice
    assert sorted(p.name for p in notice.markers_dir().iterdir()) == ["keyring-locked", "keyring-none"]


def test_a_socket_that_never_connected_has_no_uid_to_trust() -> None:
    """What asyncio hands back when the daemon's queue is full: the kernel says uid -1."""
    with socket.socket(socket.AF_UNIX) as lone:
        check_listener(lone, Endpoint("unix", "/x.sock", 1))  # keyring mode: the proof decides
        with pytest.raises(ConnectionRefusedError, match="did not take the connection"):
            check_listener(lone, Endpoint("unix", "/x.sock", 1, auth="peer"))
