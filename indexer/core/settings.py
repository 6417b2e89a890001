"""The one typed settings model, and how its sources are layered.

Order (later wins): defaults < user config file < workspace config file < environment
(`FORGE_INDEXER_*`) < explicit overrides (CLI flags, LSP initializationOptions /
workspace configuration). Keys are snake_case in Python and camelCase on the wire; both
spellings are accepted everywhere. Invalid values never stop the daemon: `load_settings`
drops them, keeps the default and returns a warning saying why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from indexer.core.locations import (  # noqa: F401  (re-exported: where these always were)
    APP_NAME,
    ENV_PREFIX,
    WORKSPACE_CONFIG_FILE,
    default_cache_root,
    default_state_root,
    user_config_file,
)
from indexer.core.locations import read_toml as _read_toml

#: Keys a file inside the workspace may not set: a cloned repository must never decide
#: which native model file llama.cpp parses or where a copy of the code is written.
#: The same for the remote engines and exporters: a cloned repository must not be able to
#: send its reader's code, or telemetry about it, to a server of its choosing.
USER_ONLY_KEYS = frozenset({
    "model_path", "state_dir", "keyring_backend",
    "chroma_url", "chroma_auth_header", "team_index", "embedder_url", "embedder_auth_header",
    "embedder_model", "metrics_address", "otel_exporter",
    # How long a daemon lives and how hard it may be driven are the user's to decide, and
    # so is reading a file that looks like it holds a credential.
    "daemon_idle_timeout_s", "rate_limit_per_s", "index_secret_files", "max_threads", "low_priority",
})


class Settings(BaseModel):
    """All user-tunable settings, fully defaulted."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    # --- model -----------------------------------------------------------------------
    model_path: Path | None = Field(
        default=None,
        description="Path to a GGUF embedding model. Empty: the bundled all-MiniLM-L6-v2, "
        "converted to GGUF on first use.",
    )
    query_prefix: str | None = Field(
        default=None, description="Text put before every query (model-specific; e.g. 'query: ')."
    )
    document_prefix: str | None = Field(
        default=None, description="Text put before every indexed chunk (e.g. 'passage: ')."
    )
    max_tokens: int | None = Field(
        default=None, ge=16, le=8192,
        description=(
            "Largest chunk in model tokens, and the embedder's input cap. Empty: 128 for the bundled "
            "model (it measured better and faster than its trained 256), the model's own limit for a modelPath."
        ),
    )
    embed_tokens: int | None = Field(
        default=None, ge=8, le=8192,
        description=(
            "Tokens of each chunk the model reads (at most maxTokens; queries are not cut). Empty: 80 "
            "for the bundled model (same hybrid quality as 128, 14% less to embed), maxTokens for a modelPath."
        ),
    )
    model_precision: Literal["auto", "f16", "bf16", "f32"] = Field(
        default="auto",
        description=(
            "Weights precision the bundled model is converted to. auto: bf16 when llama.cpp runs on a CPU "
            "with native bf16 (AVX512-BF16; about 1.3x faster, vectors within cosine 0.9999 of f16), "
            "otherwise f16. No effect on a modelPath file."
        ),
    )
    n_threads: int | None = Field(
        default=None, ge=1, le=256, description="CPU threads for embedding. Empty: all physical cores."
    )
    max_threads: int | None = Field(
        default=None, ge=1, le=256,
        description="Most CPU threads indexing may use: the embedder's threads (nThreads above it is "
        "capped). Empty: every CPU this process may run on. Never more than those CPUs.",
    )
    low_priority: bool = Field(
        default=True,
        description="Run the daemon and the editor's server at low priority (nice 10 and the idle I/O "
        "class on Linux, below-normal on Windows), so indexing gives way to everything else.",
    )
    n_gpu_layers: int = Field(
        default=0, ge=-1,
        description="Layers to offload to the GPU (-1: all). Needs a CUDA/Metal build of llama-cpp-python.",
    )
    # --- discovery -------------------------------------------------------------------
    max_file_bytes: int = Field(default=1024 * 1024, ge=1024, description="Files larger than this are skipped.")
    exclude: list[str] = Field(
        default_factory=list, description="Extra gitignore-style patterns to leave out of the index."
    )
    index_secret_files: list[str] = Field(
        default_factory=list,
        description="Gitignore-style patterns of files to index although their name or content "
        "looks like a secret (private keys, credentials, tokens). User settings only.",
    )
    # --- storage ---------------------------------------------------------------------
    state_dir: Path | None = Field(
        default=None,
        description="Where indexes live. Empty: the user state dir (one folder per workspace).",
    )
    # --- query -----------------------------------------------------------------------
    search_limit: int = Field(default=10, ge=1, le=200, description="Default number of search results.")
    context_budget: int = Field(default=2048, ge=64, le=200_000, description="Default token budget for context.")
    # --- daemon ----------------------------------------------------------------------
    debounce_ms: int = Field(default=300, ge=0, le=60_000, description="Quiet time before files changed outside the editor are reindexed (a save waits at most 50 ms).")
    watch: bool = Field(default=True, description="Watch the workspace for changes made outside the editor.")
    index_on_startup: bool = Field(
        default=True,
        description="Index in the background as soon as the server (or the shared daemon) starts. "
        "Off: indexing is paused from the start until Resume Indexing or Reindex; search answers "
        "from the index as it is.",
    )
    shared_daemon: bool = Field(
        default=True,
        description="Editors and the CLI share one daemon per workspace (one index, one model "
        "in memory; needs an OS keyring). Off: each editor gets its own server process.",
    )
    daemon_idle_timeout_s: int = Field(
        default=1800, ge=0, le=7 * 24 * 3600,
        description="Seconds the shared daemon keeps running with no client connected (0: until stopped).",
    )
    reconcile_interval_s: int = Field(
        default=600, ge=0, le=24 * 3600,
        description="Seconds between the daemon's stat-based scans that catch changes the file "
        "watcher missed (0: never).",
    )
    rate_limit_per_s: float = Field(
        default=50.0, ge=0,
        description="Requests per second one connection to the shared daemon may make, in bursts of "
        "twice that (0: no limit).",
    )
    # --- remote engines (scale-out) --------------------------------------------------
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (e.g. http://chroma.internal:8000) that holds the vectors "
        "instead of the embedded store; SQLite stays local. Empty: the embedded store.",
    )
    chroma_auth_header: str | None = Field(
        default=None,
        description="HTTP header sent to the Chroma server (e.g. Authorization); its value is read "
        "from the OS keyring (`forge-indexer remote-secret set chroma`).",
    )
    team_index: str | None = Field(
        default=None,
        description="Name of a collection on the Chroma server shared by several machines indexing one "
        "repository; hits only come from files whose content this machine holds. Needs chromaUrl.",
    )
    embedder_url: str | None = Field(
        default=None,
        description="Base URL of a llama.cpp-compatible embeddings server (OpenAI-style "
        "/v1/embeddings, e.g. http://gpu-box:8080). Empty: embed in-process.",
    )
    embedder_model: str | None = Field(
        default=None, description="Model name sent to the embeddings server. Empty: the local model's name."
    )
    embedder_auth_header: str | None = Field(
        default=None,
        description="HTTP header sent to the embeddings server (e.g. Authorization); its value is read "
        "from the OS keyring (`forge-indexer remote-secret set embedder`).",
    )
    remote_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of each call to a remote store or embedder."
    )
    remote_retries: int = Field(
        default=4, ge=0, le=20,
        description="Retries (exponential backoff with jitter) of a transient remote failure.",
    )
    # --- operations ------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or as JSON objects with a request id."
    )
    metrics_address: str | None = Field(
        default=None,
        description="Loopback address (e.g. 127.0.0.1:9464) where the daemon serves Prometheus "
        "metrics. Empty: no metrics endpoint.",
    )
    otel_exporter: Literal["otlp", "console"] | None = Field(
        default=None,
        description="Export OpenTelemetry spans of index runs and searches (otlp: to "
        "OTEL_EXPORTER_OTLP_ENDPOINT). Empty: off.",
    )
    # --- security --------------------------------------------------------------------
    keyring_backend: str | None = Field(
        default=None,
        description="Full class name of a keyring backend to accept although it is not an OS "
        "keyring (e.g. keyrings.alt.file.PlaintextKeyring). Empty: only OS keyrings.",
    )


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if field.annotation is not None and "list" in str(field.annotation):
            out[name] = [p for p in raw.split(os.pathsep) if p]
        else:
            out[name] = raw
    return out


def _normalise_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Map camelCase or snake_case keys onto field names; unknown keys are kept for warnings."""
    by_alias = {to_camel(n): n for n in Settings.model_fields}
    return {by_alias.get(k, k): v for k, v in data.items()}


def validate_layer(
    data: dict[str, Any], source: str, warnings: list[str], *, trusted: bool = True
) -> dict[str, Any]:
    """Keep the valid keys of one source; each bad or unknown key becomes a warning.

    An untrusted source (the workspace's own config file) may not set `USER_ONLY_KEYS`.
    """
    data = _normalise_keys(data)
    good: dict[str, Any] = {}
    for key, value in data.items():
        if key not in Settings.model_fields:
            warnings.append(f"{source}: unknown setting '{key}' ignored.")
            continue
        if not trusted and key in USER_ONLY_KEYS:
            warnings.append(
                f"{source}: setting '{to_camel(key)}' ignored: a file inside the workspace may not "
                f"choose it. Set it in {user_config_file()}, as {ENV_PREFIX}{key.upper()}, "
                "or in your editor's settings."
            )
            continue
        try:
            Settings.model_validate({key: value})
        except ValidationError as exc:
            msg = exc.errors()[0].get("msg", "invalid value")
            warnings.append(f"{source}: setting '{to_camel(key)}'={value!r} is invalid ({msg}); using the default.")
            continue
        good[key] = value
    return good


def load_settings(
    workspace_root: Path | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Settings, list[str]]:
    """Layer every source into one `Settings`; return it with human-readable warnings."""
    warnings: list[str] = []
    merged: dict[str, Any] = {}
    merged |= validate_layer(_read_toml(user_config_file(), warnings), str(user_config_file()), warnings)
    if workspace_root is not None:
        ws_file = workspace_root / WORKSPACE_CONFIG_FILE
        merged |= validate_layer(_read_toml(ws_file, warnings), str(ws_file), warnings, trusted=False)
    merged |= validate_layer(_from_env(), "environment", warnings)
    if overrides:
        merged |= validate_layer({k: v for k, v in overrides.items() if v is not None}, "client settings", warnings)
    return Settings.model_validate(merged), warnings
