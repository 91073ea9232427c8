"""UI translations: English source strings, Qt .qm catalogues shipped in resources/i18n."""

from __future__ import annotations

import logging

from PySide6.QtCore import QLibraryInfo, QLocale, QTranslator
from PySide6.QtWidgets import QApplication

from ..paths import bundled_resource

log = logging.getLogger(__name__)


def install_translator(app: QApplication, language: str = "") -> list[QTranslator]:
    """Load resources/i18n/chatapp_<lang>.qm for `language` (or the system locale), and with it
    Qt's own catalogue (qtbase_<lang>.qm: the text fields' context menus, standard buttons).
    Returns the translators installed, none when there is no catalogue for the language."""
    locale = QLocale(language) if language else QLocale.system()
    translator = QTranslator(app)
    folder = str(bundled_resource("resources/i18n"))
    if not translator.load(locale, "chatapp", "_", folder):
        return []
    app.installTranslator(translator)
    log.info("UI language: %s", locale.name())
    qt_translator = QTranslator(app)
    qt_folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    if qt_translator.load(locale, "qtbase", "_", qt_folder):
        app.installTranslator(qt_translator)
        return [translator, qt_translator]
    log.info("no Qt catalogue for %s in %s: Qt's own strings stay English", locale.name(), qt_folder)
    return [translator]
