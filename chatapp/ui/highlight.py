"""Syntax colours for code blocks: a small line lexer and the QSyntaxHighlighter that uses it.

The lexer knows comments, strings, numbers and keywords for the languages models write most
(Python, the C family, JavaScript/TypeScript, Go, Rust, shell, SQL, JSON...), and carries one
piece of state from line to line: inside a block comment or a multi-line string. It never
fails on odd input: what it does not recognise stays plain text. An unknown language gets
no colours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

KEYWORDS = {
    "python": """and as assert async await break class continue def del elif else except False finally for
        from global if import in is lambda None nonlocal not or pass raise return True try while with yield
        match case self print len range""",
    "c": """auto break case char const continue default do double else enum extern float for goto if inline
        int long register return short signed sizeof static struct switch typedef union unsigned void volatile
        while bool true false NULL nullptr class namespace template typename public private protected virtual
        override new delete this using std include define""",
    "java": """abstract boolean break byte case catch char class const continue default do double else enum
        extends final finally float for if implements import instanceof int interface long native new null
        package private protected public return short static super switch synchronized this throw throws try
        void volatile while true false var string using namespace async await""",
    "javascript": """async await break case catch class const continue debugger default delete do else export
        extends false finally for function if import in instanceof let new null return super switch this throw
        true try typeof undefined var void while with yield of interface type enum implements readonly as from
        console""",
    "go": """break case chan const continue default defer else fallthrough for func go goto if import interface
        map package range return select struct switch type var nil true false string int error""",
    "rust": """as async await break const continue crate else enum extern false fn for if impl in let loop match
        mod move mut pub ref return self Self static struct super trait true type unsafe use where while Some
        None Ok Err String Vec""",
    "shell": """if then else elif fi for while until do done case esac function in return exit export local
        echo cd set unset source read shift""",
    "sql": """select from where and or not insert into values update set delete create table drop alter index
        join left right inner outer on group by order having limit offset as distinct null is in like between
        primary key foreign references union all case when then else end count sum avg min max""",
    "json": "true false null",
}
ALIASES = {
    "py": "python", "python3": "python", "python": "python", "ipython": "python",
    "c": "c", "h": "c", "cpp": "c", "c++": "c", "cc": "c", "hpp": "c", "cxx": "c", "objc": "c",
    "java": "java", "kotlin": "java", "kt": "java", "scala": "java", "cs": "java", "csharp": "java", "c#": "java",
    "swift": "java", "dart": "java",
    "js": "javascript", "javascript": "javascript", "jsx": "javascript", "ts": "javascript",
    "typescript": "javascript", "tsx": "javascript", "node": "javascript",
    "go": "go", "golang": "go", "rust": "rust", "rs": "rust",
    "sh": "shell", "bash": "shell", "shell": "shell", "zsh": "shell", "console": "shell",
    "sql": "sql", "json": "json",
}
# (line comment, block comment open, block comment close)
COMMENTS = {
    "python": ("#", None, None), "shell": ("#", None, None), "sql": ("--", "/*", "*/"), "json": (None, None, None),
}
C_COMMENTS = ("//", "/*", "*/")
CASE_INSENSITIVE = {"sql"}

NUMBER = re.compile(r"\b(0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*(\.\d+)?([eE][+-]?\d+)?)\b")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Line states carried between lines (QSyntaxHighlighter block states).
PLAIN, BLOCK_COMMENT, TRIPLE_DOUBLE, TRIPLE_SINGLE, BACKTICK = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Span:
    start: int
    length: int
    kind: str  # "keyword", "string", "comment", "number"


def language_of(name: str) -> Optional[str]:
    """The lexer's language for a fence's info string ("Python", "tsx", "c++"), or None."""
    return ALIASES.get(name.strip().lower().split()[0]) if name.strip() else None


def lex_line(line: str, language: str, state: int = PLAIN) -> tuple[list[Span], int]:
    """Coloured spans of one line, and the state the next line starts in."""
    keywords = set(KEYWORDS[language].split())
    if language in CASE_INSENSITIVE:
        keywords = {k.lower() for k in keywords}
    line_comment, block_open, block_close = COMMENTS.get(language, C_COMMENTS)
    spans: list[Span] = []
    i, n = 0, len(line)

    def close(opener: str, kind: str, start: int, from_: int, still: int) -> tuple[int, int]:
        """Find `opener` from `from_`; span start..end; (next index, state after)."""
        end = line.find(opener, from_)
        if end < 0:
            spans.append(Span(start, n - start, kind))
            return n, still
        spans.append(Span(start, end + len(opener) - start, kind))
        return end + len(opener), PLAIN

    if state == BLOCK_COMMENT and block_close:
        i, state = close(block_close, "comment", 0, 0, BLOCK_COMMENT)
    elif state in (TRIPLE_DOUBLE, TRIPLE_SINGLE):
        quote = '"""' if state == TRIPLE_DOUBLE else "'''"
        i, state = close(quote, "string", 0, 0, state)
    elif state == BACKTICK:
        i, state = close("`", "string", 0, 0, BACKTICK)
    else:
        state = PLAIN
    while i < n and state == PLAIN:
        ch = line[i]
        if line_comment and line.startswith(line_comment, i):
            spans.append(Span(i, n - i, "comment"))
            break
        if block_open and line.startswith(block_open, i):
            i, state = close(block_close, "comment", i, i + len(block_open), BLOCK_COMMENT)
            continue
        if language == "python" and line.startswith(('"""', "'''"), i):
            quote = line[i:i + 3]
            i, state = close(quote, "string", i, i + 3, TRIPLE_DOUBLE if quote == '"""' else TRIPLE_SINGLE)
            continue
        if language == "javascript" and ch == "`":
            i, state = close("`", "string", i, i + 1, BACKTICK)
            continue
        if ch in "\"'" and not (language == "rust" and ch == "'"):  # Rust's ' is mostly a lifetime
            j = i + 1
            while j < n and line[j] != ch:
                j += 2 if line[j] == "\\" else 1
            j = min(j + 1, n)
            spans.append(Span(i, j - i, "string"))
            i = j
            continue
        word = WORD.match(line, i)
        if word:
            text = word.group(0)
            if (text.lower() if language in CASE_INSENSITIVE else text) in keywords:
                spans.append(Span(i, len(text), "keyword"))
            i = word.end()
            continue
        number = NUMBER.match(line, i)
        if number and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == "_")):
            spans.append(Span(i, number.end() - i, "number"))
            i = number.end()
            continue
        i += 1
    return spans, state


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
    """Colours a code block's document by `lex_line`; set_language("") switches colours off."""

    def __init__(self, document: QTextDocument, language: str = "", dark: bool = False) -> None:
        super().__init__(document)
        self.language = language_of(language)
        self.formats = _palette(dark)

    def set_language(self, language: str) -> None:
        found = language_of(language)
        if found != self.language:
            self.language = found
            self.rehighlight()

    def set_dark(self, dark: bool) -> None:
        self.formats = _palette(dark)
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt naming)
        if self.language is None:
            self.setCurrentBlockState(PLAIN)
            return
        previous = self.previousBlockState()
        spans, state = lex_line(text, self.language, previous if previous > 0 else PLAIN)
        for span in spans:
            self.setFormat(span.start, span.length, self.formats[span.kind])
        self.setCurrentBlockState(state)
