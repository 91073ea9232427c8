"""Side by side through the window: each pane's source chosen, both panes streaming together
with one seed, one stop for both, and another model refused (with the numbers) when it does
not fit beside the loaded one."""

from __future__ import annotations

from PySide6.QtCore import Qt

from chatapp.engine.side_by_side import PaneSource
from fake_backend import FakeBackend


def _open(qtbot, window, tmp_path, sources=None):
    view = window.training_panel.compare_view
    a, b = str(tmp_path / "adapters" / "notes-a"), str(tmp_path / "adapters" / "notes-b")
    view.set_adapters([("notes-a", a), ("notes-b", b)])
    view.set_sources(sources or (PaneSource(), PaneSource("adapter", a)))
    view.prompt.setPlainText("What is in my notes?")
    view.seed.setValue(7)
    view.show()
    return view, a, b


def _record(view) -> list[int]:
    """The pane of each delta, in the order the view received them."""
    order: list[int] = []
    append = view.append
    view.append = lambda pane, text: (order.append(pane), append(pane, text))
    return order


def _run(qtbot, view):
    qtbot.mouseClick(view.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not view.running, timeout=30000)
    return [pane.text.toPlainText() for pane in view.panes]


def test_both_panes_stream_together_with_one_seed(qtbot, make_window, tmp_path):
    backend = FakeBackend(words=8, delay=0.02)
    window = make_window(backend)
    view, a, _ = _open(qtbot, window, tmp_path)
    order = _record(view)
    qtbot.mouseClick(view.run_button, Qt.LeftButton)
    assert view.running and not view.run_button.isEnabled() and view.stop_button.isEnabled()
    assert not view.panes[0].source.isEnabled()  # sources are fixed while it runs
    qtbot.waitUntil(lambda: not view.running, timeout=30000)
    assert order.count(0) == order.count(1) == 10  # two header pieces and eight words each
    last_left = max(i for i, p in enumerate(order) if p == 0)
    last_right = max(i for i, p in enumerate(order) if p == 1)
    assert order.index(1) < last_left and order.index(0) < last_right  # neither waited for the other
    left, right = (pane.text.toPlainText() for pane in view.panes)
    assert left.startswith("[base] seed 7:") and right.startswith("[notes-a] seed 7:")
    call = backend.compare_calls[-1]
    assert call["sources"] == (PaneSource(), PaneSource("adapter", a)) and call["settings"].seed == 7
    assert call["messages"] == [{"role": "user", "content": "What is in my notes?"}]
    assert "10 tokens" in view.panes[0].status.text() and "finished" in view.panes[1].status.text()
    assert backend.thread_names == {"worker"}  # generated in the worker, never the GUI thread


def test_the_same_source_and_seed_write_the_same_text_in_both_panes(qtbot, make_window, tmp_path):
    window = make_window(FakeBackend(words=6, delay=0.005))
    view, a, b = _open(qtbot, window, tmp_path)
    view.set_sources((PaneSource("adapter", a), PaneSource("adapter", a)))
    left, right = _run(qtbot, view)
    assert left == right and "[notes-a] seed 7:" in left
    view.set_sources((PaneSource("adapter", a), PaneSource("adapter", b)))
    left2, right2 = _run(qtbot, view)
    assert left2 == left and right2 != left2  # another source, another reply; the seed repeats the first
    view.seed.setValue(8)
    left3, _ = _run(qtbot, view)
    assert left3 != left


def test_stop_ends_both_panes(qtbot, make_window, tmp_path):
    window = make_window(FakeBackend(words=400, delay=0.01))
    view, _, _ = _open(qtbot, window, tmp_path)
    qtbot.mouseClick(view.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: all(pane.reply for pane in view.panes), timeout=30000)
    qtbot.mouseClick(view.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not view.running, timeout=30000)
    for pane in view.panes:
        assert "stopped" in pane.status.text()
        assert pane.reply.count(" w") < 400
    assert not window.chat_controller.paused  # the chat takes messages again
    assert not window.streaming


def test_another_model_that_does_not_fit_is_named_with_the_numbers(qtbot, make_window, tmp_path):
    window = make_window(FakeBackend(words=4, delay=0.005))
    view, _, _ = _open(qtbot, window, tmp_path)
    view.choose_model(1, "huge")
    qtbot.waitUntil(lambda: "does not fit" in view.fit_label.text(), timeout=5000)
    assert ("Fake-huge does not fit beside the loaded model: it needs 12.80 GiB and 8.00 GiB is free."
            in view.fit_label.text())
    assert not view.run_button.isEnabled()
    assert "huge" not in window.header.model_status.text()  # the chat header is not told about it
    view.choose_model(1, "small")
    qtbot.waitUntil(lambda: "Fake-small fits beside the loaded model: it needs 0.59 GiB" in view.fit_label.text(),
                    timeout=5000)
    assert view.run_button.isEnabled()
    left, right = _run(qtbot, view)
    assert left.startswith("[base]") and right.startswith("[small]")
    assert view.panes[1].source.currentText() == "Model: small"
