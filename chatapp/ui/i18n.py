"""UI translations: English source strings, Qt .qm catalogues shipped in resources/i18n."""

from __future__ import annotations

import logging

from PySide6.QtCore import QLocale, QTranslator
from PySide6.QtWidgets import QApplication

from ..paths import bundled_resource

log = logging.getLogger(__name__)


def install_translator(app: QApplication, language: str = "") -> QTranslator | None:
    """Load resources/i18n/chatapp_<lang>.qm for `language` (or the system locale)."""
    locale = QLocale(language) if language else QLocale.system()
    translator = QTranslator(app)
    folder = str(bundled_resource("resources/i18n"))
    if translator.load(locale, "chatapp", "_", folder):
        app.installTranslator(translator)
        log.info("UI language: %s", locale.name())
        return translator
    return None
