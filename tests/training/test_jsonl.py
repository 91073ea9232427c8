"""The one JSONL reader behind training chats, knowledge examples and quiz questions."""

from __future__ import annotations

import pytest

from chatapp.training.dataset import DatasetError
from chatapp.training.jsonl import jsonl_records
from chatapp.training.quiz import QuizError


def test_records_with_line_numbers_blank_lines_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n  \n[2]\n', encoding="utf-8")
    assert list(jsonl_records(path, DatasetError)) == [(1, {"a": 1}), (4, [2])]


@pytest.mark.parametrize("error", [DatasetError, QuizError])
def test_each_problem_names_the_file_and_line_in_the_callers_error(tmp_path, error):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"a": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(error, match=r"bad\.jsonl:2: not valid JSON"):
        list(jsonl_records(bad_json, error))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"a": 1}\n{"b": "caf\xe9"}\n')
    with pytest.raises(error, match=r"latin\.jsonl:2: is not UTF-8 text"):
        list(jsonl_records(latin, error))
    with pytest.raises(error, match="missing.jsonl: cannot be read"):
        list(jsonl_records(tmp_path / "missing.jsonl", error))
