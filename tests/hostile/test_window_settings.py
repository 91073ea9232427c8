"""Whatever the settings file holds, the window's settings panel takes the loaded values: the
ranges settings.py clamps to are exactly the spin boxes' ranges (a value beyond a QSpinBox's
range used to abort the process on every start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from chatapp.storage.settings import CHOICES, RANGES, SettingsStore  # noqa: E402
from chatapp.ui.settings_panel import SettingsPanel  # noqa: E402


def test_clamp_ranges_are_the_panels_ranges(qtbot):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    for key, (low, high) in RANGES.items():
        spin = getattr(panel, key, None)
        if spin is None:
            continue  # not shown in the panel (version)
        assert (spin.minimum(), spin.maximum()) == pytest.approx((low, high)), key
    assert {panel.device.itemData(i) for i in range(panel.device.count())} == set(CHOICES["device"])


@pytest.mark.parametrize("data", [
    {"seed": 2**40, "context_len": 10**12, "threads": -3, "max_new_tokens": 10**9, "top_k": -1},
    {"temperature": 1e308, "top_p": 0, "min_p": 5, "repetition_penalty": -1, "device": "tpu"},
])
def test_hostile_settings_file_goes_into_the_panel(qtbot, tmp_path, data):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data))
    loaded = SettingsStore(path).load()
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.apply(loaded)
    back = panel.read_into(SettingsStore(tmp_path / "other.json").load())
    for key in ("seed", "context_len", "threads", "max_new_tokens", "top_k", "device"):
        assert getattr(back, key) == getattr(loaded, key), key
    for key in ("temperature", "top_p", "min_p", "repetition_penalty"):
        assert getattr(back, key) == pytest.approx(getattr(loaded, key), abs=0.01), key


START = """
import json, sys, threading
from pathlib import Path
from chatapp.ui.app import create_window

app, window = create_window(autoload=False, profile_dir=Path(sys.argv[1]))
window.show()
for _ in range(30):
    app.processEvents()
    threading.Event().wait(0.01)
print(json.dumps({"visible": window.isVisible(), "status": window.statusBar().currentMessage(),
                  "seed": window.settings.seed, "context": window.settings.context_len}))
window.close()
window.store.close()
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX-only")
def test_window_starts_with_hostile_settings_recent_list_and_cache(tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "settings.json").write_text(json.dumps({"seed": 2**40, "context_len": 10**12,
                                                        "extra": [[[[1]]]], "theme": {"a": 1}}))
    config = tmp_path / "xdg-config" / "chatapp"
    config.mkdir(parents=True)
    os.mkfifo(tmp_path / "fifo.gguf")
    (config / "recent_models.json").write_text(json.dumps({"models": [str(tmp_path / "fifo.gguf")]}))
    snapshot = tmp_path / "hub" / "models--org--m" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    os.mkfifo(snapshot / "config.json")
    os.mkfifo(snapshot / "w.gguf")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(root), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               HF_HUB_CACHE=str(tmp_path / "hub"))
    done = subprocess.run([sys.executable, "-c", START, str(profile)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["visible"] and result["seed"] == 2**31 - 1 and result["context"] == 131072
    assert "settings.json" in result["status"] and "moved to settings.json.corrupt-" in result["status"]
