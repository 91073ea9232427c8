"""Small helpers the Train tab's widgets share: wording of sizes and durations, table defaults."""

from __future__ import annotations

import math

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget

RED = "color: #c0392b;"


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingPanel", text)


def human_bytes(n: float) -> str:
    """Binary units, as the Chat tab shows memory: "2.33 GiB", "512.0 MiB", "3.4 KiB"."""
    if n >= 1024**3:
        return _tr("{n:.2f} GiB").format(n=n / 1024**3)
    if n >= 1024**2:
        return _tr("{n:.1f} MiB").format(n=n / 1024**2)
    if n >= 1024:
        return _tr("{n:.1f} KiB").format(n=n / 1024)
    return _tr("{n} B").format(n=int(n))


def memory_text(n: float) -> str:
    """Memory in GiB with two decimals, always: the unit the Chat tab's model estimate uses."""
    return _tr("{n:.2f} GiB").format(n=n / 1024**3)


def format_eta(seconds) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return "…"
    s = int(round(seconds))
    if s < 60:
        return _tr("{s} s").format(s=s)
    if s < 3600:
        return _tr("{m} min {s:02d} s").format(m=s // 60, s=s % 60)
    return _tr("{h} h {m:02d} min").format(h=s // 3600, m=s % 3600 // 60)


def format_eta_range(low, high) -> str:
    """"3 min to 5 min": rounded to what the estimate can promise (whole minutes past a minute)."""
    def rounded(s: float) -> str:
        if s < 60:
            return _tr("{s} s").format(s=max(1, int(round(s / 5.0)) * 5) if s >= 5 else int(round(s)))
        if s < 3600:
            return _tr("{m} min").format(m=int(round(s / 60)))
        return format_eta(s)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
        return "…"
    return _tr("{low} to {high}").format(low=rounded(low), high=rounded(high))


def table_defaults(table: QTableWidget) -> None:
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    table.setSelectionMode(QAbstractItemView.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
