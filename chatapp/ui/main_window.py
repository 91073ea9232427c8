"""The main window, conversation first: the list on the left (collapsible), the chat in the
centre under its header (model, system prompt), settings in a drawer on the right, closed
until asked for (header button, View menu, Ctrl+,).

Services (the conversation store, the settings store, the chat backend, the model lister)
are passed in, so tests hand it fakes. The window keeps the layout and the menus; the chat's
state machine is `ChatController`, the model's `ModelController`, the Train tab's link to
them `TrainingController`. The window follows their signals and never runs model code.
Long because it wires the controllers to the layout, the menus (every shortcut is here), the
status bar and the file dialogs: each part is short, and splitting them would scatter the wiring.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QSplitter, QStatusBar, QTabWidget, QVBoxLayout, QWidget)

from .. import __version__
from ..engine.backend import Backend, ModelInfo
from ..storage.settings import AppSettings, SettingsStore
from .chat_controller import ChatController
from .chat_header import ChatHeader
from .chat_view import ChatView
from .composer import Composer, DocumentsSelector
from .images import ImageTray
from .conversation_list import ConversationList
from .model_controller import ModelController
from .server_panel import ServerController, ServerPanel, activity_text, adapters_for_model
from .settings_panel import SettingsDrawer, SettingsPanel
from .weights_picker import weights_status
from .training_controller import TrainingController
from .documents_view import DocumentsView
from .training_panel import TrainingPanel
from .worker import WorkerThread

log = logging.getLogger(__name__)

UNDO_MS = 15000  # how long Undo (a delete, an edit) stays offered
DRAWER_WIDTH = 330


def _tr(text: str) -> str:
    return QGuiApplication.translate("MainWindow", text)


def export_file_name(title: str, suffix: str) -> str:
    """A file name from a conversation's title: characters file systems refuse become "_"."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", title).strip(" ._")[:80]
    return (stem or "conversation") + suffix


class MainWindow(QMainWindow):
    def __init__(self, store, settings_store: SettingsStore, backend: Backend,
                 list_models: Callable[[], list[tuple[str, str]]] = lambda: [("SmolLM2-135M-Instruct", "default")],
                 on_model_loaded: Optional[Callable[[str], None]] = None, autoload: bool = True,
                 adapters_dir: Optional[Path] = None) -> None:
        super().__init__()
        self.store = store
        self.settings_store = settings_store
        self.settings: AppSettings = settings_store.load()
        self.list_models = list_models
        self.adapters_dir = adapters_dir  # None: the user data dir's adapters/

        self.setWindowTitle("chatapp")
        self.resize(1200, 780)
        self._build()
        self.worker_thread = WorkerThread(backend, self)
        self.model = ModelController(self.worker_thread, self.settings, settings_store,
                                     display_name=self.header.model_name, on_model_loaded=on_model_loaded,
                                     parent=self)
        self.chat_controller = ChatController(store, self.settings, self.worker_thread, self.model, self.chat,
                                              parent=self)
        self.training = TrainingController(self.chat_controller, self.model, self.worker_thread,
                                           self.training_panel, parent=self)
        # The local API server: its switch at the end of the drawer, its activity in the status bar.
        self.server = ServerController(  # the Train tab's adapters for this model are served too
            self.worker_thread, lambda: self.model.info, Path(self.store.path).parent / "library.sqlite3",
            parent=self, adapters=lambda: adapters_for_model(self.training_panel.outputs.adapters,
                                                             self.settings.model))
        self.server_panel = ServerPanel(self.server, settings=self.settings,
                                        save=lambda: self.settings_store.save(self.settings))
        drawer_layout = self.settings_panel.layout()
        drawer_layout.insertWidget(drawer_layout.count() - 1, self.server_panel)  # above the stretch
        self.api_label = QLabel("")
        self.statusBar().addPermanentWidget(self.api_label)
        self.server.activity_changed.connect(self._show_api_activity)
        self._connect()
        self._shut_down = False
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

        self.settings_panel.apply(self.settings)
        self.header.set_models(self.list_models(), self.settings.model)
        self.model.estimate(self.header.current_spec())
        self.set_conversations_visible(self.settings.conversations_visible)
        if settings_store.warning:
            self.statusBar().showMessage(settings_store.warning, 10000)
        conversations = self.store.list_conversations()
        if conversations:
            self.chat_controller.open(conversations[0].id)
        else:
            self.refresh_conversations()
            self._conversation_opened(None)  # the prompt a new chat will start with
        self._update_state()
        if autoload:
            self.model.load_saved()

    # -- what tests and scripts read ---------------------------------------------------------
    @property
    def streaming(self) -> bool:
        return self.chat_controller.streaming

    @property
    def current_id(self) -> Optional[int]:
        return self.chat_controller.current_id

    @property
    def model_info(self) -> Optional[ModelInfo]:
        return self.model.info

    @property
    def loading_spec(self) -> Optional[str]:
        return self.model.loading_spec

    @property
    def adapter(self) -> str:
        return self.model.adapter

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.conversations = ConversationList()
        self.conversations.layout().setContentsMargins(9, 9, 0, 9)  # in line with the centre column
        self.chat = ChatView()
        self.composer = Composer()
        self.composer.setPlaceholderText(_tr("Message the model (Enter sends, Shift+Enter for a new line)"))
        self.composer.setAccessibleName(_tr("Message"))
        self.composer.setMaximumHeight(96)
        self.image_tray = ImageTray()  # images attached to the message (attach, paste, drop)
        self.composer.tray = self.image_tray
        self.attach_button = QPushButton(_tr("Attach image…"))
        self.attach_button.setAccessibleName(_tr("Attach images to the message"))
        self.send_button = QPushButton(_tr("Send"))
        self.send_button.setAccessibleName(_tr("Send message"))
        self.stop_button = QPushButton(_tr("Stop"))
        self.stop_button.setAccessibleName(_tr("Stop the reply"))
        self.header = ChatHeader()
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.addWidget(self.header)
        column.addWidget(self.chat, 1)
        column.addWidget(self.image_tray)
        row = QHBoxLayout()
        row.addWidget(self.composer, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.attach_button)
        self.documents_selector = DocumentsSelector()  # the conversation's library (ChatController)
        buttons.addWidget(self.documents_selector)
        buttons.addStretch(1)
        row.addLayout(buttons)
        column.addLayout(row)
        self.settings_panel = SettingsPanel()
        self.drawer = SettingsDrawer(self.settings_panel)
        self.drawer.setMinimumWidth(DRAWER_WIDTH - 40)
        self.drawer.hide()  # closed until asked for
        self.splitter = splitter = QSplitter()
        splitter.addWidget(self.conversations)
        splitter.addWidget(centre)
        splitter.addWidget(self.drawer)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([240, 960, 0])
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
        self.model_label.setObjectName("modelInUse")
        self.context_label = QLabel("")
        self.speed_label = QLabel("")
        self.weights_label = QLabel("")  # the loaded model's weights option; why, in its tooltip
        self.weights_label.setObjectName("weightsInUse")
        self.undo_button = QPushButton(_tr("Undo delete"))
        self.undo_button.setAccessibleName(_tr("Undo"))
        self.undo_button.hide()
        self.undo_timer = QTimer(self, singleShot=True, interval=UNDO_MS)
        self.undo_timer.timeout.connect(self.undo_button.hide)
        for widget in (self.undo_button, self.model_label, self.weights_label, self.context_label, self.speed_label):
            status.addPermanentWidget(widget)

    def _connect(self) -> None:
        chat, model, header = self.chat_controller, self.model, self.header
        self._build_menu()
        self.send_button.clicked.connect(self.send)
        self.attach_button.clicked.connect(self.attach_images)
        worker = self.worker_thread.worker  # each image's context cost, worked out in its thread
        self.image_tray.cost_requested.connect(worker.image_cost)
        worker.image_costed.connect(self.image_tray.set_cost)
        worker.image_cost_failed.connect(self.image_tray.cost_failed)
        self.composer.submitted.connect(self.send)
        self.stop_button.clicked.connect(chat.stop)
        self.documents_selector.list_libraries = chat.libraries
        self.documents_selector.chosen.connect(chat.set_library)
        chat.library_changed.connect(self.documents_selector.show_library)
        self.chat.edit_submitted.connect(chat.edit_and_resend)
        self.chat.edit_with_images.connect(chat.edit_and_resend_with_images)
        self.chat.regenerate_requested.connect(chat.regenerate)
        self.chat.continue_requested.connect(chat.continue_reply)
        self.chat.branch_requested.connect(chat.switch_branch)
        self.chat.delete_branch_requested.connect(chat.delete_branch)
        self.chat.alternative_requested.connect(chat.continue_from_alternative)
        self.conversations.selected.connect(chat.open)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.rename_requested.connect(chat.rename)
        self.conversations.delete_requested.connect(chat.delete)
        self.conversations.search_changed.connect(self._search_changed)
        self.conversations.export_requested.connect(self.export_conversation)
        self.conversations.import_requested.connect(self.import_conversation)
        self.undo_button.clicked.connect(self.undo)
        chat.state_changed.connect(self._update_state)
        chat.conversations_changed.connect(self.refresh_conversations)
        chat.conversation_opened.connect(self._conversation_opened)
        chat.status_message.connect(self._show_message)
        chat.context_changed.connect(self._show_context)
        chat.speed_changed.connect(self._show_speed)
        chat.undo_available.connect(self._offer_undo)
        header.load_requested.connect(model.load)
        header.cancel_load_requested.connect(model.cancel)
        header.selection_changed.connect(model.estimate)
        header.system_prompt_edited.connect(self._system_prompt_edited)
        header.follow(model)
        self.settings_panel.changed.connect(self._settings_changed)
        self.drawer.close_requested.connect(lambda: self.set_drawer_open(False))
        model.loaded.connect(self._on_model_loaded)
        model.estimated.connect(self._on_estimated)
        model.load_failed.connect(self._on_model_failed)
        model.state_changed.connect(self._update_state)
        model.status_message.connect(self._show_message)
        self.training.status_message.connect(self._show_message)

    def open_finetune_diff(self) -> None:
        """The fine-tune view (finetune_diff.py), holding the last reply of the open conversation."""
        from .finetune_diff import FineTuneDiffController, FineTuneDiffView

        if getattr(self, "finetune_diff", None) is None:
            self.finetune_diff = FineTuneDiffView(self)
            self.finetune_diff.setWindowFlag(Qt.Window)
            self.finetune_diff.resize(800, 600)
            self.finetune_diff_controller = FineTuneDiffController(self.finetune_diff, self.worker_thread,
                                                                   self.chat_controller, self)
        replies = [m for m in self.store.messages(self.current_id) if m.role == "assistant"] \
            if self.current_id is not None else []
        if replies and not self.finetune_diff.running:
            self.finetune_diff.set_text(replies[-1].content)
        self.finetune_diff.show()
        self.finetune_diff.raise_()

    def _build_menu(self) -> None:
        def action(menu, text, slot, shortcut=None):
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
        self.export_md_action = action(file_menu, _tr("Export conversation as Markdown…"),
                                       lambda: self.export_conversation(self.current_id, "markdown"), "Ctrl+E")
        self.export_json_action = action(file_menu, _tr("Export conversation as JSON…"),
                                         lambda: self.export_conversation(self.current_id, "json"), "Ctrl+Shift+E")
        file_menu.addSeparator()
        action(file_menu, _tr("Quit"), self.close, "Ctrl+Q")
        chat_menu = self.menuBar().addMenu(_tr("&Chat"))
        self.focus_action = action(chat_menu, _tr("Focus message box"), self.composer.setFocus, "Ctrl+L")
        self.stop_action = action(chat_menu, _tr("Stop reply"), self.chat_controller.stop, "Esc")
        self.regenerate_action = action(chat_menu, _tr("Regenerate reply"), self.chat_controller.regenerate, "Ctrl+R")
        self.continue_action = action(chat_menu, _tr("Continue reply"), self.chat_controller.continue_reply,
                                      "Ctrl+Shift+R")
        chat_menu.addSeparator()
        prompt = self.header.prompt_action
        prompt.setShortcut(QKeySequence("Ctrl+Shift+P"))
        chat_menu.addAction(prompt)
        self.addAction(prompt)
        self.rename_action = action(chat_menu, _tr("Rename conversation"), self.rename_current, "F2")
        self.delete_action = action(chat_menu, _tr("Delete conversation"), self.delete_current, "Ctrl+Shift+Delete")
        chat_menu.addSeparator()
        self.finetune_diff_action = action(chat_menu, _tr("What the fine-tune changed…"), self.open_finetune_diff)
        view_menu = self.menuBar().addMenu(_tr("&View"))
        self.list_action = action(view_menu, _tr("Conversation list"), self.set_conversations_visible, "Ctrl+B")
        self.settings_action = action(view_menu, _tr("Settings"), self.set_drawer_open, "Ctrl+,")
        for act, button, glyph, tip in (
                (self.list_action, self.header.list_button, "☰", _tr("Show or hide the conversations (Ctrl+B)")),
                (self.settings_action, self.header.settings_button, "⚙", _tr("Open or close the settings (Ctrl+,)"))):
            act.setCheckable(True)
            act.setIconText(glyph)  # what the header's button shows; the menu shows the text
            act.setToolTip(tip)
            button.setDefaultAction(act)  # the button and the menu item are one toggle
            button.setAccessibleName(act.text())
        help_menu = self.menuBar().addMenu(_tr("&Help"))
        action(help_menu, _tr("About chatapp"), self.show_about)

    def show_about(self) -> None:
        QMessageBox.about(self, _tr("About chatapp"),
                          _tr("chatapp {version}\n\nChat with a language model on your own machine, "
                              "and teach it your own documents.").format(version=__version__))

    # -- state ----------------------------------------------------------------------------
    @Slot()
    def _update_state(self) -> None:
        ready = self.chat_controller.can_chat()
        self.send_button.setEnabled(ready)
        self.stop_button.setEnabled(self.streaming)
        self.chat.update_actions(ready)
        last = self.chat.messages[-1] if self.chat.messages else None
        last_reply = ready and last is not None and last.role == "assistant"  # as the reply's own buttons
        self.stop_action.setEnabled(self.streaming)
        self.regenerate_action.setEnabled(last_reply)
        self.continue_action.setEnabled(last_reply and last.can_continue)
        has_conversation = self.current_id is not None
        for act in (self.export_md_action, self.export_json_action, self.rename_action, self.delete_action):
            act.setEnabled(has_conversation)
        info = self.model.info
        if info:
            text = f"{info.name} · {info.device}"
            if info.adapter:
                text += " · " + _tr("adapter {name}").format(name=Path(info.adapter).name)
            self.model_label.setText(text)
            self.model_label.setToolTip(info.adapter)
        elif self.loading_spec:
            self.model_label.setText(_tr("Loading model…"))

    @Slot(str, int)
    def _show_message(self, text: str, ms: int) -> None:
        if text:
            self.statusBar().showMessage(text, ms)
        else:
            self.statusBar().clearMessage()

    @Slot(int)
    def _show_context(self, used: int) -> None:
        info = self.model.info
        self.context_label.setText(_tr("context {used}/{limit}").format(used=used, limit=info.context_len)
                                   if info else "")

    @Slot(float)
    def _show_speed(self, speed: float) -> None:
        self.speed_label.setText(_tr("{speed:.1f} tok/s").format(speed=speed))

    @Slot(int)
    def _show_api_activity(self, running: int) -> None:
        self.api_label.setText(activity_text(running))

    # -- the drawer and the list ----------------------------------------------------------
    @Slot(bool)
    def set_drawer_open(self, shown: bool) -> None:
        """Open or close the settings drawer (never remembered: it opens closed)."""
        self.drawer.setVisible(shown)
        self.settings_action.setChecked(shown)
        if shown:
            sizes = self.splitter.sizes()
            if sizes[2] < DRAWER_WIDTH // 2:  # first opening: take the drawer's width from the chat
                self.splitter.setSizes([sizes[0], max(sizes[1] - DRAWER_WIDTH, 300), DRAWER_WIDTH])
            self.settings_panel.device.setFocus()

    @Slot(bool)
    def set_conversations_visible(self, shown: bool) -> None:
        """Show or collapse the conversation list; kept in the settings."""
        self.conversations.setVisible(shown)
        self.list_action.setChecked(shown)
        if self.settings.conversations_visible != shown:
            self.settings.conversations_visible = shown
            self.settings_store.save(self.settings)

    def _settings_changed(self) -> None:
        theme, language = self.settings.theme, self.settings.language
        device, context, weights = self.settings.device, self.settings.context_len, self.settings.weights
        self.settings_panel.read_into(self.settings)
        self.settings_store.save(self.settings)
        if (self.settings.device, self.settings.context_len, self.settings.weights) != (device, context, weights):
            # memory needs change
            self.header.forget_estimates()
            self.header.show_weights_choice()
            self.model.estimate(self.header.current_spec())
        if self.settings.theme != theme:
            from .theme import apply_theme
            apply_theme(QApplication.instance(), self.settings.theme)
        if self.settings.language != language:  # our widgets are built translated, once
            self.statusBar().showMessage(_tr("The language changes the next time chatapp starts."), 10000)

    @Slot(str)
    def _system_prompt_edited(self, text: str) -> None:
        self.chat_controller.set_system_prompt(text)
        self.settings_store.save(self.settings)

    @Slot(object)
    def _conversation_opened(self, conv_id: Optional[int]) -> None:
        """The prompt box shows the open conversation's own system prompt."""
        self.header.show_system_prompt(self.chat_controller.system_prompt())

    # -- model ----------------------------------------------------------------------------
    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.image_tray.set_model(info.name, info.vision, info.max_images, info.image_tokens)
        self.settings_panel.show_recommended(info.sampling_defaults)
        self.weights_label.setText(weights_status(info, self.model.weights_for(self.settings.model) == "auto"))
        self.weights_label.setToolTip(info.weights_reason)
        if info.weights_reason:
            self.statusBar().showMessage(_tr("Weights: {reason}").format(reason=info.weights_reason), 15000)
        self._show_context(self.chat_controller.context_used())
        self._update_state()
        self.composer.setFocus()

    @Slot(str, object)
    def _on_estimated(self, spec: str, estimate) -> None:
        """The settings' weights choice shows each option's fit for the model chosen in the list."""
        if spec == self.header.current_spec() and estimate.options:
            self.settings_panel.weights.show_fit(estimate.options, estimate.auto_weights)

    @Slot(str, str)
    def _on_model_failed(self, spec: str, message: str) -> None:
        self.statusBar().showMessage(_tr("Model load failed: {message}").format(message=message), 15000)

    # -- conversations --------------------------------------------------------------------
    @Slot()
    def refresh_conversations(self) -> None:
        query = self.conversations.search.text().strip()
        if query:
            rows = [(c.id, c.title, snippet) for c, snippet in self.store.search(query)]
        else:
            rows = [(c.id, c.title, "") for c in self.store.list_conversations()]
        self.conversations.set_conversations(rows, self.current_id)

    @Slot(str)
    def _search_changed(self, _text: str) -> None:
        self.refresh_conversations()

    @Slot()
    def new_conversation(self) -> None:
        self.chat_controller.new_conversation()
        self.composer.setFocus()

    @Slot()
    def rename_current(self) -> None:
        item = self.conversations.list.currentItem()
        if item is not None:
            self.conversations.list.editItem(item)

    @Slot()
    def delete_current(self) -> None:
        if self.current_id is not None:
            self.chat_controller.delete(self.current_id)

    @Slot(str)
    def _offer_undo(self, kind: str) -> None:
        if not kind:
            self.undo_button.hide()
            return
        self.undo_button.setText(_tr("Undo delete") if kind == "delete" else _tr("Undo edit"))
        self.undo_button.setProperty("undo", kind)
        self.undo_button.show()
        self.undo_timer.start()

    @Slot()
    def undo(self) -> None:
        if self.undo_button.property("undo") == "edit":
            self.chat_controller.undo_edit()
        else:
            self.chat_controller.undo_delete()

    def export_conversation(self, conv_id: Optional[int], fmt: str) -> None:
        from ..storage.db import StorageError
        if conv_id is None:
            return
        suffix = ".md" if fmt == "markdown" else ".json"
        title = self.store.get_conversation(conv_id).title
        path, _ = QFileDialog.getSaveFileName(self, _tr("Export conversation"), export_file_name(title, suffix))
        if not path:
            return
        try:
            self.chat_controller.export_to(conv_id, fmt, Path(path))
        except (StorageError, OSError) as exc:  # shown, never a traceback dialog
            QMessageBox.warning(self, _tr("Export failed"), str(exc))

    def import_conversation(self) -> None:
        from ..storage.db import StorageError
        path, _ = QFileDialog.getOpenFileName(self, _tr("Import conversation"), "", _tr("JSON (*.json)"))
        if not path:
            return
        try:
            self.chat_controller.import_from(Path(path))
        except (StorageError, OSError) as exc:
            QMessageBox.warning(self, _tr("Import failed"), str(exc))

    # -- chatting -------------------------------------------------------------------------
    @Slot()
    def send(self) -> None:
        tray = self.image_tray
        if tray.pending:
            self._show_message(_tr("The images are still being read; your message is kept."), 5000)
            return
        info = self.model.info
        if tray.images and not (info and info.vision):
            # nothing typed or attached is lost: the message stays in the composer
            tray.show_error(_tr("This model cannot see images ({model}); remove them or load a vision model.")
                            .format(model=info.name if info else _tr("no model")))
            return
        if self.chat_controller.send(self.composer.toPlainText(), images=list(tray.images)):
            self.composer.clear()
            tray.take()

    @Slot()
    def attach_images(self) -> None:
        from .images import image_files_filter

        paths, _ = QFileDialog.getOpenFileNames(self, _tr("Attach images"), "", image_files_filter())
        for path in paths:
            self.image_tray.add_path(path)

    # -- closing --------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop any reply, keep what was written, end the training child and the worker thread.

        Runs on close and on application quit (whichever comes first; idempotent), so the
        generation thread is never destroyed while running.
        """
        if self._shut_down:
            return
        self._shut_down = True
        self.chat_controller.shutdown()
        self.image_tray.shutdown()
        self.server.shutdown()  # cancels the API's generations, so the worker thread can end
        self.training_panel.shutdown(timeout_s=10)
        self.worker_thread.shutdown()
        self._settings_changed()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.shutdown()
        super().closeEvent(event)
