"""Settings persist across runs; bad files never lose data or crash the app."""

from __future__ import annotations

import json

from chatapp.storage.settings import AppSettings, SettingsStore


def test_round_trip(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    assert store.load() == AppSettings()
    settings = AppSettings(temperature=0.2, top_k=5, system_prompt="Réponds en français.", theme="dark")
    store.save(settings)
    assert SettingsStore(tmp_path / "settings.json").load() == settings


def test_unknown_keys_are_kept(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"temperature": 1, "future_option": [1, 2]}))
    loaded = SettingsStore(path).load()
    assert loaded.temperature == 1.0 and loaded.extra == {"future_option": [1, 2]}
    SettingsStore(path).save(loaded)
    assert json.loads(path.read_text())["future_option"] == [1, 2]


def test_wrong_type_falls_back_for_that_key_only(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"top_k": "many", "top_p": 0.5}))
    loaded = SettingsStore(path).load()
    assert loaded.top_k == AppSettings().top_k and loaded.top_p == 0.5


def test_corrupt_file_is_moved_aside_not_lost(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{ not json")
    store = SettingsStore(path)
    assert store.load() == AppSettings()
    assert "moved to settings.json.corrupt-" in store.warning
    aside = list(tmp_path.glob("settings.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"


def test_old_default_penalty_is_migrated_to_the_new_default(tmp_path):
    path = tmp_path / "settings.json"
    # A file saved by version 1 (no "version" key) with every default it had, plus a user choice.
    path.write_text(json.dumps({"temperature": 0.2, "repetition_penalty": 1.1, "top_k": 40}))
    store = SettingsStore(path)
    loaded = store.load()
    assert loaded.repetition_penalty == 1.0 == AppSettings().repetition_penalty
    assert loaded.temperature == 0.2 and loaded.version == 2
    store.save(loaded)
    assert json.loads(path.read_text())["version"] == 2


def test_a_penalty_the_user_chose_is_kept(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"repetition_penalty": 1.3}))  # version 1, not its default
    assert SettingsStore(path).load().repetition_penalty == 1.3
    # Chosen after the upgrade, 1.1 is a choice too: version-2 files are not migrated.
    SettingsStore(path).save(AppSettings(repetition_penalty=1.1))
    assert SettingsStore(path).load().repetition_penalty == 1.1
