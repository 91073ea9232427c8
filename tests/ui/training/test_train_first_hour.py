"""What a new user met in the Train tab (issue 19): each test failed on the code before the fix."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt


def test_a_run_that_barely_changed_anything_says_so_and_what_to_do(qtbot, make_panel, wait_ended):
    # item 5: 4 steps, training loss up, held-out perplexity -1%: not a plain "Completed"
    panel = make_panel("tiny")
    panel.start()
    wait_ended(panel)
    text = panel.run.status_label.text()
    first, summary = text.split("\n")
    assert first.startswith("Completed 4 steps. Saved to ")
    assert re.search(r"training loss 3\.0\d → 3\.0\d", summary), summary
    assert "held-out perplexity 40.00 → 39.60 (-1.0%)" in summary
    assert summary.endswith("The model barely changed: train longer (more epochs or steps), raise the learning "
                            "rate, or choose more LoRA layers.")
    assert panel.run.progress.format() == "Completed · 4 steps"


def test_a_run_that_learned_says_how_much(qtbot, make_panel, wait_ended):
    panel = make_panel("complete")
    panel.start()
    wait_ended(panel)
    summary = panel.run.status_label.text().split("\n")[1]
    assert "held-out perplexity 40.00 → 20.00 (-50.0%)" in summary
    assert summary.endswith("The model fits your documents better than before.")


def test_show_log_has_the_runs_account_and_toggles(qtbot, make_panel, wait_ended):
    # item 11: the log was empty after a successful run, and the button never said "Hide log"
    panel = make_panel("complete")
    panel.show()
    panel.start()
    wait_ended(panel)
    log = panel.run.log_view.toPlainText().splitlines()
    assert log[0] == "data: 1 file used (1 kB of text), 1 skipped: 1 binary"
    assert "step 10/10  loss 2.0000  lr 2.00e-04  1000 tok/s  eta 0s" in log
    assert log[-1].startswith("completed; validation perplexity 40.00 -> 20.00; output in ")
    button = panel.run.log_button
    assert button.text() == "Show log" and not panel.run.log_view.isVisible()
    qtbot.mouseClick(button, Qt.LeftButton)
    assert button.text() == "Hide log" and panel.run.log_view.isVisible()
    qtbot.mouseClick(button, Qt.LeftButton)
    assert button.text() == "Show log" and not panel.run.log_view.isVisible()


def test_cancel_message_names_the_resume_button(qtbot, make_panel, wait_ended):
    # item 10: "resume with --resume FOLDER/checkpoints" is command-line text
    panel = make_panel("long")
    panel.start()
    qtbot.waitUntil(lambda: panel.run.chart.loss_count >= 4, timeout=60000)
    panel.cancel()
    wait_ended(panel)
    step = panel.checkpoint_step
    assert panel.run.status_label.text() == (f"Cancelled at step {step}. A checkpoint at step {step} was kept: "
                                             "press Resume to continue from it.")


def test_memory_in_gib_as_in_the_chat_tab(qtbot, make_panel):
    # item 17: the Train tab said "2.5 GB" where the Chat tab says GiB
    panel = make_panel("complete")
    panel.estimate()
    qtbot.waitUntil(lambda: panel.estimator is None, timeout=60000)
    text = panel.run.estimate_label.text()
    assert "needs about 2.33 GiB of memory (14.90 GiB available)" in text and " GB" not in text


def test_the_estimate_gives_a_range_and_stays_put_when_training_starts(qtbot, make_panel, wait_ended):
    # item 9: one number, and a different one once training started
    panel = make_panel("complete")
    panel.estimate()
    qtbot.waitUntil(lambda: panel.estimator is None, timeout=60000)
    shown = panel.run.estimate_label.text()
    assert shown == ("Estimate: needs about 2.33 GiB of memory (14.90 GiB available), takes 2 min to 3 min "
                     "(10 steps).")
    panel.start()
    wait_ended(panel)
    assert panel.run.estimate_label.text() == shown  # the run's own measurement (5 to 8 min) did not replace it
    panel.form.batch_size.setValue(2)  # another run: its own estimate is shown
    panel.start()
    wait_ended(panel)
    assert "takes 5 min to 8 min (10 steps)" in panel.run.estimate_label.text()


def test_adapters_table_columns_are_readable_without_rows(qtbot, make_panel):
    # item 18: with no rows every column shrank to its header and the last one took the rest
    panel = make_panel(with_docs=False)
    panel.resize(1400, 800)
    panel.show()
    qtbot.waitExposed(panel)
    header = panel.outputs.table.horizontalHeader()
    widths = [header.sectionSize(i) for i in range(4)]
    assert panel.outputs.table.rowCount() == 0
    assert widths[0] > max(widths[1:]) and widths[0] >= 0.35 * panel.outputs.table.viewport().width(), widths
    assert all(w >= 90 for w in widths), widths


def test_preview_tokens_become_counted_once_a_run_counts_them(qtbot, make_panel, wait_ended):
    # item 19: the preview estimates tokens from characters; the run's dataset event gives the total
    panel = make_panel("complete")
    table = panel.docs.files_table
    used_row = next(r for r in range(table.rowCount()) if table.item(r, 3).text() == "yes")
    assert table.item(used_row, 2).text().startswith("about ")
    panel.start()
    wait_ended(panel)
    # the fake run read 1000 characters into 900 + 100 tokens: the file's share is all of it
    used_row = next(r for r in range(table.rowCount()) if table.item(r, 3).text() == "yes")
    assert table.item(used_row, 2).text() == "1,000"
    assert "about 1,000 tokens" in panel.docs.preview_label.text()
