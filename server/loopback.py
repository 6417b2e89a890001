"""`HOST:PORT` on a loopback address: the daemon's `--tcp` and the metrics endpoint.

Both listen for the local user only, so a host is accepted when every address it resolves
to is loopback (`localhost` is fine; a name that also resolves to a LAN address is not,
since the listener would bind whichever comes first). Parsing happens before anything
starts, and every refusal is one line that says what to write instead.
"""

from __future__ import annotations

import ipaddress
import socket

from indexer.core.errors import ForgeError


class LoopbackAddressError(ForgeError):
    """An address is malformed, does not resolve, or is not loopback."""


def split_host_port(text: str, what: str, example_port: int,
                    error: type[ForgeError] = LoopbackAddressError) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6; a bare `:PORT` means 127.0.0.1) → (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise error(f"{what} {text!r}: give HOST:PORT on a loopback address, e.g. 127.0.0.1:{example_port}")
    return host.strip("[]") or "127.0.0.1", int(port)


def loopback_host(host: str, port: int, what: str,
                  error: type[ForgeError] = LoopbackAddressError) -> str:
    """`host` as a numeric loopback address; `error` if it resolves to anything else."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise error(f"{what} {host}:{port}: cannot resolve {host!r} ({why}); use 127.0.0.1:{port}") from None
    addresses = {str(info[4][0]) for info in infos}
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if not addresses or outside:
        raise error(
            f"{what} {host}:{port} resolves to {', '.join(outside) or 'nothing'}, which is not "
            f"loopback: it listens on 127.0.0.0/8 or ::1 only. Use 127.0.0.1:{port}."
        )
    return str(infos[0][4][0])


def parse_loopback(text: str, what: str, example_port: int,
                   error: type[ForgeError] = LoopbackAddressError) -> tuple[str, int]:
    """`HOST:PORT` → (numeric loopback host, port), or `error` saying why not."""
    host, port = split_host_port(text, what, example_port, error)
    return loopback_host(host, port, what, error), port
