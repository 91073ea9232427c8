"""Token views: a reply's tokens coloured by the probability the model gave each (with the
alternatives of the token under the mouse or selected, and "continue from this alternative"),
and the shared rendering of coloured tokens that the fine-tune view uses too.

A token is a dict as `engine.backend.logprob_entry` makes it: id, token (its text), logprob (the
raw log-softmax of the model's logits), sampled_prob (the probability the sampler gave it under
the settings in force: temperature, penalties, top-k/top-p/min-p; None for a forced token) and
top (the most probable alternatives, each id, token, logprob).
"""

from __future__ import annotations

import html
import math
from typing import Callable, Optional, Sequence

from PySide6.QtCore import QCoreApplication, Qt, QUrl, Signal
from PySide6.QtWidgets import (QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QTextBrowser, QVBoxLayout, QWidget)


def _tr(text: str) -> str:
    return QCoreApplication.translate("TokenView", text)


# (lowest probability of the band, background colour); text stays black on these light colours
PROBABILITY_BANDS = ((0.9, "#b7e4c7"), (0.5, "#e9f5db"), (0.2, "#fff3b0"), (0.05, "#ffd6a5"), (0.0, "#ffadad"))


def probability_colour(probability: float) -> str:
    return next(colour for low, colour in PROBABILITY_BANDS if probability >= low)


def percent(probability: Optional[float]) -> str:
    return "–" if probability is None else f"{100 * probability:.1f}%"


def _visible(text: str) -> str:
    """A token's text in HTML with its whitespace shown: a newline as ↵ and a line break (spaces
    stay spaces: the paragraph keeps them, and lines break there, not inside a word)."""
    return html.escape(text).replace("\n", "↵<br>") or "∅"


def tokens_html(tokens: Sequence[dict], colour: Callable[[int, dict], str], selected: Optional[int] = None) -> str:
    """Each token a link `#i` on its own background colour, in one flowing paragraph; the
    `selected` one bold and underlined."""
    marked = "font-weight:bold; text-decoration:underline"
    spans = [f'<a href="#{i}" style="background-color:{colour(i, t)}; color:#000000; '
             f'{marked if i == selected else "text-decoration:none"}">'
             f"{_visible(t.get('token', ''))}</a>" for i, t in enumerate(tokens)]
    return "<p style='line-height:140%; white-space:pre-wrap'>" + "".join(spans) + "</p>"


def legend_html(bands: Sequence[tuple[str, str]]) -> str:
    """A row of coloured swatches with their meaning: (colour, label) pairs."""
    return " ".join(f'<span style="background-color:{c}; color:#000000">&nbsp;{html.escape(label)}&nbsp;</span>'
                    for c, label in bands)


class TokenText(QTextBrowser):
    """Coloured tokens; `token_hovered(i)` as the mouse moves over token i, `token_clicked(i)`."""

    token_hovered = Signal(int)
    token_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setMinimumHeight(60)
        self.anchorClicked.connect(lambda url: self._emit(url, self.token_clicked))
        self.highlighted.connect(lambda url: self._emit(url, self.token_hovered))

    @staticmethod
    def _emit(url: QUrl, signal) -> None:
        if url.fragment().isdigit():
            signal.emit(int(url.fragment()))


class TokenView(QWidget):
    """One reply's tokens by probability, a legend, and the alternatives of one token."""

    alternative_chosen = Signal(int, int)  # token position in the reply, the alternative's token id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tokens: list[dict] = []
        self.selected: Optional[int] = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        self.legend = QLabel(_tr("Probability the model gave each token:") + " " + legend_html(
            [(c, f"≥ {low:.0%}" if low else f"< {PROBABILITY_BANDS[-2][0]:.0%}") for low, c in PROBABILITY_BANDS]))
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        self.text = TokenText()
        self.text.token_clicked.connect(self.select)
        self.text.token_hovered.connect(self._show_details)
        layout.addWidget(self.text)
        self.details = QLabel(_tr("Point at a token to see what the model was choosing between; click it to keep it."))
        self.details.setObjectName("tokenDetails")
        self.details.setTextFormat(Qt.PlainText)  # a token may be "<b>"
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        self.alternatives = QTableWidget(0, 3)
        self.alternatives.setHorizontalHeaderLabels([_tr("Token"), _tr("Model probability"), ""])
        self.alternatives.verticalHeader().setVisible(False)
        self.alternatives.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.alternatives.setEditTriggers(QTableWidget.NoEditTriggers)
        self.alternatives.setMaximumHeight(170)
        layout.addWidget(self.alternatives)

    def set_tokens(self, tokens: Sequence[dict]) -> None:
        self.tokens = list(tokens)
        self._render()
        if self.selected is not None and self.selected < len(self.tokens):
            self._show_details(self.selected)

    def _render(self) -> None:
        bar = self.text.verticalScrollBar().value()
        self.text.setHtml(tokens_html(self.tokens, lambda i, t: probability_colour(math.exp(t["logprob"])),
                                      self.selected))
        self.text.verticalScrollBar().setValue(bar)

    def select(self, position: int) -> None:
        """Keep token `position`'s alternatives shown (a click), so one can be chosen; it is marked."""
        self.selected = position
        self._render()
        self._show_details(position)

    def _show_details(self, position: int) -> None:
        if not 0 <= position < len(self.tokens):
            return
        token = self.tokens[position]
        self.details.setText(_tr("Token {n}: “{token}”, model {model}, sampler {sampler} (the probability it "
                                 "had under the sampling settings in force)").format(
            n=position + 1, token=token["token"], model=percent(math.exp(token["logprob"])),
            sampler=percent(token.get("sampled_prob"))))
        top = token.get("top", [])
        self.alternatives.setRowCount(len(top))
        for row, alt in enumerate(top):
            self.alternatives.setItem(row, 0, QTableWidgetItem(repr(alt["token"])[1:-1]))
            item = QTableWidgetItem(percent(math.exp(alt["logprob"])))
            item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.alternatives.setItem(row, 1, item)
            if alt["id"] == token["id"]:
                self.alternatives.setCellWidget(row, 2, QLabel(_tr("chosen")))
            else:
                button = QPushButton(_tr("Continue from this"))
                button.setToolTip(_tr("A new version of the reply: the same up to here, then this token"))
                button.clicked.connect(lambda _=False, p=position, i=alt["id"]: self.alternative_chosen.emit(p, i))
                self.alternatives.setCellWidget(row, 2, button)
