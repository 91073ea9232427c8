"""Light and dark themes: follow the system's colour scheme unless the user picks one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

# One style sheet for both themes; the colours that palette roles do not cover come from
# THEME_COLORS. Qt resolves palette(...) when the sheet is applied, so apply it after the palette.
STYLE = """
QFrame#userMessage {{ border: none; border-radius: 10px; background: {user_bubble}; }}
QFrame#assistantMessage {{ border: none; border-radius: 10px; }}
QFrame#codeBlock {{ border: 1px solid {code_border}; border-radius: 6px; background: {code_background}; }}
QFrame#codeBlock QPlainTextEdit#codeText {{ background: {code_background}; color: palette(text); }}
QLabel#codeLanguage {{ color: palette(mid); font-size: 11px; }}
QLabel#messageStatus {{ color: palette(mid); }}
QLabel#emptyState {{ color: palette(mid); font-size: 15px; padding: 40px; }}
QLabel#modelStatus {{ color: palette(mid); font-size: 11px; }}
QLabel#drawerTitle {{ font-weight: bold; font-size: 14px; }}
QToolButton#headerToggle {{ font-size: 15px; padding: 2px 6px; }}
"""

THEME_COLORS = {
    "light": {"user_bubble": "#e8eef8", "code_background": "#f6f8fa", "code_border": "#d8dee4"},
    "dark": {"user_bubble": "#2b313b", "code_background": "#202226", "code_border": "#3a3d42"},
}


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        return hints.colorScheme() == Qt.ColorScheme.Dark
    return QGuiApplication.palette().color(QPalette.Window).lightness() < 128


def dark_palette() -> QPalette:
    p = QPalette()
    colors = {
        QPalette.Window: "#202124", QPalette.WindowText: "#e8eaed", QPalette.Base: "#17181a",
        QPalette.AlternateBase: "#2b2d31", QPalette.ToolTipBase: "#2b2d31", QPalette.ToolTipText: "#e8eaed",
        QPalette.Text: "#e8eaed", QPalette.Button: "#2b2d31", QPalette.ButtonText: "#e8eaed",
        QPalette.BrightText: "#ff6b6b", QPalette.Highlight: "#3d7be0", QPalette.HighlightedText: "#ffffff",
        QPalette.Link: "#8ab4f8", QPalette.PlaceholderText: "#9aa0a6", QPalette.Mid: "#9aa0a6",
        # the default palette's bevel colours are light ones: frames would glow in the dark
        QPalette.Light: "#3c4043", QPalette.Midlight: "#303134", QPalette.Dark: "#111214",
        QPalette.Shadow: "#000000",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        p.setColor(QPalette.Disabled, role, QColor("#6f7378"))
    return p


def light_palette() -> QPalette:
    p = QApplication.style().standardPalette()
    p.setColor(QPalette.AlternateBase, QColor("#eef2f7"))
    p.setColor(QPalette.Mid, QColor("#6b7280"))
    return p


def apply_theme(app: QApplication, theme: str = "system") -> str:
    """Apply "light", "dark" or "system"; returns the one applied."""
    app.setStyle("Fusion")
    dark = system_is_dark() if theme == "system" else theme == "dark"
    app.setPalette(dark_palette() if dark else light_palette())
    app.setStyleSheet(STYLE.format(**THEME_COLORS["dark" if dark else "light"]))
    return "dark" if dark else "light"
