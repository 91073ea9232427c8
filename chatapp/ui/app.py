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
            choices.append((label, "default" if entry.kind == "default" else str(entry.path)))
    return choices


def _remember(spec: str) -> None:
    if spec == "default":
        return
    from ..weights.discovery import RecentModels
    RecentModels().add(spec)


def create_window(autoload: bool = True, profile_dir: Optional[Path] = None):
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from ..paths import bundled_resource
    from .i18n import install_translator
    from .main_window import MainWindow
    from .theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("chatapp")
    app.setWindowIcon(QIcon(str(bundled_resource("resources/icons/chatapp-256.png"))))
    store, settings_store, backend, warning = _services(profile_dir)
    settings = settings_store.load()
    apply_theme(app, settings.theme)
    install_translator(app, settings.language)
    window = MainWindow(store, settings_store, backend, list_models=_model_choices,
                        on_model_loaded=None if profile_dir else _remember, autoload=autoload)
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
