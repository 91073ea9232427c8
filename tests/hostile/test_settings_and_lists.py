"""Hostile settings files, recent-model lists and Hugging Face cache entries: the window and
`chatapp models` always start. Bad values are clamped or defaulted and the file is moved aside
(kept for the user); a FIFO is never opened for reading, so nothing hangs."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatapp.storage.settings import CHOICES, RANGES, AppSettings, SettingsStore
from chatapp.weights.discovery import RecentModels, list_models, scan_hf_cache
from tests.helpers.bounded import run_bounded

fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX-only")


def assert_in_ranges(s: AppSettings) -> None:
    for key, (low, high) in RANGES.items():
        value = getattr(s, key)
        assert type(value) is type(getattr(AppSettings(), key)) and low <= value <= high, (key, value)
    for key, choices in CHOICES.items():
        assert getattr(s, key) in choices


@pytest.mark.parametrize("key, value, expected", [
    ("seed", 2**40, 2**31 - 1),
    ("seed", -10**30, -1),
    ("context_len", 10**9, 131072),
    ("context_len", 1, 256),
    ("threads", -3, 0),
    ("max_new_tokens", 0, 1),
    ("temperature", 1e308, 5.0),
])
def test_out_of_range_values_are_clamped_and_the_file_kept(tmp_path, key, value, expected):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({key: value, "top_k": 7}))
    store = SettingsStore(path)
    loaded = store.load()
    assert getattr(loaded, key) == expected and loaded.top_k == 7
    assert key in store.warning and "moved to settings.json.corrupt-" in store.warning
    assert json.loads(next(tmp_path.glob("settings.json.corrupt-*")).read_text())[key] == value
    assert_in_ranges(loaded)
    again = SettingsStore(path)  # the window loads twice: the repaired file took the old one's place
    assert again.load() == loaded and again.warning is None
    assert len(list(tmp_path.glob("settings.json.corrupt-*"))) == 1


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # deeper than json.loads' recursion
    '{"extra": ' + "[" * 5_000 + "]" * 5_000 + "}",
    '{"system_prompt": {"a": {"b": [1, 2, {"c": null}]}}}',
    '{"extra": 5}',
    '{"theme": "neon", "device": ["cuda"]}',
    '{"temperature": NaN}',
    '{"seed": true, "threads": 2.5}',
])
def test_wrong_types_and_nesting_end_in_defaults_and_a_warning(tmp_path, text):
    path = tmp_path / "settings.json"
    path.write_text(text)
    store = SettingsStore(path)
    assert_in_ranges(store.load())
    assert store.warning and str(path) in store.warning
    assert list(tmp_path.glob("settings.json.corrupt-*"))


def test_undecodable_settings_file_is_moved_aside(tmp_path):
    path = tmp_path / "settings.json"
    path.write_bytes(b'{"theme": "\xff\xfe"}')
    store = SettingsStore(path)
    assert store.load() == AppSettings() and "UTF-8" in store.warning


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4),
                           max_leaves=20)
setting_keys = st.sampled_from([f for f in AppSettings.__dataclass_fields__] + ["other"])


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(setting_keys, json_values, max_size=8) | json_values)
def test_any_json_settings_file_loads_in_range(tmp_path, data):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data))
    store = SettingsStore(path)
    loaded = store.load()
    assert_in_ranges(loaded)
    store.save(loaded)  # what was loaded can be written and read back unchanged
    assert SettingsStore(path).load() == loaded


@fifo_only
def test_settings_file_that_is_a_fifo_is_moved_aside_without_hanging(tmp_path):
    path = tmp_path / "settings.json"
    os.mkfifo(path)
    result = run_bounded(f"""
        from chatapp.storage.settings import SettingsStore
        store = SettingsStore({str(path)!r})
        report(theme=store.load().theme, warning=store.warning)
    """, timeout=30)
    assert result["theme"] == "system" and "not a regular file" in result["warning"]
    assert not path.exists()


# ---------------------------------------------------------------------- recent models list

@pytest.mark.parametrize("content", [
    b"\xff\xfe\x00garbage",
    b"[" * 200_000 + b"]" * 200_000,
    json.dumps({"models": [{"path": "a\u0000b"}]}).encode(),
    json.dumps({"models": [{"path": "x" * 100_000}]}).encode(),
    json.dumps({"models": {"path": "/x"}}).encode(),
])
def test_hostile_recent_list_is_moved_aside_and_the_listing_works(tmp_path, content):
    path = tmp_path / "recent_models.json"
    path.write_bytes(content)
    recent = RecentModels(path)
    assert recent.entries() == []
    assert list(tmp_path.glob("recent_models.json.corrupt-*"))
    entries = list_models(cache_dir=tmp_path / "no-cache", recent=recent)
    assert entries[0].source == "default"


def test_huge_recent_list_is_cut_to_its_limit(tmp_path):
    path = tmp_path / "recent_models.json"
    path.write_text(json.dumps({"models": [f"/no/such/{i}.gguf" for i in range(20_000)]}))  # 0.4 MB
    entries = RecentModels(path, limit=20).entries()
    assert len(entries) == 20 and not any(e.available for e in entries)


def test_recent_entry_too_long_for_the_os_is_marked_not_raised(tmp_path):
    long = "/" + "/".join(["d" * 250] * 15) + ".gguf"  # under our limit, over PATH_MAX lookups may fail
    path = tmp_path / "recent_models.json"
    path.write_text(json.dumps({"models": [long]}))
    [entry] = RecentModels(path).entries()
    assert not entry.available


@fifo_only
def test_fifos_in_recent_list_and_hf_cache_never_hang_the_listing(tmp_path):
    fifo_model = tmp_path / "model.gguf"
    os.mkfifo(fifo_model)
    recent_file = tmp_path / "recent_models.json"
    recent_file.write_text(json.dumps({"models": [str(fifo_model)]}))
    snap = tmp_path / "hub" / "models--org--m" / "snapshots" / ("a" * 40)
    (snap / "sub").mkdir(parents=True)
    os.mkfifo(snap / "sub" / "weights.gguf")
    os.mkfifo(snap / "config.json")
    os.mkfifo(snap / "model.safetensors.index.json")
    (tmp_path / "hub" / "models--org--m" / "refs").mkdir()
    os.mkfifo(tmp_path / "hub" / "models--org--m" / "refs" / "main")
    recent_fifo = tmp_path / "fifo_recent.json"
    os.mkfifo(recent_fifo)
    result = run_bounded(f"""
        from chatapp.weights.discovery import RecentModels, list_models
        entries = list_models(cache_dir={str(tmp_path / 'hub')!r}, recent=RecentModels({str(recent_file)!r}))
        fifo_list = RecentModels({str(recent_fifo)!r}).entries()
        report(entries=[[e.source, e.path.name, e.available, e.problem] for e in entries], fifo_list=len(fifo_list))
    """, timeout=30)
    recent = [e for e in result["entries"] if e[0] == "recent"]
    assert recent == [["recent", "model.gguf", False, "is not a regular file (a FIFO, device or socket?)"]]
    assert not [e for e in result["entries"] if e[0] == "hf-cache"]
    assert result["fifo_list"] == 0


def test_deep_folder_tree_in_the_hf_cache_is_bounded(tmp_path):
    snap = tmp_path / "hub" / "models--org--deep" / "snapshots" / ("a" * 40)
    deep = snap
    for _ in range(30):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "far.gguf").write_bytes(b"GGUF" + bytes(8))
    (snap / "near.gguf").write_bytes(b"GGUF" + bytes(8))
    names = [e.name for e in scan_hf_cache(tmp_path / "hub")]
    assert names == ["org/deep/near.gguf"]


def test_recent_list_over_its_size_limit_is_moved_aside(tmp_path):
    path = tmp_path / "recent_models.json"
    path.write_text(json.dumps({"models": ["/x.gguf"] * 200_000}))
    assert RecentModels(path).entries() == []
    assert list(tmp_path.glob("recent_models.json.corrupt-*"))


def test_cache_snapshot_whose_index_leaves_the_folder_is_not_listed(tmp_path):
    snap = tmp_path / "hub" / "models--org--esc" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap.parent / "x.safetensors").write_bytes(b"")
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "../x.safetensors"}}))
    assert scan_hf_cache(tmp_path / "hub") == []


@pytest.mark.parametrize("weight_map", [{"w": 5}, {"w": None}, [1], "x"])
def test_cache_snapshot_with_a_malformed_index_is_not_listed(tmp_path, weight_map):
    snap = tmp_path / "hub" / "models--org--bad" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert scan_hf_cache(tmp_path / "hub") == []
