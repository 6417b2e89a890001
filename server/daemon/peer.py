"""Who is at the other end of a local connection, as the kernel says.

Both sides use it: the daemon refuses a connection from another uid before sending it
anything, and a client refuses a daemon socket whose listener is another uid (a squatter
in a runtime dir that was opened up by mistake). This module is imported on the CLI's
fast path: standard library only.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path
from typing import Any

#: A daemon's `auth` (its registry entry, its hello): clients prove the keyring secret, or
#: are let in on their uid alone (peer mode: no usable keyring). Anything else is "keyring".
AUTH_KEYRING = "keyring"
AUTH_PEER = "peer"

#: Whether this platform tells a Unix socket's peer uid (Linux `SO_PEERCRED`). Without it
#: the daemon cannot run without a keyring: the uid check would be its only guard.
HAS_PEERCRED = hasattr(socket, "SO_PEERCRED")


def peer_credentials(sock: socket.socket) -> tuple[int | None, int | None]:
    """(pid, uid) of the process at the other end, where the OS tells us.

    For a client's socket this is the process that called listen() on the daemon's side. A
    socket that is not connected has none (the kernel says uid -1): (None, None). That
    happens to asyncio's connect when the listener's queue is full: it hands back a socket
    that never connected.
    """
    if sock.family == socket.AF_UNIX and HAS_PEERCRED:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return None, None
        pid, uid, _gid = struct.unpack("3i", raw)
        return (pid, uid) if uid != -1 else (None, None)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        return None, _tcp_peer_uid(sock)
    return None, None


def _tcp_peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the client end of a loopback TCP connection (Linux `/proc/net/tcp*`)."""
    peer, local = sock.getpeername(), sock.getsockname()

    def hex_addr(addr: tuple[Any, ...]) -> str:
        ip = ipaddress.ip_address(addr[0])
        packed = ip.packed
        if ip.version == 4:
            text = packed[::-1].hex().upper()
        else:  # /proc prints IPv6 as four little-endian 32-bit words
            text = "".join(packed[i : i + 4][::-1].hex().upper() for i in range(0, 16, 4))
        return f"{text}:{addr[1]:04X}"

    want = (hex_addr(peer), hex_addr(local))
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and (fields[1], fields[2]) == want:
                return int(fields[7])
    return None
