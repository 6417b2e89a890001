"""Keep the LSP stream on stdout safe from native code that prints to file descriptor 1."""

from __future__ import annotations

import os
import sys
from typing import BinaryIO


def claim_stdout() -> BinaryIO:
    """Return a private stream on the real stdout and point fd 1 (and `sys.stdout`) at stderr.

    llama.cpp and other native libraries write to fd 1 directly; on a stdio LSP connection a
    single stray byte corrupts the stream. After this call only the returned stream reaches
    the client.
    """
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "wb")
