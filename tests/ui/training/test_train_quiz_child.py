"""The real `chatapp quiz --json --progress` child, supervised by the Train tab's QuizRunner, on a
tiny random model (tests/helpers/tiny_hf.py): progress per question, the summary, --docs indexed."""

from __future__ import annotations

import json
import os
import sys

import pytest

from helpers.tiny_hf import tiny_llama_folder

from chatapp.ui.training.quiz import QuizJob, QuizRunner, build_quiz_command
from tests.ui.training.conftest import REPO


def test_real_quiz_children_report_progress_and_scores(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    model = tiny_llama_folder(tmp_path / "model", max_len=512)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guild.md").write_text("# Guild\n\nThe Harbour Guild was founded by Mira Castell in 1874.\n")
    questions = tmp_path / "q.jsonl"
    asked = (("Who founded the guild?", "Mira Castell"), ("When was the Harbour Guild founded?", "1874"))
    questions.write_text("".join(json.dumps({"question": q, "answers": [a]}) + "\n" for q, a in asked))
    jobs = [QuizJob("base", str(model), str(questions)), QuizJob("base_docs", str(model), str(questions),
                                                                 docs=(str(docs),))]
    runner = QuizRunner(jobs, lambda job: build_quiz_command(job, prefix=[sys.executable, "-m", "chatapp"])
                        + ["--max-new-tokens", "4", "--device", "cpu"])
    progress, rows, ended = [], [], []
    runner.progress.connect(lambda job, done, total: progress.append((job.row, done, total)))
    runner.row_done.connect(lambda job, summary: rows.append((job.row, summary)))
    runner.finished.connect(lambda status, error: ended.append((status, error)))
    runner.start()
    qtbot.waitUntil(lambda: bool(ended), timeout=240000)
    assert ended == [("completed", "")]
    assert progress == [("base", 1, 2), ("base", 2, 2), ("base_docs", 1, 2), ("base_docs", 2, 2)]
    assert [row for row, _ in rows] == ["base", "base_docs"]
    base, with_docs = rows[0][1], rows[1][1]
    assert base["total"] == 2 and 0 <= base["score"] <= 2
    assert [q["context_chars"] for q in base["questions"]] == [0, 0]
    assert all(q["context_chars"] > 0 for q in with_docs["questions"])  # the passages were retrieved
