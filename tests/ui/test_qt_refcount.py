"""Guard against the PySide6 release whose bindings leak references to None and True.

PySide6 6.12.0 on Python 3.11 dropped one reference to None per void call and one to True
per delivered signal; after some minutes of streaming the interpreter aborted with
"Fatal Python error: none_dealloc". pyproject.toml excludes it; this test fails if such a
build comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal, Slot


class _Emitter(QObject):
    fired = Signal(int)


class _Receiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @Slot(int)
    def on_fired(self, _value: int) -> None:
        self.count += 1


def test_void_calls_do_not_leak_none():
    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(500):
        obj.setObjectName("x")
    assert before - sys.getrefcount(None) < 50


def test_signal_delivery_does_not_leak_true():
    emitter, receiver = _Emitter(), _Receiver()
    emitter.fired.connect(receiver.on_fired)
    before = sys.getrefcount(True)
    for i in range(500):
        emitter.fired.emit(i)
    assert receiver.count == 500
    assert before - sys.getrefcount(True) < 50
