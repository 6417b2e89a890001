"""Resource settings: thread counts (nThreads, maxThreads), weights precision a CPU cannot
speed up, and the low priority of the processes that index."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from indexer.core.settings import Settings, load_settings
from indexer.embed import model
from indexer.embed.model import bundled_precision, effective_threads

CPUS = len(os.sched_getaffinity(0))


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    model._warn_once.cache_clear()


def test_more_threads_than_cpus_are_capped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="indexer.embed.model"):
        assert effective_threads(Settings(n_threads=64)) == CPUS
    assert f"64 embedding threads asked for (nThreads), but {CPUS} CPU" in caplog.text


def test_max_threads_caps_the_embedder(caplog: pytest.LogCaptureFixture) -> None:
    assert effective_threads(Settings(max_threads=1)) == 1
    assert not caplog.text  # the default thread count is not the user's to be warned about
    with caplog.at_level(logging.WARNING, logger="indexer.embed.model"):
        assert effective_threads(Settings(n_threads=2, max_threads=1)) == 1
    assert "allowed by maxThreads" in caplog.text
    assert 1 <= effective_threads(Settings()) <= CPUS


@pytest.mark.parametrize("key", ["MAX_THREADS", "N_THREADS"])
@pytest.mark.parametrize("value", ["0", "10000", "many"])
def test_thread_counts_out_of_range_keep_the_default_and_say_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, key: str, value: str
) -> None:
    monkeypatch.setenv("FORGE_INDEXER_" + key, value)
    settings, warnings = load_settings(None)
    assert getattr(settings, key.lower()) is None
    name = "maxThreads" if key == "MAX_THREADS" else "nThreads"
    assert any(f"'{name}'='{value}' is invalid" in w and "using the default" in w for w in warnings), warnings


def test_a_workspace_file_may_not_set_threads_or_priority(tmp_path: object) -> None:
    from pathlib import Path

    ws = Path(str(tmp_path))
    (ws / ".forge-indexer.toml").write_text("maxThreads = 64\nlowPriority = false\n")
    settings, warnings = load_settings(ws)
    assert settings.max_threads is None and settings.low_priority is True
    assert sum("may not choose it" in w for w in warnings) == 2, warnings


def test_bf16_forced_without_native_support_runs_but_says_it_gains_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(model, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="indexer.embed.model"):
        assert bundled_precision(Settings(model_precision="bf16")) == "bf16"
        assert bundled_precision(Settings(model_precision="auto")) == "f16"
    assert "no native bf16" in caplog.text and "Set modelPrecision to auto" in caplog.text
    caplog.clear()
    monkeypatch.setattr(model, "cpu_has_native_bf16", lambda: True)
    model._warn_once.cache_clear()
    assert bundled_precision(Settings(model_precision="bf16")) == "bf16"
    assert not caplog.text


def test_low_priority_lowers_cpu_and_io_priority_and_can_be_turned_off() -> None:
    code = (
        "import psutil; from server.priority import lower_priority; "
        "print(lower_priority(False)); p = psutil.Process(); print(p.nice()); "
        "print(lower_priority(True)); print(p.nice(), int(p.ionice().ioclass))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith("normal priority") and int(out[1]) == os.nice(0)
    assert "nice 10" in out[2] and "idle I/O class" in out[2]
    nice, ioclass = map(int, out[3].split())
    import psutil

    assert nice >= 10 and ioclass == int(psutil.IOPRIO_CLASS_IDLE)
