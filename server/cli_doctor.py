"""`forge-indexer doctor`: checks what forge-indexer needs, each with the command that fixes it.

Every check is OK, WARN (works, but something will bite: a model not yet converted, a
watch limit close to the workspace's size) or FAIL (something does not work). Exit status:
0 when all are OK, 1 when any FAILs, 2 when there are only WARNs, so scripts can tell
"broken" from "worth a look".

Doctor only looks: it never converts or downloads a model, never writes to an index (SQLite
is opened read-only), and opens Chroma only in a child process (`python -m indexer.store.health
probe`; a damaged HNSW file can crash the process that opens it), and not at all while a
daemon or another process owns the index. Whether the state folder can be written is
probed with a temporary file, gone at once. Remote engines get one GET each with a timeout.
Credentials are read from the keyring to authenticate those GETs and are never printed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer

from indexer.core.errors import ForgeError
from indexer.core.settings import Settings
from server.cli_common import JsonOpt, StateDir, cli_settings, fail

Status = Literal["ok", "warn", "fail"]
EXIT_CODES = {"ok": 0, "fail": 1, "warn": 2}
#: Seconds for each remote GET (at most; `remoteTimeoutS` if it is shorter).
REMOTE_TIMEOUT_S = 10.0
#: Stop counting a workspace's folders after this many (the limit check only needs a bound).
MAX_DIRS_COUNTED = 1_000_000
MIN_FREE_BYTES = 512 * 1024 * 1024
MIN_INOTIFY_INSTANCES = 64
RECOMMENDED_WATCHES = 524288


@dataclass(frozen=True)
class Finding:
    """One check's result: `fix` is the command (or action) that fixes a WARN or FAIL."""

    check: str
    status: Status
    finding: str
    fix: str | None = None


def exit_code(findings: list[Finding]) -> int:
    """0 all OK, 1 any FAIL, 2 only WARNs."""
    statuses = {f.status for f in findings}
    return 1 if "fail" in statuses else 2 if "warn" in statuses else 0


# --- the checks ---------------------------------------------------------------------------


def check_model(root: Path, settings: Settings) -> Finding:
    """The model resolves (a GGUF file with embeddings, or the bundled weights) — never converted here."""
    from indexer.core.errors import ModelInvalid, ModelNotFound
    from indexer.embed.model import (
        _source_sha256,
        bundled_model_dir,
        resolve_model,
        verify_converted,
    )

    try:
        spec = resolve_model(settings)  # reads a GGUF's header (magic, metadata), nothing more
    except (ModelNotFound, ModelInvalid) as exc:
        return Finding("model", "fail", str(exc), "fix modelPath in your user config, or clear it for the default model")
    except ForgeError as exc:
        return Finding("model", "fail", str(exc), "forge-indexer model")
    if spec.source == "path":
        return Finding("model", "ok", f"{spec.name} ({spec.dim} dims) at {spec.path}")
    try:
        converted = spec.path.is_file() and verify_converted(
            spec.path, _source_sha256(bundled_model_dir() / "model.safetensors")
        )
    except (OSError, ForgeError):
        converted = False
    if converted:
        return Finding("model", "ok", f"{spec.name} (bundled, {spec.dim} dims), converted at {spec.path}")
    return Finding(
        "model", "warn",
        f"{spec.name} is installed but not converted to GGUF yet ({spec.path} is missing or stale); "
        "the first index run converts it (about a minute)",
        f"forge-indexer index {root}",
    )


def check_sqlite(root: Path, state_dir: Path) -> Finding:
    db = state_dir / "index.sqlite"
    if not db.is_file():
        return Finding("sqlite", "warn", f"{root} is not indexed yet (no {db})", f"forge-indexer index {root}")
    from indexer.store.health import quick_check

    problem = quick_check(db, readonly=True)
    if problem is not None:
        return Finding(
            "sqlite", "fail", f"quick_check of {db} failed: {problem}",
            f"forge-indexer index --rebuild {root}",
        )
    size = db.stat().st_size
    return Finding("sqlite", "ok", f"quick_check ok ({db}, {size / 1e6:.1f} MB)")


def check_chroma(root: Path, settings: Settings, state_dir: Path, daemon_pid: int | None) -> Finding:
    """Open the embedded Chroma store in a child process and look a few vectors up."""
    import filelock

    from indexer.store.health import probe_chroma
    from indexer.store.reads import read_probe_samples

    if settings.chroma_url:
        return Finding("chroma", "ok", "vectors are on the Chroma server (see remote-store)")
    chroma = state_dir / "chroma"
    if not chroma.is_dir():
        return Finding("chroma", "ok", "no vector store yet (created by the first index run)")
    if daemon_pid is not None:
        return Finding("chroma", "ok", f"not probed: the daemon (pid {daemon_pid}) owns the store and checks it when it opens it")
    lock = filelock.FileLock(str(state_dir / "lock"), timeout=0)
    try:
        lock.acquire()
    except (filelock.Timeout, OSError):
        return Finding("chroma", "ok", "not probed: another process has the index open (it checks the store itself)")
    try:
        problem = probe_chroma(chroma, read_probe_samples(state_dir / "index.sqlite"))
    finally:
        lock.release()
    if problem is not None:
        return Finding(
            "chroma", "fail", f"the vector store at {chroma} is damaged: {problem}",
            f"forge-indexer index {root}  (opening it quarantines the store and restores it from the "
            f"vector cache; if that fails: forge-indexer index --rebuild {root})",
        )
    return Finding("chroma", "ok", f"opened in a child process and answered ({chroma})")


def check_keyring(settings: Settings) -> Finding:
    """The backend the daemon would keep its secret in (server.auth.secret's own choice)."""
    from server.auth.secret import backend_name, select_backend

    try:
        backend = select_backend(settings.keyring_backend)
    except ForgeError as exc:
        return Finding(
            "keyring", "warn",
            f"no usable keyring: the shared daemon runs in peer mode (private socket and uid check, "
            f"no proofs) ({exc})",
            "install and unlock a Secret Service (gnome-keyring); see docs/security.md",
        )
    return Finding("keyring", "ok", backend_name(backend))


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def count_dirs(root: Path, limit: int = MAX_DIRS_COUNTED) -> int:
    """Folders under `root` a watcher would watch (`.git` and other hidden VCS folders skipped)."""
    count = 0
    for _dirpath, dirnames, _files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".hg", ".svn")]
        count += 1
        if count >= limit:
            break
    return count


def check_inotify(root: Path) -> Finding:
    watches = _read_int("/proc/sys/fs/inotify/max_user_watches")
    instances = _read_int("/proc/sys/fs/inotify/max_user_instances")
    if watches is None:
        return Finding("inotify", "ok", "no inotify limits to check on this system")
    dirs = count_dirs(root)
    finding = f"{dirs} folders to watch; max_user_watches {watches}, max_user_instances {instances}"
    fix_watches = (
        f"sudo sysctl fs.inotify.max_user_watches={max(RECOMMENDED_WATCHES, dirs * 2)} "
        "(and the same line in /etc/sysctl.d/60-inotify.conf to keep it)"
    )
    if dirs >= watches:
        return Finding("inotify", "warn", finding + ": more folders than watches, so the "
                       "watcher falls back to periodic scans", fix_watches)
    if dirs > watches // 2:
        return Finding("inotify", "warn", finding + ": over half the watch limit (other programs "
                       "watch files too)", fix_watches)
    if instances is not None and instances < MIN_INOTIFY_INSTANCES:
        return Finding("inotify", "warn", finding + ": few inotify instances for several daemons and editors",
                       "sudo sysctl fs.inotify.max_user_instances=256")
    return Finding("inotify", "ok", finding)


def check_disk(state_dir: Path) -> Finding:
    """Room for the index, and a state folder that can be created and written at all."""
    from indexer.store.recovery import check_writable

    problem = check_writable(state_dir)  # a probe file that is gone at once: the index is not touched
    if problem is not None:
        return Finding("disk", "fail", problem.finding, problem.fix)
    where = state_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return Finding("disk", "fail", f"cannot read free space at {where}: {exc}",
                       "set FORGE_INDEXER_STATE_DIR (or --state-dir) to a writable folder")
    from indexer.store.recovery import dir_bytes

    size = dir_bytes(state_dir) if state_dir.is_dir() else 0
    finding = f"{free / 1e9:.1f} GB free at {where}; the index takes {size / 1e6:.1f} MB"
    fix = (f"free space on the disk holding {where}, or move the indexes with "
           "FORGE_INDEXER_STATE_DIR / --state-dir")
    if free < max(size, 64 * 1024 * 1024):
        return Finding("disk", "fail", finding + ": not enough room to rebuild it", fix)
    if free < max(2 * size, MIN_FREE_BYTES):
        return Finding("disk", "warn", finding + ": little room for it to grow or be rebuilt", fix)
    return Finding("disk", "ok", finding)


def check_daemon(root: Path, settings: Settings) -> tuple[Finding, int | None]:
    from server.daemon.client import find_daemon
    from server.daemon.paths import paths_for, state_root

    try:
        paths = paths_for(root, settings)
        endpoint = find_daemon(paths)
    except (OSError, ForgeError) as exc:
        return Finding("daemon", "warn", f"cannot read the daemon registry: {exc}",
                       "check XDG_RUNTIME_DIR is set and private"), None
    log = state_root(settings) / "daemon-logs" / f"{paths.id}.log"
    if endpoint is None:
        return Finding("daemon", "ok", "not running (editors and the CLI start it when needed)"), None
    return Finding("daemon", "ok", f"running, pid {endpoint.pid}; log: {log}"), endpoint.pid


def _get(url: str, header: str | None, value: str | None, timeout_s: float) -> tuple[int | None, str]:
    """(status code, the body or the problem) of a GET; never echoes `value`."""
    import httpx

    headers = {header: value} if header and value else {}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}".replace(value or "\0", "***")
    return resp.status_code, resp.text.replace(value or "\0", "***")


def _credential(settings: Settings, name: str) -> tuple[str | None, Finding | None]:
    from server.auth.remote_secrets import read_credential

    try:
        return read_credential(settings, name), None
    except ForgeError as exc:
        return None, Finding(f"remote-{'store' if name == 'chroma' else name}", "fail", str(exc),
                             f"forge-indexer remote-secret set {name}")


def _probe_remote(settings: Settings, name: str, check: str, what: str, url: str, probe_url: str,
                  header: str | None, ok: Callable[[str], str], start_hint: str) -> Finding:
    """GET `probe_url` with the stored credential; a Finding for the answer (or its absence)."""
    value, problem = _credential(settings, name)
    if problem is not None:
        return problem
    status, text = _get(probe_url, header, value, min(REMOTE_TIMEOUT_S, settings.remote_timeout_s))
    if status == 200:
        return Finding(check, "ok", ok(text))
    if status in (401, 403):
        return Finding(check, "fail", f"the {what} at {url} refused the credential (HTTP {status})",
                       f"forge-indexer remote-secret set {name}  (and check {name}AuthHeader)")
    detail = f"HTTP {status}: {text[:200]}" if status is not None else text[:300]
    return Finding(check, "fail", f"no {what} answers at {probe_url} ({detail})", start_hint)


def check_remote_store(settings: Settings) -> Finding | None:
    from indexer.embed.remote import public_url

    if not settings.chroma_url:
        return None
    url = public_url(settings.chroma_url).rstrip("/")
    return _probe_remote(
        settings, "chroma", "remote-store", "Chroma server", url, f"{url}/api/v2/heartbeat",
        settings.chroma_auth_header, lambda _: f"Chroma server at {url} answers its heartbeat",
        "start the server (e.g. `chroma run --host 127.0.0.1 --port 8000`) or fix chromaUrl",
    )


def check_remote_embedder(settings: Settings) -> Finding | None:
    from indexer.embed.remote import endpoint_url, public_url

    if not settings.embedder_url:
        return None
    base = public_url(settings.embedder_url)

    def served(text: str) -> str:
        try:
            ids = [str(m.get("id")) for m in json.loads(text).get("data", [])]
        except (ValueError, AttributeError):
            ids = []
        return f"embeddings server at {base} answers" + (f" (serves {', '.join(ids)})" if ids else "")

    return _probe_remote(
        settings, "embedder", "remote-embedder", "embeddings server", base,
        endpoint_url(base).removesuffix("/embeddings") + "/models", settings.embedder_auth_header, served,
        "start it (e.g. `python -m llama_cpp.server --model MODEL.gguf --embedding true`) or fix embedderUrl",
    )


def run_checks(root: Path, settings: Settings) -> list[Finding]:
    """Every check, in the order they are printed; a check that crashes is a FAIL of its own."""
    from indexer.workspace import state_dir_for

    state_dir = state_dir_for(root, settings)
    daemon, daemon_pid = check_daemon(root, settings)
    checks: list[tuple[str, Callable[[], Finding | None]]] = [
        ("model", lambda: check_model(root, settings)),
        ("sqlite", lambda: check_sqlite(root, state_dir)),
        ("chroma", lambda: check_chroma(root, settings, state_dir, daemon_pid)),
        ("keyring", lambda: check_keyring(settings)),
        ("inotify", lambda: check_inotify(root)),
        ("disk", lambda: check_disk(state_dir)),
        ("daemon", lambda: daemon),
        ("remote-store", lambda: check_remote_store(settings)),
        ("remote-embedder", lambda: check_remote_embedder(settings)),
    ]
    findings: list[Finding] = []
    for name, check in checks:
        try:
            found = check()
        except Exception as exc:  # one broken check does not hide the others
            found = Finding(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}")
        if found is not None:
            findings.append(found)
    return findings


def doctor(
    workspace: Annotated[Path, typer.Option("-w", "--workspace", help="The workspace to check.")] = Path("."),
    json_out: JsonOpt = False,
    state_dir: StateDir = None,
) -> None:
    """Check the model, the index, the keyring, watch limits, disk, the daemon and remote
    engines; print each problem with the command that fixes it. Exit 0: all OK, 1: something
    FAILed, 2: only warnings."""
    root = workspace.expanduser().resolve()
    if not root.is_dir():
        raise fail(f"{root} is not a folder")
    try:
        settings = cli_settings(root, state_dir)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    findings = run_checks(root, settings)
    code = exit_code(findings)
    if json_out:
        typer.echo(json.dumps({"workspace": str(root), "checks": [asdict(f) for f in findings],
                               "exitCode": code}, indent=2))
        raise typer.Exit(code)
    for f in findings:
        typer.echo(f"{f.status.upper():<5} {f.check:<16} {f.finding}")
        if f.fix and f.status != "ok":
            typer.echo(f"{'':<5} {'':<16} fix: {f.fix}")
    summary = {0: "all checks passed", 1: "some checks FAILED", 2: "only warnings"}[code]
    typer.echo(summary)
    raise typer.Exit(code)
