"""The typed settings model: layering, aliases, invalid values fall back with a warning."""

from pathlib import Path

import pytest

from indexer.core.settings import Settings, load_settings
from tests.conftest import REPO


def test_defaults_work() -> None:
    s, warnings = load_settings(None)
    assert warnings == [] and s.max_file_bytes == 1024 * 1024 and s.model_path is None


def test_layers_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".forge-indexer.toml").write_text(
        "search_limit = 7\nn_threads = 3\nexclude = ['a/']\n"
    )
    monkeypatch.setenv("FORGE_INDEXER_N_THREADS", "5")
    s, warnings = load_settings(tmp_path, {"exclude": ["b/"]})
    assert warnings == []
    assert (s.search_limit, s.n_threads, s.exclude) == (7, 5, ["b/"])


def test_camel_case_and_invalid_values(tmp_path: Path) -> None:
    s, warnings = load_settings(tmp_path, {"searchLimit": 3, "maxFileBytes": -1, "nope": 1})
    assert s.search_limit == 3 and s.max_file_bytes == 1024 * 1024
    assert any("maxFileBytes" in w and "default" in w for w in warnings)
    assert any("unknown setting 'nope'" in w for w in warnings)


def test_broken_workspace_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / ".forge-indexer.toml").write_text("this is = = not toml")
    s, warnings = load_settings(tmp_path)
    assert s.search_limit == Settings().search_limit
    assert len(warnings) == 1 and ".forge-indexer.toml" in warnings[0]


def test_every_setting_is_documented() -> None:
    from pydantic.alias_generators import to_camel

    doc = (REPO / "docs/configuration.md").read_text()
    for name in Settings.model_fields:
        assert to_camel(name) in doc, name


def test_an_unreadable_config_folder_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.core.settings as settings_mod

    def refuse(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(settings_mod.Path, "is_file", refuse)
    s, warnings = load_settings(tmp_path)
    assert s.search_limit == Settings().search_limit and any("Permission denied" in w for w in warnings)
