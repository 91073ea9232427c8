"""The main window: conversations on the left, the chat in the centre, settings on the right.

Services (the conversation store, the settings store, the chat backend, the model lister)
are passed in, so tests hand it fakes. The window never runs model code: it sends requests
to the generation worker over queued signals and renders the deltas it gets back,
coalesced by a timer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QSplitter, QStatusBar, QTabWidget, QVBoxLayout, QWidget)

from .. import __version__
from ..engine.backend import CONTINUABLE_REASONS
from ..storage.db import INTERRUPTED
from ..storage.settings import AppSettings, SettingsStore
from .chat_view import ChatView, MessageWidget
from .composer import Composer
from .conversation_list import ConversationList
from .settings_panel import SettingsPanel
from .training_controller import TrainingController
from .documents_view import DocumentsView
from .training_panel import TrainingPanel
from .worker import WorkerThread

log = logging.getLogger(__name__)

FLUSH_INTERVAL_MS = 33  # ~30 Hz: smooth to the eye, cheap for the GUI thread
SAVE_INTERVAL_S = 1.0  # how often a streaming reply is written to the database
# A reply that ended for one of these reasons stopped before its end, and can be continued
# (a stream the app did not see to its end, too).
CONTINUABLE = CONTINUABLE_REASONS + (INTERRUPTED,)
UNDO_DELETE_MS = 15000


def _tr(text: str) -> str:
    return QGuiApplication.translate("MainWindow", text)


class MainWindow(QMainWindow):
    request_load = Signal(str, dict)
    request_generate = Signal(int, list, str, dict, bool)  # ..., continue the last reply
    request_estimate = Signal(str, dict)

    def __init__(self, store, settings_store: SettingsStore, backend,
                 list_models: Callable[[], list[tuple[str, str]]] = lambda: [("SmolLM2-135M-Instruct", "default")],
                 on_model_loaded: Optional[Callable[[str], None]] = None, autoload: bool = True,
                 adapters_dir: Optional[Path] = None) -> None:
        super().__init__()
        self.store = store
        self.settings_store = settings_store
        self.settings: AppSettings = settings_store.load()
        self.list_models = list_models
        self.on_model_loaded = on_model_loaded
        self.model_info: Optional[dict] = None
        self.loading_spec: Optional[str] = None
        self.current_id: Optional[int] = None
        # the reply in progress
        self.request_id = 0
        self.streaming = False
        self.stream_conv_id: Optional[int] = None
        self.stream_message_id: Optional[int] = None
        self.stream_text = ""
        self.stream_prefix = ""  # a continued reply's text before this stream
        self.stream_widget: Optional[MessageWidget] = None
        self.stream_dirty = False
        self.last_save = 0.0
        self.deleted_id: Optional[int] = None
        self.adapter = ""  # the LoRA adapter folder the chat model wears, "" for none
        self.adapters_dir = adapters_dir  # None: the user data dir's adapters/

        self.setWindowTitle("chatapp")
        self.resize(1200, 780)
        self._build()
        self.worker_thread = WorkerThread(backend, self)
        worker = self.worker_thread.worker
        self.request_load.connect(worker.load_model)
        self.request_generate.connect(worker.generate)
        self.request_estimate.connect(worker.estimate)
        worker.estimated.connect(self._on_estimated)
        worker.estimate_failed.connect(self._on_estimate_failed)
        worker.load_progress.connect(self._on_load_progress)
        worker.model_loaded.connect(self._on_model_loaded)
        worker.model_failed.connect(self._on_model_failed)
        worker.model_load_cancelled.connect(self._on_model_load_cancelled)
        worker.delta.connect(self._on_delta)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self.training = TrainingController(self, self.training_panel)
        self._shut_down = False
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.flush_timer = QTimer(self, interval=FLUSH_INTERVAL_MS)
        self.flush_timer.timeout.connect(self._flush)

        self.settings_panel.apply(self.settings)
        self.settings_panel.set_models(self.list_models(), self.settings.model)
        self.estimate_model(self.settings_panel.model_combo.currentData() or "")
        if settings_store.warning:
            self.statusBar().showMessage(settings_store.warning, 10000)
        self.refresh_conversations()
        conversations = self.store.list_conversations()
        if conversations:
            self.open_conversation(conversations[0].id)
        self._update_state()
        if autoload:
            self.load_model(self.settings.model)

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.conversations = ConversationList()
        self.conversations.layout().setContentsMargins(9, 9, 0, 9)  # in line with the centre column
        self.chat = ChatView()
        self.composer = Composer()
        self.composer.setPlaceholderText(_tr("Message the model (Enter sends, Shift+Enter for a new line)"))
        self.composer.setAccessibleName(_tr("Message"))
        self.composer.setMaximumHeight(96)
        self.send_button = QPushButton(_tr("Send"))
        self.send_button.setAccessibleName(_tr("Send message"))
        self.stop_button = QPushButton(_tr("Stop"))
        self.stop_button.setAccessibleName(_tr("Stop the reply"))
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.addWidget(self.chat, 1)
        row = QHBoxLayout()
        row.addWidget(self.composer, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        column.addLayout(row)
        self.settings_panel = SettingsPanel()
        splitter = QSplitter()
        splitter.addWidget(self.conversations)
        splitter.addWidget(centre)
        splitter.addWidget(self.settings_panel)
        splitter.setSizes([240, 640, 320])
        splitter.setStretchFactor(1, 1)
        self.training_panel = TrainingPanel(model=self.settings.model or "default", adapters_dir=self.adapters_dir)
        self.tabs = QTabWidget()
        self.tabs.addTab(splitter, _tr("Chat"))
        self.tabs.addTab(self.training_panel, _tr("Train"))
        self.documents_view = DocumentsView(Path(self.store.path).parent / "library.sqlite3")
        self.tabs.addTab(self.documents_view, _tr("Documents"))
        self.setCentralWidget(self.tabs)

        status = QStatusBar()
        self.setStatusBar(status)
        self.model_label = QLabel(_tr("No model"))
        self.context_label = QLabel("")
        self.speed_label = QLabel("")
        self.undo_button = QPushButton(_tr("Undo delete"))
        self.undo_button.setAccessibleName(_tr("Undo delete"))
        self.undo_button.hide()
        for widget in (self.undo_button, self.model_label, self.context_label, self.speed_label):
            status.addPermanentWidget(widget)

        self.send_button.clicked.connect(self.send)
        self.composer.submitted.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.chat.edit_submitted.connect(self.edit_and_resend)
        self.chat.regenerate_requested.connect(self.regenerate)
        self.chat.continue_requested.connect(self.continue_reply)
        self.conversations.selected.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.rename_requested.connect(self.rename_conversation)
        self.conversations.delete_requested.connect(self.delete_conversation)
        self.conversations.search_changed.connect(lambda _text: self.refresh_conversations())
        self.conversations.export_requested.connect(self.export_conversation)
        self.conversations.import_requested.connect(self.import_conversation)
        self.undo_button.clicked.connect(self.undo_delete)
        self.settings_panel.load_requested.connect(self.load_model)
        self.settings_panel.cancel_load_requested.connect(self.cancel_load)
        self.settings_panel.selection_changed.connect(self.estimate_model)
        self.settings_panel.changed.connect(self._settings_changed)
        self._build_menu()

    def _build_menu(self) -> None:
        def action(menu, text, slot, shortcut=None, name=None):
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            menu.addAction(act)
            self.addAction(act)
            return act

        file_menu = self.menuBar().addMenu(_tr("&File"))
        self.new_action = action(file_menu, _tr("New chat"), self.new_conversation, "Ctrl+N")
        action(file_menu, _tr("Import conversation…"), self.import_conversation, "Ctrl+I")
        file_menu.addSeparator()
        action(file_menu, _tr("Quit"), self.close, "Ctrl+Q")
        chat_menu = self.menuBar().addMenu(_tr("&Chat"))
        self.focus_action = action(chat_menu, _tr("Focus message box"), self.composer.setFocus, "Ctrl+L")
        self.stop_action = action(chat_menu, _tr("Stop reply"), self.stop, "Esc")
        action(chat_menu, _tr("Regenerate reply"), self.regenerate, "Ctrl+R")
        action(chat_menu, _tr("Continue reply"), self.continue_reply, "Ctrl+Shift+R")
        help_menu = self.menuBar().addMenu(_tr("&Help"))
        action(help_menu, _tr("About chatapp"), self.show_about)

    def show_about(self) -> None:
        QMessageBox.about(self, _tr("About chatapp"),
                          _tr("chatapp {version}\n\nChat with a language model on your own machine, "
                              "and teach it your own documents.").format(version=__version__))

    # -- state ----------------------------------------------------------------------------
    def _update_state(self) -> None:
        idle = not self.streaming
        ready = self.model_info is not None and self.loading_spec is None
        self.send_button.setEnabled(idle and ready)
        self.stop_button.setEnabled(self.streaming)
        self.chat.update_actions(idle and ready)
        if self.model_info:
            info = self.model_info
            self.model_label.setText(f"{info['name']} · {info['device']}")
        elif self.loading_spec:
            self.model_label.setText(_tr("Loading model…"))

    def _settings_changed(self) -> None:
        self.settings_panel.read_into(self.settings)
        self.settings_store.save(self.settings)

    def sampling_dict(self) -> dict:
        s = self.settings
        return dict(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, min_p=s.min_p,
                    repetition_penalty=s.repetition_penalty, max_new_tokens=s.max_new_tokens,
                    seed=None if s.seed < 0 else s.seed)

    # -- model ----------------------------------------------------------------------------
    @Slot(str)
    def load_model(self, spec: str, adapter: Optional[str] = None) -> None:
        """Load `spec` in the worker; `adapter` a LoRA folder, "" for none, None to keep the current one."""
        if not spec or self.loading_spec is not None:
            return
        if self.streaming:
            self.statusBar().showMessage(_tr("Stop the reply before switching models."), 5000)
            return
        self.loading_spec = spec
        self.settings_panel.set_loading(True, _tr("Loading"), 0.0)
        self.settings_panel.model_status.setText(_tr("Loading {spec}…").format(spec=spec))
        self._update_state()
        s = self.settings
        adapter = self.adapter if adapter is None else adapter
        options = {"device": s.device, "context_len": s.context_len, "threads": s.threads}
        if adapter:
            options["adapter"] = adapter
        self.worker_thread.arm_load()
        self.request_load.emit(spec, options)

    @Slot()
    def cancel_load(self) -> None:
        """Stop the model load at the next tensor; the previous model stays."""
        if self.loading_spec is not None:
            self.worker_thread.cancel_load()
            self.settings_panel.cancel_load_button.setEnabled(False)
            self.settings_panel.model_status.setText(_tr("Cancelling…"))

    @Slot(str)
    def estimate_model(self, spec: str) -> None:
        """Ask the worker what loading `spec` would need (it reads the config, not the weights)."""
        if spec:
            s = self.settings
            self.request_estimate.emit(spec, {"device": s.device, "context_len": s.context_len, "threads": s.threads})

    @Slot(str, dict)
    def _on_estimated(self, spec: str, estimate: dict) -> None:
        self.settings_panel.show_estimate(spec, estimate)

    @Slot(str, str)
    def _on_estimate_failed(self, spec: str, message: str) -> None:
        self.settings_panel.show_estimate_error(spec, message)

    @Slot(str, float)
    def _on_load_progress(self, stage: str, fraction: float) -> None:
        self.settings_panel.set_loading(True, stage, fraction)

    @Slot(dict)
    def _on_model_loaded(self, info: dict) -> None:
        spec, self.loading_spec = self.loading_spec, None
        self.model_info = info
        self.settings.model = spec or self.settings.model
        self.settings_store.save(self.settings)
        self.settings_panel.set_loading(False)
        self.settings_panel.model_status.setText(
            _tr("{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. "
                "Memory: {memory}").format(name=info["name"], params=info["n_params"] / 1e6, dtype=info["dtype"],
                                           device=info["device"], ctx=info["context_len"], secs=info["load_s"],
                                           memory=self.settings_panel.memory_text(info)))
        self.context_label.setText(_tr("context {used}/{limit}").format(used=0, limit=info["context_len"]))
        self.adapter = info.get("adapter", "")
        if self.on_model_loaded and spec:
            self.on_model_loaded(spec)
        self.training.model_loaded(self.settings.model, info)
        self._update_state()
        self.composer.setFocus()

    def _previous_model_kept(self) -> str:
        """After a load that did not happen: which model is still loaded, if any."""
        if not self.model_info:
            return ""
        return _tr(" The previous model ({name}) is still loaded.").format(name=self.model_info["name"])

    @Slot(str)
    def _on_model_load_cancelled(self, spec: str) -> None:
        self.loading_spec = None
        self.settings_panel.set_loading(False)
        self.settings_panel.model_status.setText(_tr("Loading {spec} was cancelled.").format(spec=spec)
                                                 + self._previous_model_kept())
        self._update_state()

    @Slot(str, str)
    def _on_model_failed(self, spec: str, message: str) -> None:
        self.loading_spec = None
        self.settings_panel.set_loading(False)
        self.settings_panel.model_status.setText(
            _tr("Could not load {spec}: {message}").format(spec=spec, message=message) + self._previous_model_kept())
        self.statusBar().showMessage(_tr("Model load failed: {message}").format(message=message), 15000)
        self._update_state()

    # -- conversations --------------------------------------------------------------------
    def refresh_conversations(self) -> None:
        query = self.conversations.search.text().strip()
        if query:
            rows = [(c.id, c.title, snippet) for c, snippet in self.store.search(query)]
        else:
            rows = [(c.id, c.title, "") for c in self.store.list_conversations()]
        self.conversations.set_conversations(rows, self.current_id)

    def _show_conversation(self, conv_id: Optional[int]) -> None:
        """Make `conv_id` (None: none) current with an empty view; widgets of the old one are gone."""
        self.current_id = conv_id
        self.chat.clear()
        self.stream_widget = None
        self.refresh_conversations()
        self._update_state()

    @Slot(int)
    def open_conversation(self, conv_id: int) -> None:
        self.current_id = conv_id
        self.chat.clear()
        self.stream_widget = None
        messages = self.store.messages(conv_id)
        for m in messages:
            if self.streaming and m.id == self.stream_message_id:
                widget = self.chat.add_message("assistant", self.stream_text)
                widget.set_status(_tr("writing…"))
                self.stream_widget = widget
                continue
            widget = self.chat.add_message(m.role, m.content)
            widget.can_continue = m.role == "assistant" and bool(m.content) and m.finish_reason in CONTINUABLE
            if m.state in ("cancelled", "failed"):
                widget.set_status(_tr("stopped") if m.state == "cancelled" else _tr("failed"))
            elif m.finish_reason == "length":
                widget.set_status(_tr("cut at the token limit"))
        self.refresh_conversations()
        self._update_state()

    @Slot()
    def new_conversation(self) -> None:
        conv = self.store.create_conversation(_tr("New chat"), system_prompt=self.settings.system_prompt)
        self._show_conversation(conv.id)
        self.composer.setFocus()

    @Slot(int, str)
    def rename_conversation(self, conv_id: int, title: str) -> None:
        if title:
            self.store.rename(conv_id, title)
        self.refresh_conversations()

    @Slot(int)
    def delete_conversation(self, conv_id: int) -> None:
        if self.streaming and conv_id == self.stream_conv_id:
            self.stop()
        self.store.delete_conversation(conv_id)
        self.deleted_id = conv_id
        if conv_id == self.current_id:
            self._show_conversation(None)
        self.refresh_conversations()
        self.undo_button.show()
        QTimer.singleShot(UNDO_DELETE_MS, self.undo_button.hide)
        self.statusBar().showMessage(_tr("Conversation deleted."), UNDO_DELETE_MS)

    @Slot()
    def undo_delete(self) -> None:
        if self.deleted_id is None:
            return
        self.store.restore(self.deleted_id)
        conv_id, self.deleted_id = self.deleted_id, None
        self.undo_button.hide()
        self.statusBar().clearMessage()
        self.open_conversation(conv_id)

    def export_conversation(self, conv_id: int, fmt: str) -> None:
        from ..storage.export import export_json, export_markdown
        suffix = ".md" if fmt == "markdown" else ".json"
        path, _ = QFileDialog.getSaveFileName(self, _tr("Export conversation"), f"conversation{suffix}")
        if not path:
            return
        try:
            (export_markdown if fmt == "markdown" else export_json)(self.store, conv_id, Path(path))
        except Exception as exc:  # shown, never a traceback dialog
            QMessageBox.warning(self, _tr("Export failed"), str(exc))
            return
        self.statusBar().showMessage(_tr("Exported to {path}").format(path=path), 5000)

    def import_conversation(self) -> None:
        from ..storage.export import import_json
        path, _ = QFileDialog.getOpenFileName(self, _tr("Import conversation"), "", _tr("JSON (*.json)"))
        if not path:
            return
        try:
            conv = import_json(self.store, Path(path))
        except Exception as exc:
            QMessageBox.warning(self, _tr("Import failed"), str(exc))
            return
        self.open_conversation(conv.id)

    # -- chatting -------------------------------------------------------------------------
    def _history(self, conv_id: int) -> list[dict]:
        return [{"role": m.role, "content": m.content} for m in self.store.messages(conv_id)
                if m.role in ("user", "assistant") and m.state != "failed"]

    @Slot()
    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text or self.streaming:
            return
        if self.model_info is None or self.loading_spec is not None:
            self.statusBar().showMessage(_tr("The model is not loaded yet; your message is kept."), 5000)
            return
        if self.current_id is None:
            conv = self.store.create_conversation(text[:48], system_prompt=self.settings.system_prompt)
            self._show_conversation(conv.id)
        elif not self.store.messages(self.current_id):
            self.store.rename(self.current_id, text[:48])
        self.store.add_message(self.current_id, "user", text)
        self.chat.add_message("user", text)
        self.composer.clear()
        self._start_reply()

    def _start_reply(self, continued=None) -> None:
        """Stream a new reply, or with `continued` (the last stored reply) more of that one."""
        conv_id = self.current_id
        history = self._history(conv_id)
        settings = self.sampling_dict()
        self.request_id += 1
        self.streaming = True
        self.stream_conv_id = conv_id
        if continued is not None:
            self.stream_prefix = self.stream_text = continued.content
            self.stream_message_id = continued.id
            self.stream_widget = self.chat.messages[-1]
            self.stream_widget.can_continue = False
        else:
            self.stream_prefix = self.stream_text = ""
            self.stream_message_id = self.store.begin_reply(conv_id, model=(self.model_info or {}).get("name", ""),
                                                            settings=settings)
            self.stream_widget = self.chat.add_message("assistant", "")
        self.stream_widget.set_status(_tr("writing…"))
        self.last_save = time.monotonic()
        self.flush_timer.start()
        self._update_state()
        self.refresh_conversations()
        self.request_generate.emit(self.request_id, history, self.settings.system_prompt, settings,
                                   continued is not None)

    @Slot()
    def stop(self) -> None:
        if self.streaming:
            self.worker_thread.stop_reply()

    @Slot()
    def regenerate(self) -> None:
        if self.streaming or self.current_id is None or self.model_info is None:
            return
        messages = self.store.messages(self.current_id)
        if not messages or messages[-1].role != "assistant":
            return
        self.store.truncate_after(self.current_id, messages[-2].position if len(messages) > 1 else -1)
        self.open_conversation(self.current_id)
        self._start_reply()

    @Slot()
    def continue_reply(self) -> None:
        """Write on from where the last reply stopped (the token limit, or Stop)."""
        if self.streaming or self.current_id is None or self.model_info is None:
            return
        messages = self.store.messages(self.current_id)
        if not messages or messages[-1].role != "assistant" or not messages[-1].content:
            return
        if messages[-1].finish_reason not in CONTINUABLE:
            return
        self._start_reply(continued=messages[-1])

    @Slot(int, str)
    def edit_and_resend(self, index: int, text: str) -> None:
        if self.streaming or self.current_id is None or self.model_info is None:
            return
        messages = self.store.messages(self.current_id)
        if not 0 <= index < len(messages) or messages[index].role != "user":
            return
        self.store.truncate_after(self.current_id, messages[index - 1].position if index > 0 else -1)
        self.store.add_message(self.current_id, "user", text)
        self.open_conversation(self.current_id)
        self._start_reply()

    @Slot(int, str)
    def _on_delta(self, request_id: int, text: str) -> None:
        if request_id != self.request_id:
            return
        self.stream_text += text
        self.stream_dirty = True

    def _flush(self) -> None:
        """Timer tick: show what arrived since the last tick; save to the database now and then."""
        if not self.stream_dirty:
            return
        self.stream_dirty = False
        if self.stream_widget is not None and self.current_id == self.stream_conv_id:
            follow = self.chat.at_bottom()
            self.stream_widget.set_text(self.stream_text)
            if follow:
                self.chat.scroll_to_bottom()
        now = time.monotonic()
        if now - self.last_save >= SAVE_INTERVAL_S:
            self.store.update_reply(self.stream_message_id, self.stream_text)
            self.last_save = now

    def _end_stream(self) -> None:
        self.flush_timer.stop()
        self.stream_dirty = True
        self._flush_widget_only()
        self.streaming = False
        self._update_state()

    def _flush_widget_only(self) -> None:
        if self.stream_widget is not None and self.current_id == self.stream_conv_id:
            self.stream_widget.set_text(self.stream_text)
        self.stream_dirty = False

    @Slot(int, dict)
    def _on_finished(self, request_id: int, result: dict) -> None:
        if request_id != self.request_id:
            return
        self.stream_text = self.stream_prefix + result["text"]  # a continued reply keeps its start
        state = "cancelled" if result["finish_reason"] == "cancelled" else "complete"
        stats = result["stats"]
        self.store.finish_reply(self.stream_message_id, self.stream_text, state=state,
                                finish_reason=result["finish_reason"], stats=stats)
        self._end_stream()
        speed = stats.get("decode_tok_s", 0.0)
        if self.stream_widget is not None:
            note = _tr("{n} tokens · {speed:.1f} tok/s").format(n=stats.get("new_tokens", 0), speed=speed)
            if state == "cancelled":
                note = _tr("stopped") + " · " + note
            elif result["finish_reason"] == "length":
                note = _tr("cut at the token limit") + " · " + note
            self.stream_widget.set_status(note)
            self.stream_widget.can_continue = bool(self.stream_text) and result["finish_reason"] in CONTINUABLE
            self._update_state()
        self.speed_label.setText(_tr("{speed:.1f} tok/s").format(speed=speed))
        if self.model_info:
            self.context_label.setText(_tr("context {used}/{limit}").format(
                used=result.get("context_used", 0), limit=self.model_info["context_len"]))
        if result.get("dropped_messages"):
            self.statusBar().showMessage(
                _tr("{n} earlier messages did not fit the context and were left out of this reply.").format(
                    n=result["dropped_messages"]), 10000)
        self.refresh_conversations()

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        if request_id != self.request_id:
            return
        if self.stream_prefix:  # a continued reply keeps what it had, and can be continued again
            self.store.finish_reply(self.stream_message_id, self.stream_text, state="cancelled",
                                    finish_reason="cancelled", stats={})
            if self.stream_widget is not None:
                self.stream_widget.can_continue = True
        else:
            self.store.finish_reply(self.stream_message_id, self.stream_text, state="failed",
                                    finish_reason="error", stats={})
        self._end_stream()
        if self.stream_widget is not None:
            self.stream_widget.set_status(_tr("failed: {message}").format(message=message))
        self.statusBar().showMessage(_tr("The reply failed: {message}").format(message=message), 15000)

    # -- closing --------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop any reply, keep what was written, end the training child and the worker thread.

        Runs on close and on application quit (whichever comes first; idempotent), so the
        generation thread is never destroyed while running.
        """
        if self._shut_down:
            return
        self._shut_down = True
        if self.streaming:
            self.worker_thread.stop_reply()
            self.store.finish_reply(self.stream_message_id, self.stream_text, state="cancelled",
                                    finish_reason="cancelled", stats={})
            self.streaming = False
        self.flush_timer.stop()
        self.training_panel.shutdown(timeout_s=10)
        self.worker_thread.shutdown()
        self._settings_changed()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.shutdown()
        super().closeEvent(event)
