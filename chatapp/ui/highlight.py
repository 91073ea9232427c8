"""Syntax colours for code blocks: Pygments lexes, a QSyntaxHighlighter paints.

Pygments knows the language names models put on their fences ("python", "tsx", "c++",
"golang", ...); an unknown name, or none, gets no colours. A code block is small, so the
highlighter lexes the whole block at once (once per edit of the document) and paints each
line's share: a comment or string that spans lines needs no state of our own. Pygments'
token types are folded into the four kinds our light and dark palettes colour.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from typing import Optional

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Comment, Keyword, Name, Number, Operator, String, _TokenType
from pygments.util import ClassNotFound
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

# Pygments token type -> our kind (the first that the token is a subtype of).
KINDS: tuple[tuple[_TokenType, str], ...] = (
    (Comment, "comment"),
    (String, "string"),
    (Number, "number"),
    (Keyword, "keyword"),
    (Operator.Word, "keyword"),  # and, or, not, in, is
    (Name.Builtin, "keyword"),  # print, len, echo, self
)
KIND_IDS = {"comment": 1, "string": 2, "number": 3, "keyword": 4}  # in a line's end state


@dataclass(frozen=True)
class Span:
    start: int
    length: int
    kind: str  # "keyword", "string", "comment", "number"


@functools.lru_cache(maxsize=64)
def _lexer(name: str) -> Optional[Lexer]:
    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return None


def language_of(name: str) -> Optional[str]:
    """The Pygments name of a fence's language ("Python", "tsx", "c++"), or None if unknown."""
    words = name.strip().lower().split()
    lexer = _lexer(words[0]) if words else None
    return lexer.aliases[0] if lexer is not None and lexer.aliases else None


@functools.lru_cache(maxsize=None)
def _kind(token: _TokenType) -> Optional[str]:
    return next((kind for parent, kind in KINDS if token in parent), None)


def lex(text: str, language: str) -> list[Span]:
    """Coloured spans of `text` (offsets into it), neighbours of one kind joined; [] when the
    language is unknown."""
    lexer = _lexer(language) if language else None
    if lexer is None:
        return []
    spans: list[Span] = []
    # Some lexers end a comment only at a newline (Pygments adds one in get_tokens; the
    # unprocessed tokens keep our offsets, so add it here and cut spans back to the text).
    for start, token, value in lexer.get_tokens_unprocessed(text + "\n"):
        kind = _kind(token)
        value = value[:max(0, len(text) - start)]
        if kind is None or not value:
            continue
        last = spans[-1] if spans else None
        if last is not None and last.kind == kind and last.start + last.length == start:
            spans[-1] = Span(last.start, last.length + len(value), kind)
        else:
            spans.append(Span(start, len(value), kind))
    return spans


def _palette(dark: bool) -> dict[str, QTextCharFormat]:
    colours = ({"keyword": "#c792ea", "string": "#c3e88d", "comment": "#7f8c98", "number": "#f78c6c"} if dark else
               {"keyword": "#7928a1", "string": "#0a7a28", "comment": "#6a737d", "number": "#b35900"})
    formats = {}
    for kind, colour in colours.items():
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(colour))
        if kind == "keyword":
            fmt.setFontWeight(QFont.Bold)
        if kind == "comment":
            fmt.setFontItalic(True)
        formats[kind] = fmt
    return formats


class CodeHighlighter(QSyntaxHighlighter):
    """Colours a code block's document by `lex`; set_language("") switches colours off."""

    def __init__(self, document: QTextDocument, language: str = "", dark: bool = False) -> None:
        super().__init__(document)
        self.language = language_of(language)
        self.formats = _palette(dark)
        # What was lexed (language, document revision and length), its spans, and each span's
        # end (for bisecting: spans never overlap).
        self._lexed: tuple[Optional[str], int, int] = (None, -1, -1)
        self._spans: list[Span] = []
        self._ends: list[int] = []

    def set_language(self, language: str) -> None:
        found = language_of(language)
        if found != self.language:
            self.language = found
            self.rehighlight()

    def set_dark(self, dark: bool) -> None:
        self.formats = _palette(dark)
        self.rehighlight()

    def _document_spans(self) -> list[Span]:
        """The whole document's spans, lexed again only when it or the language changed (Qt
        repaints line by line; an edit or a new reply chunk costs one lex of the block)."""
        document = self.document()
        key = (self.language, document.revision(), document.characterCount())
        if self._lexed != key:
            self._spans = lex(document.toPlainText(), self.language or "")
            self._ends = [span.start + span.length for span in self._spans]
            self._lexed = key
        return self._spans

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt naming)
        if self.language is None:
            self.setCurrentBlockState(0)
            return
        spans = self._document_spans()
        first = self.currentBlock().position()
        end = first + len(text)
        state = 0
        for index in range(bisect.bisect_right(self._ends, first), len(spans)):
            span = spans[index]
            if span.start > end:
                break
            lo, hi = max(span.start, first), self._ends[index]
            if lo < end:
                self.setFormat(lo - first, min(hi, end) - lo, self.formats[span.kind])
            if hi > end:  # the span runs on past this line: the next line's colours depend on it
                state = ((span.start + 1) * 8 + KIND_IDS[span.kind]) & 0x3FFFFFFF
        # A changed end state (which span crosses the line end) makes Qt repaint the next line.
        self.setCurrentBlockState(state)
