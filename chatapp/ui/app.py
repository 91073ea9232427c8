"""Start the window: services, theme, translations, and the qasync event loop.

`run_window` is what `chatapp` runs; `create_window` builds the window with its services.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)


def _tr(text: str) -> str:
    from PySide6.QtGui import QGuiApplication
    return QGuiApplication.translate("App", text)


def second_instance_text() -> str:
    """The banner of a window that is not the only one on its data."""
    return _tr("chatapp is already open in another window: conversations are shared and saved by both; "
               "settings changed here may be overwritten by the other window.")


def _services(profile_dir: Optional[Path] = None):
    """Store, settings, backend; `profile_dir` replaces the user's data and config dirs."""
    from ..engine.backend import ChatBackend
    from ..paths import user_config_dir, user_data_dir
    from ..storage.db import ConversationStore, CorruptDatabaseError, move_aside
    from ..storage.settings import SettingsStore

    data_dir = profile_dir or user_data_dir()
    config_dir = profile_dir or user_config_dir()
    db_path = data_dir / "conversations.sqlite3"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    warning = None
    try:
        store = ConversationStore(db_path)
    except CorruptDatabaseError as exc:
        # Only a damaged file is set aside (kept, never deleted); any other StorageError
        # (too new, locked, no permission) stops start-up with its message.
        aside = move_aside(db_path)
        warning = f"{exc}. The damaged file was kept as {aside.name}; a new history was started."
        store = ConversationStore(db_path)
    store.purge_deleted()  # conversations deleted over 30 days ago
    settings = SettingsStore(config_dir / "settings.json")
    return store, settings, ChatBackend(), warning


def _model_choices() -> list[tuple[str, str]]:
    from ..weights.discovery import list_models
    choices = []
    for entry in list_models(include_recent=True):
        if getattr(entry, "available", True):
            label = entry.name if entry.source != "recent" else _tr("{name} (recent)").format(name=entry.name)
            if entry.sees_images:
                label = _tr("{name} — sees images").format(name=label)
            choices.append((label, "default" if entry.kind == "default" else str(entry.path)))
    return choices


def _remember(spec: str) -> None:
    if spec == "default":
        return
    from ..weights.discovery import RecentModels
    RecentModels().add(spec)


def show_second_instance_banner(window) -> None:
    """A bar across the top of `window` (under the menu) saying another window has the same data;
    it stays until closed, unlike a status-bar message."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QToolBar

    bar = QToolBar(window)
    bar.setObjectName("second_instance_banner")
    bar.setMovable(False)
    bar.setFloatable(False)
    label = QLabel(second_instance_text(), bar)
    label.setWordWrap(True)
    label.setObjectName("second_instance_text")
    bar.addWidget(label)
    bar.addAction(_tr("Dismiss"), bar.hide)
    window.addToolBar(Qt.TopToolBarArea, bar)
    window.second_instance_banner = bar


def create_window(autoload: bool = True, profile_dir: Optional[Path] = None, backend=None):
    """The window and its services; `backend` replaces the real ChatBackend (tests, the soak script).

    The window holds an `InstanceLock` in the data dir for its lifetime: a second window on the
    same data starts all the same, with a banner saying so (the database copes with two writers;
    settings are merged per key on save)."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from ..paths import bundled_resource, user_data_dir
    from ..storage.locks import InstanceLock
    from .i18n import install_translator
    from .main_window import MainWindow
    from .theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("chatapp")
    app.setWindowIcon(QIcon(str(bundled_resource("resources/icons/chatapp-256.png"))))
    store, settings_store, real_backend, warning = _services(profile_dir)
    instance_lock = InstanceLock(profile_dir or user_data_dir())
    try:
        alone = instance_lock.acquire()
    except OSError as exc:  # a read-only data dir: the database will say more; do not stop here
        log.warning("could not take the instance lock %s: %s", instance_lock.path, exc)
        alone = True
    if not alone:
        log.warning("another chatapp (process %s) uses %s", instance_lock.holder(), instance_lock.path.parent)
    settings = settings_store.load()
    apply_theme(app, settings.theme)
    install_translator(app, settings.language)
    window = MainWindow(store, settings_store, backend or real_backend, list_models=_model_choices,
                        on_model_loaded=None if profile_dir else _remember, autoload=autoload)
    window.instance_lock = instance_lock  # released when the process ends, or by the window's owner
    window.second_instance_banner = None
    if not alone:
        show_second_instance_banner(window)
    if warning:
        window.statusBar().showMessage(warning, 20000)
    return app, window


def run_window() -> int:
    import qasync
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ..storage.db import StorageError

    try:
        app, window = create_window()
    except StorageError as exc:  # e.g. a history written by a newer version: say so, change nothing
        QApplication.instance() or QApplication(sys.argv[:1])
        QMessageBox.critical(None, "chatapp", str(exc))
        return 1
    window.show()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    with loop:
        loop.run_until_complete(closed.wait())
    return 0
