"""JSONL files for `chatapp train --examples` (and training chats, quiz questions: one reader,
training/jsonl.py) as hostile input: a FIFO, a line of 40 MB, wrong types, numbers of
thousands of digits, lone surrogates, deep nesting. Each ends in DatasetError naming the file and
the line, in bounded time and memory."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chatapp.limits import JSONL_MAX_LINE_BYTES
from chatapp.training.dataset import DatasetError, read_chat_jsonl
from chatapp.training.knowledge import read_examples
from tests.helpers.bounded import run_bounded

GOOD = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})


@pytest.mark.parametrize("line, words", [
    ('{"text": 5}', "'text' must be non-empty text"),
    ('{"text": "  "}', "'text' must be non-empty text"),
    ('{"messages": "hi"}', "'messages' must be a non-empty list"),
    ('{"messages": [{"role": 1, "content": "x"}]}', "message 0 has role 1"),
    ('{"messages": [{"role": "user", "content": ["x"]}]}', "message 0 has no text 'content'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "no assistant message"),
    ('{"messages": [], "text": "x"}', 'exactly one of "messages"'),
    ("[1, 2]", 'expected an object {"messages": [...]} or {"text": "..."}'),
    ('"text"', "expected an object"),
    ("null", "expected an object"),
    ('{"text": ' + "9" * 5000 + "}", "not valid JSON: a number of more than 4,300 digits"),
    ('{"text": "a\\ud800b"}', "holds a lone surrogate (U+D800), which is not text"),
    ('{"messages": [{"role": "user", "content": "\\udfff"}, {"role": "assistant", "content": "a"}]}',
     "lone surrogate (U+DFFF)"),
    ('{"text": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested 10001 levels deep"),
    ('{"text": "x"', "not valid JSON"),
])
def test_a_bad_examples_line_is_one_error_naming_file_and_line(tmp_path, line, words):
    path = tmp_path / "examples.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        read_examples(path)
    assert str(info.value).startswith(f"{path}:3: ") and words in str(info.value), str(info.value)


def test_a_paired_surrogate_escape_is_text(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text('{"text": "smile \\ud83d\\ude00"}\n')
    assert read_examples(path) == [{"text": "smile \U0001F600"}]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX-only")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "examples.jsonl"
    os.mkfifo(fifo)
    result = run_bounded(f"""
        from chatapp.training.jsonl import jsonl_records

        class Refused(Exception):
            def __init__(self, path, problem, line):
                super().__init__(f"{{path}}: {{problem}}")
        try:
            list(jsonl_records({str(fifo)!r}, Refused))
            report(error=None)
        except Refused as exc:
            report(error=str(exc))
    """, timeout=30)
    assert result["error"] == f"{fifo}: is not a regular file (a FIFO, device or socket?)"


def test_a_40_mb_line_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "examples.jsonl"
    with open(path, "w") as f:
        f.write(GOOD + "\n")
        f.write('{"text": "' + "x" * (40 << 20) + '"}')  # no newline: a file of one endless line
    result = run_bounded(f"""
        from chatapp.training.jsonl import jsonl_records

        class Refused(Exception):
            def __init__(self, path, problem, line):
                super().__init__(f"line {{line}}: {{problem}}")
        before = peak_mb()
        try:
            list(jsonl_records({str(path)!r}, Refused))
            report(error=None, before=before)
        except Refused as exc:
            report(error=str(exc), before=before)
    """, memory=1 << 30, timeout=60)
    assert result["error"] == f"line 2: the line is longer than the {JSONL_MAX_LINE_BYTES:,} bytes allowed"
    # the line is read up to the limit (16 MB) and no further; reading it whole took 40 MB more, and
    # decoding and parsing it three times that
    assert result["max_rss_mb"] - result["before"] < 40, result
    assert result["seconds"] < 20


def test_chat_training_files_go_through_the_same_reader(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(GOOD + "\n" + '{"messages": [{"role": "user", "content": "\\ud800"}]}\n')
    with pytest.raises(DatasetError, match=r"chats\.jsonl:2: holds a lone surrogate"):
        list(read_chat_jsonl(path))


lines = st.one_of(st.just(GOOD), st.text(max_size=40), st.from_regex(r'\{"text": "[a-z\\\\]{0,8}"\}', fullmatch=True),
                  st.recursive(st.none() | st.integers() | st.text(max_size=8) | st.sampled_from(["\ud800"]),
                               lambda inner: st.lists(inner, max_size=3)
                               | st.dictionaries(st.sampled_from(["text", "messages", "role", "content"]), inner,
                                                 max_size=3)).map(json.dumps))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, min_size=1, max_size=4))
def test_any_examples_file_is_examples_or_our_error(tmp_path, content):
    path = tmp_path / "examples.jsonl"
    path.write_text("\n".join(content).replace("\r", " "), encoding="utf-8", errors="surrogatepass")
    try:
        examples = read_examples(path)
    except DatasetError as exc:
        assert str(exc).startswith(str(path)), str(exc)
    else:
        assert examples and all(isinstance(e, dict) for e in examples)
        assert all(json.dumps(e, ensure_ascii=False).encode("utf-8") for e in examples)
