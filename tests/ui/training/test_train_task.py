"""The Train tab as a task: the quiz in a child fills the table, Teach shows the estimate first,
Advanced is collapsed, edited examples reach the next run, and the scores come back after a restart.

The quiz child is a fake script speaking `chatapp quiz --json --progress` (one line per answer,
then the summary), started through the panel's injected quiz command builder, so QProcess and
the line parsing run for real; its score depends on --adapter and --docs as a real model's would.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from PySide6.QtCore import Qt

from chatapp.ui.training.examples import EXAMPLES, QUESTIONS, JsonlEditor
from chatapp.ui.training.quiz import QUIZ_FILE, QuizJob, QuizRecord, build_quiz_command
from chatapp.ui.training_process import build_train_command

FAKE_QUIZ = r'''
import json, sys, time
args = sys.argv[1:]
questions = [json.loads(l) for l in open(args[args.index("--questions") + 1]) if l.strip()]
if "fail" in args:
    sys.stderr.write("error: the model could not be loaded\n")
    sys.exit(1)
right = (3 if "--adapter" in args else 0) + (5 if "--docs" in args else 0)
right = min(right, len(questions))
for i, q in enumerate(questions, start=1):
    time.sleep(0.3 if "slow" in args else 0.01)
    print(json.dumps({"kind": "quiz_item", "done": i, "total": len(questions), "correct": i <= right,
                      "question": q["question"]}), flush=True)
print(json.dumps({"model": "fake", "score": right, "total": len(questions), "seconds": 0.1, "questions": []}))
'''


@pytest.fixture
def quiz_builder(tmp_path):
    script = tmp_path / "fake_quiz.py"
    script.write_text(textwrap.dedent(FAKE_QUIZ))
    calls = []

    def make(*extra):
        def builder(job: QuizJob):
            calls.append(job)
            return build_quiz_command(job, prefix=[sys.executable, str(script)]) + list(extra)
        return builder

    make.calls = calls
    return make


@pytest.fixture
def questions_file(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"question": f"Q{i}?", "answers": [f"A{i}"]}) + "\n" for i in range(10)))
    return path


@pytest.fixture
def library_db(tmp_path, monkeypatch):
    """The user's document library store, in the test's folder."""
    from chatapp.documents import library

    path = tmp_path / "data" / "library.sqlite3"
    monkeypatch.setattr(library, "default_db_path", lambda: path)
    return path


@pytest.fixture
def task_panel(qtbot, tmp_path, builder_for, docs, quiz_builder, library_db):
    from chatapp.ui.training_panel import TrainingPanel

    made = []

    def make(mode="complete", quiz_extra=()):
        panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters", command_builder=builder_for(mode),
                              grace_s=2.0, quiz_builder=quiz_builder(*quiz_extra))
        qtbot.addWidget(panel)
        made.append(panel)
        panel.docs.set_data_paths([docs])
        qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
        return panel

    yield make
    for panel in made:
        panel.shutdown(timeout_s=2.0)


def cells(panel):
    table = panel.task.table
    return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(2)] for r in range(4)]


def test_quiz_command_line():
    argv = build_quiz_command(QuizJob("tuned_docs", "default", "/q.jsonl", adapter="/ad", docs=("/d1", "/d2")),
                              prefix=["chatapp"])
    assert argv == ["chatapp", "quiz", "--model", "default", "--questions", "/q.jsonl", "--adapter", "/ad",
                    "--docs", "/d1", "/d2", "--json", "--progress"]
    import argparse

    from chatapp.commands.quiz import add_quiz_parser
    parser = argparse.ArgumentParser()
    add_quiz_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv[1:])
    assert (args.adapter, args.docs, args.json, args.progress) == ("/ad", ["/d1", "/d2"], True, True)


def test_advanced_is_collapsed_by_default(task_panel, qtbot):
    panel = task_panel()
    panel.show()
    assert not panel.form.isVisible() and panel.advanced.isVisible() and not panel.advanced.isChecked()
    # one primary action: Teach; the plain run and the estimate alone come with the settings
    assert panel.task.teach_button.isVisible()
    assert not panel.run.start_button.isVisible() and not panel.run.estimate_button.isVisible()
    qtbot.mouseClick(panel.advanced, Qt.LeftButton)
    assert panel.form.isVisible() and panel.run.start_button.isVisible() and panel.run.estimate_button.isVisible()
    assert panel.run.start_button.text() == "Train with these settings"


def test_quiz_runs_in_a_child_and_fills_the_table(task_panel, qtbot, questions_file, quiz_builder, library_db):
    panel = task_panel(quiz_extra=("slow",))
    assert not panel.task.ask_button.isEnabled()  # no questions yet
    panel.task.set_questions(str(questions_file))
    assert panel.task.ask_button.isEnabled()
    qtbot.mouseClick(panel.task.ask_button, Qt.LeftButton)
    assert panel.task.is_running() and panel.task.cancel_button.isEnabled()
    assert not panel.task.teach_button.isEnabled()  # one model at a time on this machine
    qtbot.waitUntil(lambda: panel.task.progress.maximum() == 10 and panel.task.progress.value() >= 1, timeout=30000)
    qtbot.waitUntil(lambda: not panel.task.is_running(), timeout=60000)
    assert cells(panel) == [["0/10", "—"], ["5/10", "—"], ["—", "—"], ["—", "—"]]
    assert [j.row for j in quiz_builder.calls] == ["base", "base_docs"]
    # the "+ documents" row asks with a named library of the documents, indexed once
    from chatapp.documents.library import LibraryStore, library_name_for

    name = library_name_for(panel.docs.data_paths)
    assert quiz_builder.calls[1].docs == (name,) and panel.task.library == name
    with LibraryStore(library_db) as store:
        assert store.names() == [name] and store.list()[0].files >= 1
        indexed = store._conn.execute("SELECT max(id) FROM chunks").fetchone()
    assert "done" in panel.task.status.text().lower() and panel.task.teach_button.isEnabled()
    qtbot.mouseClick(panel.task.ask_button, Qt.LeftButton)  # again: the same library, nothing re-indexed
    qtbot.waitUntil(lambda: not panel.task.is_running(), timeout=60000)
    assert quiz_builder.calls[3].docs == (name,)
    with LibraryStore(library_db) as store:
        assert store.names() == [name]
        assert store._conn.execute("SELECT max(id) FROM chunks").fetchone() == indexed


def test_quiz_cancel_and_failure(task_panel, qtbot, questions_file):
    panel = task_panel(quiz_extra=("slow",))
    panel.task.set_questions(str(questions_file))
    panel.task.ask()
    qtbot.waitUntil(lambda: panel.task.progress.value() >= 1, timeout=30000)
    panel.task.cancel()
    qtbot.waitUntil(lambda: not panel.task.is_running(), timeout=30000)
    assert panel.task.progress.format() == "Quiz cancelled" and cells(panel)[1][0] == "—"
    failing = task_panel(quiz_extra=("fail",))
    failing.task.set_questions(str(questions_file))
    failing.task.ask()
    qtbot.waitUntil(lambda: not failing.task.is_running(), timeout=30000)
    assert "could not be loaded" in failing.task.status.text() and "code 1" in failing.task.status.text()


def _fake_adapter(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "default"}))


def test_teach_shows_the_estimate_first_then_quizzes_the_tuned_model(task_panel, qtbot, questions_file, wait_ended,
                                                                     quiz_builder):
    panel = task_panel()
    panel.task.set_questions(str(questions_file))
    panel.task.ask()
    qtbot.waitUntil(lambda: not panel.task.is_running(), timeout=60000)
    qtbot.mouseClick(panel.task.teach_button, Qt.LeftButton)
    assert panel.estimator is not None and panel.process is None  # the estimate, not the run
    qtbot.waitUntil(lambda: panel.estimator is None, timeout=60000)
    assert "Press Teach again" in panel.task.teach_label.text() and panel.process is None
    panel.task.teach_button.click()
    assert panel.process is not None
    _fake_adapter(panel.run_options.out)  # the fake trainer writes no weights
    wait_ended(panel)
    assert panel.last_status == "completed"
    qtbot.waitUntil(lambda: not panel.task.is_running() and cells(panel)[2][1] != "—", timeout=60000)
    assert cells(panel) == [["0/10", "0/10"], ["5/10", "5/10"], ["—", "3/10"], ["—", "8/10"]]
    assert [j.row for j in quiz_builder.calls[-2:]] == ["tuned", "tuned_docs"]  # base rows not asked again
    assert quiz_builder.calls[-1].adapter == str(panel.run_options.out)
    saved = QuizRecord.load(panel.run_options.out)
    assert saved.after["tuned_docs"] == [8, 10] and saved.before["base"] == [0, 10]
    assert (panel.run_options.out / QUIZ_FILE).is_file()


def test_the_table_is_restored_for_an_adapter_after_restart(task_panel, qtbot, tmp_path, questions_file):
    out = tmp_path / "adapters" / "notes-20260101-000000"
    _fake_adapter(out)
    QuizRecord(str(questions_file), [], before={"base": [1, 10], "base_docs": [7, 10]},
               after={"base": [1, 10], "base_docs": [7, 10], "tuned": [6, 10], "tuned_docs": [9, 10]}).save(out)
    panel = task_panel()  # a new window: the adapters list is read from disk
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=30000)
    panel.outputs.table.selectRow(0)
    assert cells(panel) == [["1/10", "1/10"], ["7/10", "7/10"], ["—", "6/10"], ["—", "9/10"]]
    assert panel.task.questions == str(questions_file)


def test_examples_editor_saves_edits_and_the_next_run_passes_examples(task_panel, qtbot, tmp_path, wait_ended):
    out = tmp_path / "adapters" / "run"
    out.mkdir(parents=True)
    examples = out / "knowledge_examples.jsonl"
    rows = [{"messages": [{"role": "user", "content": "Who founded the guild?"},
                          {"role": "assistant", "content": "Mira Castel"}], "kind": "qa", "source": "a.md"},
            {"text": "The guild was founded in 1874.", "kind": "raw", "source": "a.md"},
            {"messages": [{"role": "user", "content": "Wrong?"}, {"role": "assistant", "content": "Wrong."}],
             "kind": "qa", "source": "a.md"}]
    examples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    panel = task_panel()
    panel.task.set_examples(str(examples))
    assert panel.task.examples_button.isEnabled()
    panel.task.review_examples()
    editor = panel.task.editor
    qtbot.waitExposed(editor)
    qtbot.waitUntil(lambda: not editor.busy, timeout=10000)
    assert editor.table.rowCount() == 3 and editor.table.item(0, 2).text() == "Mira Castel"
    editor.table.item(0, 2).setText("Mira Castell")
    editor.table.selectRow(2)
    editor.delete_selected()
    editor.table.item(1, 2).setText("")  # blank text: refused, nothing written
    with qtbot.waitSignal(editor.save_failed, timeout=10000):
        editor.save()
    assert "row 2" in editor.info.text()
    assert len(examples.read_text().splitlines()) == 3
    editor.table.item(1, 2).setText("The guild was founded in 1874 by Mira Castell.")
    with qtbot.waitSignal(editor.saved, timeout=10000):
        editor.save()
    saved = [json.loads(line) for line in examples.read_text().splitlines()]
    assert len(saved) == 2 and saved[0]["messages"][1]["content"] == "Mira Castell"
    assert saved[0]["source"] == "a.md" and saved[1]["text"].endswith("Mira Castell.")
    assert str(examples) in panel.task.examples_label.text()
    panel.start()
    assert panel.run_options.examples == str(examples)
    argv = build_train_command(panel.run_options, prefix=["chatapp"])
    assert argv[argv.index("--examples") + 1] == str(examples)
    wait_ended(panel)


def test_questions_made_from_the_documents_are_shown_for_review(task_panel, qtbot, tmp_path):
    panel = task_panel()
    folder = tmp_path / "facts"
    folder.mkdir()
    (folder / "guild.md").write_text("# The Harbour Guild\n\nThe guild hall was built in 1874 by Mira Castell "
                                     "and Tomas Reyes.\n\nIn 1901 the guild bought eleven boats from Halvard Dahl.\n")
    panel.docs.set_data_paths([folder])
    qtbot.waitUntil(lambda: panel.task.auto_button.isEnabled(), timeout=30000)
    panel.task.make_questions()
    qtbot.waitUntil(lambda: panel.task.questions is not None, timeout=30000)
    editor = panel.task.editor
    assert editor is not None and editor.mode == QUESTIONS
    qtbot.waitUntil(lambda: not editor.busy, timeout=10000)
    assert editor.table.rowCount() >= 1 and "____" in editor.table.item(0, 1).text()
    editor.table.item(0, 2).setText("1874 | eighteen seventy-four")
    with qtbot.waitSignal(editor.saved, timeout=10000):
        editor.save()
    first = json.loads(open(panel.task.questions).readline())
    assert first["answers"] == ["1874", "eighteen seventy-four"]


def test_editor_refuses_a_file_that_is_not_jsonl(qtbot, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    editor = JsonlEditor(bad, EXAMPLES)
    with qtbot.waitSignal(editor.loaded, timeout=10000) as blocker:
        pass
    assert blocker.args == [False]
    assert "bad.jsonl:1" in editor.info.text() and not editor.save_button.isEnabled()
    editor.close()


def test_editor_reads_and_writes_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    """The file is read and written on a pool thread, never on the GUI thread."""
    import threading

    from chatapp.ui.training import examples as examples_module

    gui = threading.current_thread()
    threads = []
    real_read, real_write = examples_module.read_records, examples_module.check_and_write

    def read(path):
        threads.append(threading.current_thread())
        return real_read(path)

    def write(records, path, mode):
        threads.append(threading.current_thread())
        return real_write(records, path, mode)

    monkeypatch.setattr(examples_module, "read_records", read)
    monkeypatch.setattr(examples_module, "check_and_write", write)
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Who?", "answers": ["Mira"]}) + "\n")
    editor = JsonlEditor(path, QUESTIONS)
    assert editor.busy and not editor.table.isEnabled()  # nothing read yet on this thread
    qtbot.waitUntil(lambda: not editor.busy, timeout=10000)
    assert editor.table.item(0, 1).text() == "Who?"
    editor.table.item(0, 2).setText("Mira | Mira Castell")
    with qtbot.waitSignal(editor.saved, timeout=10000):
        editor.save()
    assert json.loads(path.read_text())["answers"] == ["Mira", "Mira Castell"]
    assert len(threads) == 2 and all(t is not gui for t in threads)
    editor.close()


def test_examples_made_by_the_estimate_are_reviewable_and_reused_by_the_run(qtbot, tmp_path, builder_for, docs,
                                                                            quiz_builder, wait_ended):
    from chatapp.ui.training_panel import TrainingPanel

    fake = builder_for("complete")

    def builder(job, dry_run):  # the knowledge recipe's dry run writes OUT/knowledge_examples.jsonl
        if dry_run:
            job.out.mkdir(parents=True, exist_ok=True)
            (job.out / "knowledge_examples.jsonl").write_text(json.dumps(
                {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
                 "kind": "qa"}) + "\n")
        return fake(job, dry_run)

    panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters", command_builder=builder,
                          grace_s=2.0, quiz_builder=quiz_builder())
    qtbot.addWidget(panel)
    try:
        panel.docs.set_data_paths([docs])
        qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
        assert not panel.task.examples_button.isEnabled()
        panel.teach()
        qtbot.waitUntil(lambda: panel.estimator is None, timeout=60000)
        made = panel.estimated.out / "knowledge_examples.jsonl"
        assert panel.task.examples_button.isEnabled() and panel.task.examples_path == made
        panel.teach()
        assert panel.process is not None and panel.run_options.examples == str(made)
        wait_ended(panel)
        # other documents: examples made from the old ones are not used
        other = tmp_path / "other"
        other.mkdir()
        (other / "x.md").write_text("# X\n\nSomething else entirely.\n")
        panel.docs.set_data_paths([other])
        qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
        assert panel.options().examples is None and not panel.task.examples_button.isEnabled()
    finally:
        panel.shutdown(timeout_s=2.0)
