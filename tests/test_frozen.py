"""How the app starts itself again (the training child), from source and frozen."""

from __future__ import annotations

import multiprocessing
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
    frozen.prepare()
    frozen.prepare()
    assert multiprocessing.get_start_method() == "spawn"
