"""Usage errors as one line: `error: ...` and exit status 1, like every other CLI error.

typer (click) would print a boxed usage panel and exit 2 for a bad option value, a missing
argument or an unknown option. `run_app` runs the app without click's standalone handling
and turns those into the line docs/cli.md promises, with the command's `--help` to try.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

PROG = "forge-indexer"


def usage_message(exc: Any) -> str:
    """The one line for a click usage error: its message, lower-cased like ours, plus a hint."""
    text = " ".join(str(exc.format_message()).split())
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    text = text.rstrip(".")
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or PROG
    return f"{text} (try `{command} --help`)"


def run_app(app: typer.Typer, argv: Sequence[str] | None) -> int:
    """Run the typer app on `argv`; the exit status (usage errors printed as one line, 1)."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        result = app(args=list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=False)
    except NoArgsIsHelpError as exc:  # a bare `forge-indexer` (or command group): its help
        sys.stdout.write(exc.format_message().rstrip("\n") + "\n")
        return 0
    except UsageError as exc:
        sys.stderr.write(f"error: {usage_message(exc)}\n")
        return 1
    except ClickException as exc:  # e.g. a file option that cannot be opened
        sys.stderr.write(f"error: {' '.join(exc.format_message().split())}\n")
        return 1
    except typer.Abort:  # Ctrl-C or end of input at a confirmation prompt
        sys.stderr.write("error: aborted\n")
        return 1
    return result if isinstance(result, int) else 0
