"""Checking user-given path globs (gitignore syntax) before they reach pathspec.

pathspec accepts patterns git would not match the way a user meant, such as an unclosed
character class (`src/[abc`), which then silently matches nothing. A filter that matches
nothing looks like "no results" to the user; an error that names the pattern is better.
"""

from __future__ import annotations

MAX_GLOB_LENGTH = 1024


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable path glob, or None if it is."""
    if not pattern.strip():
        return "an empty pattern matches nothing"
    if len(pattern) > MAX_GLOB_LENGTH:
        return f"longer than {MAX_GLOB_LENGTH} characters"
    if "\0" in pattern:
        return "contains a NUL character"
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2  # an escaped character is literal
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1  # a leading ']' is part of the class
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            if j >= n:
                return f"'[' at position {i + 1} is never closed (write '\\[' for a literal bracket)"
            i = j + 1
            continue
        i += 1
    return None


def check_globs(patterns: list[str]) -> list[str]:
    """The patterns, unchanged; raises ValueError naming the first unusable one."""
    for p in patterns:
        problem = glob_problem(p)
        if problem is not None:
            raise ValueError(f"bad path glob {p!r}: {problem}")
    return patterns
