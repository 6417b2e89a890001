"""The LSP base protocol (headers, blank line, JSON body) with limits checked before reading.

pygls reads whatever Content-Length a peer announces; on a shared endpoint that lets any
connection make the daemon allocate gigabytes. Here a header line, the number of headers
and the body size are capped before anything is read (far lower before the connection
has authenticated: `PREAUTH_MAX_BODY`), and a violation raises `FramingError`, which
closes that one connection.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO

MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 16
#: A request body larger than this is refused (forge requests are small: no file text).
MAX_BODY = 16 * 1024 * 1024
#: Until a connection has authenticated it may only send the handshake answer (about 150
#: bytes): a few KiB each, so a crowd of strangers cannot make the daemon allocate much.
PREAUTH_MAX_BODY = 4 * 1024
PREAUTH_MAX_HEADER_LINE = 1024


class FramingError(Exception):
    """The peer broke the framing (garbage, oversized, truncated): drop the connection."""


Headers = dict[str, str]


def _parse_header(line: bytes, headers: Headers) -> None:
    name, sep, value = line.decode("ascii", "replace").partition(":")
    if not sep or not name.strip():
        raise FramingError(f"not a header line: {line[:40]!r}")
    if len(headers) >= MAX_HEADERS:
        raise FramingError("too many headers")
    headers[name.strip().lower()] = value.strip()


def _length(headers: Headers, max_body: int) -> int:
    raw = headers.get("content-length")
    if raw is None or not raw.isdigit():
        raise FramingError("no valid Content-Length header")
    length = int(raw)
    if length > max_body:
        raise FramingError(f"Content-Length {length} exceeds the limit of {max_body} bytes")
    return length


async def read_message(reader: asyncio.StreamReader, max_body: int = MAX_BODY,
                       max_header_line: int = MAX_HEADER_LINE) -> tuple[Headers, bytes] | None:
    """One message from an asyncio stream; None on a clean end of stream between messages."""
    headers: Headers = {}
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial and not headers:
                return None
            raise FramingError("connection closed inside a header") from None
        except asyncio.LimitOverrunError:
            raise FramingError("header line too long") from None
        if len(line) > max_header_line:
            raise FramingError("header line too long")
        line = line.rstrip(b"\r\n")
        if not line:
            if not headers:
                continue  # tolerate stray blank lines between messages
            break
        _parse_header(line, headers)
    length = _length(headers, max_body)
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FramingError(f"connection closed after {length} announced bytes were not sent") from None
    return headers, body


def read_message_sync(stream: BinaryIO, max_body: int = MAX_BODY) -> tuple[Headers, bytes] | None:
    """The same from a blocking binary stream (an editor's stdin)."""
    headers: Headers = {}
    while True:
        line = stream.readline(MAX_HEADER_LINE + 1)
        if not line:
            if headers:
                raise FramingError("stream closed inside a header")
            return None
        if len(line) > MAX_HEADER_LINE:
            raise FramingError("header line too long")
        line = line.rstrip(b"\r\n")
        if not line:
            if not headers:
                continue
            break
        _parse_header(line, headers)
    length = _length(headers, max_body)
    body = stream.read(length)
    if len(body) != length:
        raise FramingError("stream closed inside a message body")
    return headers, body


def frame(body: bytes, extra: Headers | None = None) -> bytes:
    """Headers + body, ready to write."""
    head = f"Content-Length: {len(body)}\r\n"
    for name, value in (extra or {}).items():
        head += f"{name}: {value}\r\n"
    return head.encode("ascii") + b"\r\n" + body
