"""Code-block colours: the line lexer, and the highlighter on a real code block."""

from __future__ import annotations

import pytest

from chatapp.ui.highlight import (BLOCK_COMMENT, PLAIN, TRIPLE_DOUBLE, CodeHighlighter, language_of, lex_line)


def kinds(line: str, language: str, state: int = PLAIN) -> list[tuple[str, str]]:
    spans, _ = lex_line(line, language, state)
    return [(line[s.start:s.start + s.length], s.kind) for s in spans]


def test_python_line():
    assert kinds('def f(x=0x1F): return "a # b" + 2.5  # done', "python") == [
        ("def", "keyword"), ("0x1F", "number"), ("return", "keyword"), ('"a # b"', "string"),
        ("2.5", "number"), ("# done", "comment")]


def test_identifiers_with_digits_and_keyword_prefixes_stay_plain():
    assert kinds("format2 = definitely + x1", "python") == []


def test_escaped_quote_stays_inside_the_string():
    assert kinds(r'let s = "say \"hi\""; // note', "javascript") == [
        ("let", "keyword"), (r'"say \"hi\""', "string"), ("// note", "comment")]


def test_block_comment_and_triple_quoted_string_carry_over_lines():
    spans, state = lex_line("int x = 1; /* starts", "c")
    assert state == BLOCK_COMMENT and spans[-1].kind == "comment"
    assert kinds("still comment */ return x;", "c", state) == [
        ("still comment */", "comment"), ("return", "keyword")]
    _, state = lex_line('doc = """first', "python")
    assert state == TRIPLE_DOUBLE
    assert kinds('middle', "python", state) == [("middle", "string")]
    assert lex_line('end""" if x else None', "python", state)[1] == PLAIN


def test_sql_is_case_insensitive_and_shell_comments():
    assert kinds("SELECT name FROM t -- all", "sql") == [("SELECT", "keyword"), ("FROM", "keyword"),
                                                        ("-- all", "comment")]
    assert kinds("echo $HOME # where", "shell") == [("echo", "keyword"), ("# where", "comment")]


def test_language_names_and_unknown_ones():
    assert language_of("Python") == "python" and language_of("tsx") == "javascript"
    assert language_of("c++") == "c" and language_of("") is None and language_of("brainfuck") is None


@pytest.mark.parametrize("line", ['"unterminated', "/*", "'", "0x", "`", "\\", '"""'])
def test_odd_input_never_fails(line):
    for language in ("python", "c", "javascript", "rust", "sql", "shell", "json", "go", "java"):
        spans, state = lex_line(line, language)
        assert all(0 <= s.start and s.start + s.length <= len(line) for s in spans)


def colour_at(editor, block_number: int, column: int):
    block = editor.document().findBlockByNumber(block_number)
    for fmt_range in block.layout().formats():
        if fmt_range.start <= column < fmt_range.start + fmt_range.length:
            return fmt_range.format.foreground().color().name()
    return None


def test_code_block_is_coloured_and_follows_the_language(qtbot):
    from chatapp.ui.chat_view import CodeBlock
    from chatapp.ui.markdown import Segment

    block = CodeBlock(Segment(kind="code", text="def f():\n    return 1  # one", language="python"))
    qtbot.addWidget(block)
    keyword = colour_at(block.editor, 0, 0)
    assert keyword is not None and keyword == colour_at(block.editor, 1, 4)  # def, return
    assert colour_at(block.editor, 1, 16) not in (None, keyword)  # the comment
    block.set_code("def f():\n    return 1  # one", "")  # no language: no colours
    assert colour_at(block.editor, 0, 0) is None
    block.set_code("def f():\n    return 1  # one", "py")
    assert colour_at(block.editor, 0, 0) == keyword


def test_dark_theme_uses_other_colours(qtbot):
    from PySide6.QtGui import QTextDocument
    document = QTextDocument("return 1")
    light = CodeHighlighter(document, "python", dark=False).formats["keyword"].foreground().color().name()
    dark = CodeHighlighter(QTextDocument(), "python", dark=True).formats["keyword"].foreground().color().name()
    assert light != dark
