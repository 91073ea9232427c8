"""The Train tab wired to the chat: chat with an adapter, switch it off, compare base and tuned."""

from __future__ import annotations


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


def test_compare_loads_the_adapter_then_streams_base_and_tuned_with_one_seed(qtbot, make_window, backend, tmp_path):
    window = make_window(backend)
    adapter = str(tmp_path / "adapters" / "notes-lora")
    view = window.training_panel.compare_view
    window.training_panel.compare_requested.emit("What is in my notes?", 7, adapter)
    qtbot.waitUntil(lambda: "(tuned)" in view.tuned_text.toPlainText() and "w5" in view.tuned_text.toPlainText(),
                    timeout=5000)
    assert view.base_text.toPlainText().startswith("Reply1 to 'What is in my notes?'")
    assert view.tuned_text.toPlainText().startswith("Reply2 (tuned) to 'What is in my notes?'")
    assert [call["settings"].seed for call in backend.calls] == [7, 7]
    assert backend.adapter_enabled  # switched back on after the comparison
    assert window.adapter == adapter
