"""How the app starts itself again (the training child), from source and frozen."""

from __future__ import annotations

import subprocess
import sys

from chatapp import frozen


def test_self_command_from_source_runs_the_package():
    assert frozen.self_command() == [sys.executable, "-m", "chatapp"]
    assert not frozen.is_frozen()


def test_self_command_frozen_is_the_binary_itself(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/chatapp/chatapp")
    assert frozen.is_frozen()
    assert frozen.self_command() == ["/opt/chatapp/chatapp"]


def test_prepare_selects_spawn_and_is_idempotent():
    # In a fresh interpreter: in this one another test may already have fixed the method.
    code = ("import multiprocessing as mp; from chatapp.frozen import prepare; "
            "prepare(); prepare(); print(mp.get_start_method())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "spawn"
