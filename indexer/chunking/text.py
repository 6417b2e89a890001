"""Chunkers for files without a grammar: Markdown by headings, everything else by lines."""

from __future__ import annotations

import re

from indexer.chunking.fit import CountTokens, line_windows
from indexer.core.types import Chunk, ChunkedFile, Symbol

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def chunk_markdown(rel_path: str, lines: list[str], count_tokens: CountTokens, budget: int) -> ChunkedFile:
    """One chunk per section (split further if long); headings become `section` symbols."""
    sections: list[tuple[int, int, list[str]]] = []  # start line, level, heading chain
    chain: list[tuple[int, str]] = []
    symbols: list[Symbol] = []
    in_fence = False
    for n, line in enumerate(lines, start=1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m:
            level = len(m.group(1))
            chain = [(lv, t) for lv, t in chain if lv < level] + [(level, m.group(2))]
            sections.append((n, level, [t for _, t in chain]))
            container = " > ".join(t for _, t in chain[:-1]) or None
            symbols.append(Symbol(m.group(2), "section", container, n, n, line.index(m.group(2))))
    starts = [1] + [s for s, _, _ in sections if s != 1]
    chains = {s: c for s, _, c in sections}
    chunks: list[Chunk] = []
    for i, s in enumerate(starts):
        e = (starts[i + 1] - 1) if i + 1 < len(starts) else len(lines)
        heading = chains.get(s)
        header = rel_path + (f"\n{' > '.join(heading)}" if heading else "")
        chunks += line_windows(header, lines, s, e, count_tokens, budget,
                               heading[-1] if heading else None, "section" if heading else None)
    # A section's end is the line before the next section of the same or a higher level.
    ends: list[Symbol] = []
    for i, sym in enumerate(symbols):
        level = sections[i][1]
        end = next((sections[j][0] - 1 for j in range(i + 1, len(sections)) if sections[j][1] <= level), len(lines))
        ends.append(Symbol(sym.name, sym.kind, sym.container, sym.start_line, end, sym.start_col))
    return ChunkedFile("markdown", tuple(chunks), tuple(ends))


def chunk_lines(rel_path: str, language: str, lines: list[str], count_tokens: CountTokens, budget: int) -> ChunkedFile:
    """Line windows for text with no grammar (config, data, unknown languages)."""
    if not lines:
        return ChunkedFile(language, (), ())
    return ChunkedFile(language, tuple(line_windows(rel_path, lines, 1, len(lines), count_tokens, budget)), ())
