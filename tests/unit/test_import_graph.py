"""The import graph of indexer/ and server/ holds the boundaries docs/architecture.md states.

Every import counts: top-level, under `TYPE_CHECKING`, and inside functions (only a
module's `if __name__ == "__main__":` block is left out: it runs when the file is a
script, never when it is imported). `from pkg import name` is an edge to `pkg.name` when
that is a module, else to `pkg` itself (its `__init__`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: indexer/'s layers, lowest first: a stage package (or a top-level module; `__init__` is
#: the package itself) -> layer. A module may import only from its own layer or lower ones.
LAYERS: dict[str, int] = {
    "core": 0,  # errors, value types, settings, limits, protocols: what every stage shares
    "files": 1,  # which files: discovery, ignore rules, secrets, git revisions
    "chunking": 2,  # tree-sitter chunks and the identifier words they are read as
    "embed": 3,  # the model, the llama.cpp embedder, a remote llama.cpp server
    "store": 4,  # SQLite + Chroma, local or remote, damage and repair, the index catalog
    "search": 5,  # hybrid search, ranking, symbols, context packing
    "pipeline": 6, "workspace": 6, "__init__": 6,  # one index run; the facade
}  # fmt: skip

#: Upward edges that exist today, each to be removed when the edge is fixed (the test
#: fails when one of these no longer exists, so the list cannot go stale).
KNOWN_UPWARD: set[tuple[str, str]] = set()

#: What server/ may import from indexer/: docs/architecture.md, "Packages" (keep the two
#: in step). The facade and the core, for every module of server/ ...
SERVER_MAY_IMPORT = {
    "indexer",  # the facade's re-exports
    "indexer.workspace",  # the facade itself (`Workspace`, `CancelToken`)
    "indexer.core.types",
    "indexer.core.errors",
    "indexer.core.settings",
    "indexer.core.limits",
    "indexer.core.locations",
    "indexer.core.processes",
    "indexer.core.metrics",
    "indexer.core.globs",
    "indexer.core.workspace_api",  # the protocol every workspace satisfies
    "indexer.core.protocols",  # Cancellable, for the remote workspace
    "indexer.files.discover",  # the watcher's ignore rules
}
#: ... and the stage modules that the CLI's diagnostics (doctor, explain, indexes, model) look
#: into, and the index worker's one call into the store's damage decisions.
CLI_TOOLS_MAY_IMPORT = {
    "server.jobs": {"indexer.store.recovery"},
    "server.cli": {"indexer.embed.model"},
    "server.cli_doctor": {
        "indexer.embed.model",
        "indexer.store.health",
        "indexer.store.recovery",
        "indexer.embed.remote",
        "indexer.store.reads",
    },
    "server.cli_explain": {"indexer.files.ignore", "indexer.files.secret_scan"},
    "server.cli_indexes": {"indexer.store.catalog"},
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ("indexer", "server"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_main_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        stack.extend(child for child in ast.iter_child_nodes(node) if not _is_main_block(child))
    return out


def _targets(name: str, path: Path) -> set[str]:
    """The project modules that module `name` imports."""
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                mod = alias.name
                while mod and mod not in MODULES:
                    mod = mod.rpartition(".")[0]
                if mod:
                    found.add(mod)
            continue
        base = node.module or ""
        if node.level:
            here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            here = here[: len(here) - node.level + 1]
            base = ".".join(here + ([node.module] if node.module else []))
        for alias in node.names:
            if f"{base}.{alias.name}" in MODULES:
                found.add(f"{base}.{alias.name}")
            elif base in MODULES:
                found.add(base)
    found.discard(name)
    return found


GRAPH = {name: _targets(name, path) for name, path in MODULES.items()}


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def _circles(package: str) -> list[list[str]]:
    """The import circles (strongly connected components of 2+ modules) inside `package`."""
    nodes = sorted(m for m in GRAPH if _in(package, m))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the graph is a few hundred nodes
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if not _in(package, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return circles


def layer_of(module: str) -> int:
    """`module`'s layer from LAYERS (the longest matching name or package prefix)."""
    short = "__init__" if module == "indexer" else module.removeprefix("indexer.")
    parts = short.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name}")


def upward_edges() -> set[tuple[str, str]]:
    return {
        (src, dst)
        for src, targets in GRAPH.items()
        if _in("indexer", src)
        for dst in targets
        if _in("indexer", dst) and layer_of(dst) > layer_of(src)
    }


def test_the_graph_sees_every_kind_of_import() -> None:
    """A guard on the parser: a module-level, a TYPE_CHECKING and a function-level edge."""
    assert "indexer.core.errors" in GRAPH["indexer.workspace"]
    assert "server.runtime" in GRAPH["server.progress"]  # under TYPE_CHECKING
    assert "server.session" in GRAPH["server.server"]  # inside close_all()
    assert "indexer.core.metrics" in GRAPH["server.jobs"]  # `from indexer.core import metrics`


def test_indexer_never_imports_server() -> None:
    edges = sorted(
        (s, d) for s, ts in GRAPH.items() if _in("indexer", s) for d in ts if _in("server", d)
    )
    assert edges == []


@pytest.mark.parametrize("package", ["indexer", "server"])
def test_no_import_circle(package: str) -> None:
    assert _circles(package) == []


def test_every_indexer_module_has_a_layer() -> None:
    for module in GRAPH:
        if _in("indexer", module):
            layer_of(module)


def test_indexer_has_no_upward_edge_but_the_known_ones() -> None:
    found = upward_edges()
    new = sorted(found - KNOWN_UPWARD)
    assert new == [], "upward imports (a lower layer importing a higher one): " + ", ".join(
        f"{s} -> {d}" for s, d in new
    )
    gone = sorted(KNOWN_UPWARD - found)
    assert gone == [], "fixed; remove from KNOWN_UPWARD: " + ", ".join(
        f"{s} -> {d}" for s, d in gone
    )


def test_server_imports_only_what_the_architecture_doc_allows() -> None:
    bad = sorted(
        (src, dst)
        for src, targets in GRAPH.items()
        if _in("server", src)
        for dst in targets
        if _in("indexer", dst)
        and dst not in SERVER_MAY_IMPORT | CLI_TOOLS_MAY_IMPORT.get(src, set())
    )
    assert bad == [], "server/ imports beyond docs/architecture.md's boundary: " + ", ".join(
        f"{s} -> {d}" for s, d in bad
    )
