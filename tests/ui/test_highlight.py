"""Code-block colours: Pygments' tokens folded into our kinds, and the highlighter on a real block."""

from __future__ import annotations

import pytest

from chatapp.ui.highlight import CodeHighlighter, language_of, lex


def kinds(text: str, language: str) -> list[tuple[str, str]]:
    return [(text[s.start:s.start + s.length], s.kind) for s in lex(text, language)]


def test_python_line():
    assert kinds('def f(x=0x1F): return "a # b" + 2.5  # done', "python") == [
        ("def", "keyword"), ("0x1F", "number"), ("return", "keyword"), ('"a # b"', "string"),
        ("2.5", "number"), ("# done", "comment")]


def test_identifiers_with_digits_and_keyword_prefixes_stay_plain():
    assert kinds("format2 = definitely + x1", "python") == []


def test_escaped_quote_stays_inside_the_string():
    assert kinds(r'let s = "say \"hi\""; // note', "javascript") == [
        ("let", "keyword"), (r'"say \"hi\""', "string"), ("// note", "comment")]


def test_block_comment_and_triple_quoted_string_span_lines():
    text = "int x = 1; /* starts\nstill comment */ return x;"
    assert kinds(text, "c") == [("int", "keyword"), ("1", "number"), ("/* starts\nstill comment */", "comment"),
                                ("return", "keyword")]
    text = 'doc = """first\nmiddle\nend""" if x else None'
    assert kinds(text, "python") == [('"""first\nmiddle\nend"""', "string"), ("if", "keyword"),
                                     ("else", "keyword"), ("None", "keyword")]


def test_offsets_survive_leading_newlines():
    text = "\n\nx = 1  # c\ny = 'q'"
    found = kinds(text, "python")
    assert ("# c", "comment") in found and ("'q'", "string") in found and ("1", "number") in found


def test_sql_is_case_insensitive_and_shell_comments():
    assert kinds("SELECT name FROM t -- all", "sql") == [("SELECT", "keyword"), ("FROM", "keyword"),
                                                        ("-- all", "comment")]
    assert kinds("echo 1 # where", "bash") == [("echo", "keyword"), ("1", "number"), ("# where", "comment")]


def test_language_names_and_unknown_ones():
    assert language_of("Python") == "python" and language_of("tsx") == "tsx"
    assert language_of("c++") == "cpp" and language_of("golang") == "go"
    assert language_of("") is None and language_of("no-such-language") is None
    assert lex("return 1", "no-such-language") == []


@pytest.mark.parametrize("text", ['"unterminated', "/*", "'", "0x", "`", "\\", '"""', "\x00", "\u2028 x"])
def test_odd_input_never_fails(text):
    for language in ("python", "c", "javascript", "rust", "sql", "bash", "json", "go", "java"):
        spans = lex(text, language)
        assert all(0 <= s.start and s.start + s.length <= len(text) for s in spans)


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


def test_a_string_opened_on_one_line_colours_the_next_and_closing_it_uncolours_them(qtbot):
    from PySide6.QtGui import QTextCursor
    from PySide6.QtWidgets import QPlainTextEdit

    editor = QPlainTextEdit()
    qtbot.addWidget(editor)
    highlighter = CodeHighlighter(editor.document(), "python")
    editor.setPlainText('x = 1\ny = 2\nz = 3')
    plain = colour_at(editor, 2, 0)
    cursor = QTextCursor(editor.document())
    cursor.setPosition(4)
    cursor.insertText('"""')  # line 0 now opens a string that never closes
    string = highlighter.formats["string"].foreground().color().name()
    assert colour_at(editor, 1, 0) == colour_at(editor, 2, 0) == string
    cursor.setPosition(4)
    cursor.setPosition(7, QTextCursor.KeepAnchor)
    cursor.removeSelectedText()
    assert colour_at(editor, 2, 0) == plain != string


def test_dark_theme_uses_other_colours(qtbot):
    from PySide6.QtGui import QTextDocument
    document = QTextDocument("return 1")
    light = CodeHighlighter(document, "python", dark=False).formats["keyword"].foreground().color().name()
    dark = CodeHighlighter(QTextDocument(), "python", dark=True).formats["keyword"].foreground().color().name()
    assert light != dark
