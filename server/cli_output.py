"""What `search`, `context` and `status` print, as text or JSON: one place for both CLI paths.

The full CLI (`server.cli`) and the daemon client that answers without it
(`server.cli_fast`) print through these functions, so a result looks the same whichever
path served it. Standard library only: the fast path must not import the CLI framework.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def error_line(message: str) -> None:
    """The one error line every failing command prints (exit status 1 is the caller's)."""
    _err(f"error: {message}")


def print_search(query: str | None, hits: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        _out(json.dumps({"query": query, "results": hits}, indent=2))
        return
    if not hits:
        _out("no results")
    for h in hits:
        _out(f"{h['score']:.3f}  {h['path']}:{h['start_line']}-{h['end_line']}  {h['symbol'] or ''}")


def print_context(query: str | None, data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _out(json.dumps({"query": query, **data}, indent=2))
        return
    for s in data["snippets"]:
        _out(f"--- {s['path']}:{s['start_line']}-{s['end_line']} (score {s['score']:.3f}, {s['tokens']} tokens)")
        _out(s["text"])
    _err(f"--- {data['tokens_used']}/{data['budget']} tokens")


def print_status(data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _out(json.dumps(data, indent=2))
        return
    keys = ["root", "files", "chunks", "vectors", "symbols", "model", "state_dir", "last_indexed", "last_error"]
    keys += ["revision"] if "revision" in data else []
    keys += [k for k in ("daemon_pid", "paused") if k in data]
    for key in keys:
        _out(f"{key:>13}: {data.get(key)}")
    health = data.get("health") or {}
    events = health.get("events") or []
    last = events[-1] if events and health.get("state", "ok") != "ok" else None
    note = f" ({last['what']}: {last['cause']}, {last['at']})" if last else ""
    _out(f"{'health':>13}: {health.get('state', 'ok')}{note}")
    for name, remote in (data.get("remote") or {}).items():
        why = f" ({remote['lastError']})" if remote.get("breaker") != "closed" and remote.get("lastError") else ""
        _out(f"{name:>13}: {remote.get('url')} breaker {remote.get('breaker')}{why}")
