"""weights/heap.py: trims once enough float copies were freed, and never fails off glibc."""

from __future__ import annotations

from chatapp.weights import heap


def test_trimmer_trims_after_every_so_many_freed_bytes(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "trim_heap", lambda: calls.append(1))
    trimmer = heap.HeapTrimmer(every=100)
    for _ in range(9):
        trimmer.freed_bytes(30)  # 270 bytes: trims at 120 and 240
    assert len(calls) == 2 and trimmer.trims == 2 and trimmer.freed == 30


def test_trim_heap_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    heap.trim_heap()  # nothing to call, nothing raised
