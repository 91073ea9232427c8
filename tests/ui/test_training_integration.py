"""The Train tab wired to the chat: chat with an adapter, switch it off, compare base and tuned."""

from __future__ import annotations

from chatapp.engine.side_by_side import PaneSource


def test_window_has_chat_and_train_tabs(make_window, backend):
    window = make_window(backend)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Chat", "Train", "Documents"]
    assert window.training_panel.model == "default"
    assert window.documents_view.db_path == window.store.path.parent / "library.sqlite3"  # beside the history


def test_chat_with_adapter_then_switch_it_off(qtbot, make_window, backend, tmp_path):
    window = make_window(backend)
    adapter = str(tmp_path / "adapters" / "notes-lora")
    window.training_panel.use_adapter.emit(adapter)
    qtbot.waitUntil(lambda: window.adapter == adapter, timeout=5000)
    assert backend.adapter == adapter and window.training_panel.active_adapter == adapter
    window.composer.setPlainText("hello")
    window.send()
    qtbot.waitUntil(lambda: not window.streaming, timeout=5000)
    assert window.store.messages(window.current_id)[-1].content.startswith("Reply1 (tuned)")

    window.training_panel.adapter_off.emit()
    qtbot.waitUntil(lambda: window.adapter == "" and window.loading_spec is None, timeout=5000)
    assert backend.loads[-1] == "default" and backend.adapter == ""
    assert window.training_panel.active_adapter == ""


def test_compare_streams_base_and_adapter_with_one_seed_without_reloading(qtbot, make_window, backend, tmp_path):
    window = make_window(backend)
    adapter = str(tmp_path / "adapters" / "notes-lora")
    view = window.training_panel.compare_view
    window.training_panel.compare_requested.emit("What is in my notes?", 7,
                                                 (PaneSource(), PaneSource("adapter", adapter)))
    qtbot.waitUntil(lambda: not view.running and "finished" in view.panes[1].status.text(), timeout=5000)
    assert view.left_text.toPlainText().startswith("[base] seed 7:")
    assert view.right_text.toPlainText().startswith("[notes-lora] seed 7:")
    assert [call["settings"].seed for call in backend.compare_calls] == [7]
    assert backend.loads == ["default"] and window.adapter == ""  # the chat's model and adapter as they were
