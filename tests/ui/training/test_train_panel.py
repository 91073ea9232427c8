"""The Train tab against a fake trainer child (tests/ui/training/conftest.py): complete, fail,
crash, cancel, resume, estimate; the settings form; and the real `chatapp train`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from chatapp.training.protocol import TrainJob
from chatapp.ui.training_panel import TrainingPanel
from chatapp.ui.training_process import build_train_command


# -- the panel -----------------------------------------------------------------------------------
def test_completed_run_fills_progress_chart_and_perplexity(qtbot, make_panel, wait_ended):
    panel = make_panel("complete")
    assert panel.run.start_button.isEnabled() and not panel.run.cancel_button.isEnabled()
    etas = []
    panel.run.progress.valueChanged.connect(lambda _v: etas.append(panel.run.progress.format()))
    qtbot.mouseClick(panel.run.start_button, Qt.LeftButton)
    assert panel.is_training() and panel.run.cancel_button.isEnabled() and not panel.run.start_button.isEnabled()
    wait_ended(panel)
    assert panel.last_status == "completed"
    assert panel.run.status_label.text().startswith("Completed 10 steps. Saved to ")
    assert (panel.run.progress.minimum(), panel.run.progress.maximum(), panel.run.progress.value()) == (0, 10, 10)
    assert "Step 1 of 10 · about 1 min 48 s left" in etas  # eta_s 108
    assert panel.run.chart.loss_count == 10 and panel.run.chart.eval_count == 3 and panel.run.chart.total_steps == 10
    assert panel.run.ppl_label.text() == "Perplexity on held-out text: before 40.00, after 20.00 (-50%)"
    assert "needs about 2.33 GiB of memory (14.90 GiB available), takes 5 min to 8 min (10 steps)" in \
        panel.run.estimate_label.text()
    assert not panel.run.resume_button.isVisibleTo(panel)
    assert panel.run.start_button.isEnabled() and not panel.run.cancel_button.isEnabled()


def test_early_stop_setting_and_its_completion_message(qtbot, make_panel, wait_ended):
    panel = make_panel("earlystop")
    assert panel.options().early_stop == 0 and panel.form.early_stop.text() == "Never"
    panel.form.early_stop.setValue(3)
    assert panel.options().early_stop == 3
    assert panel.options().lora_targets is None  # "Auto (by recipe)": the run picks the recipe's layers
    panel.form.lora_targets.setCurrentIndex(1)
    assert panel.options().lora_targets == ["q_proj", "v_proj"]
    panel.form.lora_targets.setCurrentIndex(3)
    assert panel.options().lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"]
    qtbot.mouseClick(panel.run.start_button, Qt.LeftButton)
    wait_ended(panel)
    text = panel.run.status_label.text()
    assert panel.last_status == "completed"
    assert text.startswith("Stopped early at step 6: held-out perplexity stopped improving. Completed 6 steps. "
                           "Saved to ")
    assert text.split("\n")[0].endswith(" (the weights of step 5, the lowest held-out perplexity)")
    assert panel.run.ppl_label.text() == "Perplexity on held-out text: before 40.00, after 24.50 (-39%)"


def test_failed_end_line_says_failed_with_reason(qtbot, make_panel):
    panel = make_panel("fail")
    with qtbot.waitSignal(panel.training_finished, timeout=60000) as blocker:
        panel.start()
    assert blocker.args[0] == "failed"
    text = panel.run.status_label.text()
    assert text.startswith("Failed: out of memory. Try LoRA") and "Tried to allocate 2.00 GiB" in text
    assert "Completed" not in text and panel.run.progress.format().startswith("Failed")
    assert "torch.OutOfMemoryError" in panel.run.log_view.toPlainText()  # the traceback is in the log, not the status


@pytest.mark.parametrize("mode, expected", [
    ("crash", "was killed (exit code 137)"), ("sigkill", "crashed or was killed")])
def test_crash_without_end_line_is_a_failure(qtbot, make_panel, mode, expected, wait_ended):
    panel = make_panel(mode)
    panel.start()
    wait_ended(panel)
    text = panel.run.status_label.text()
    assert panel.last_status == "failed" and text.startswith("Failed: ") and expected in text
    assert "Completed" not in text
    last_line = "something went badly wrong in the native code" if mode == "crash" else "about to be killed"
    assert last_line in text
    assert panel.run.chart.loss_count == 3 and panel.run.progress.value() == 3


def test_cancel_checkpoints_and_resume_continues(qtbot, make_panel, builder_for, wait_ended):
    panel = make_panel("long")
    panel.start()
    qtbot.waitUntil(lambda: panel.run.chart.loss_count >= 5, timeout=60000)
    pid = panel.process.pid()
    qtbot.mouseClick(panel.run.cancel_button, Qt.LeftButton)
    wait_ended(panel)
    assert panel.last_status == "cancelled" and panel.run.status_label.text().startswith("Cancelled at step ")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
    assert panel.checkpoint is not None and panel.checkpoint_step >= 5
    assert panel.run.resume_button.isVisibleTo(panel)
    assert panel.run.status_label.text().endswith(
        f"A checkpoint at step {panel.checkpoint_step} was kept: press Resume to continue from it.")
    assert "--resume" not in panel.run.status_label.text()

    # a resumed run writes into the same folder and continues the chart from the checkpoint
    first_out = panel.run_options.out
    panel.command_builder = builder_for("complete")
    qtbot.mouseClick(panel.run.resume_button, Qt.LeftButton)
    wait_ended(panel)
    assert panel.last_status == "completed", panel.run.status_label.text()
    assert panel.run_options.out == first_out and panel.run_options.resume is not None
    assert panel.run.chart.steps == list(range(1, 11))


def test_cancel_kills_a_child_that_ignores_sigterm(qtbot, make_panel, wait_ended):
    panel = make_panel("stubborn", grace_s=0.5)
    panel.start()
    qtbot.waitUntil(lambda: panel.run.chart.loss_count >= 2, timeout=60000)
    pid = panel.process.pid()
    panel.cancel()
    wait_ended(panel)
    assert panel.last_status == "cancelled" and "was killed" in panel.run.status_label.text()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_estimate_is_a_dry_run_not_a_completion(qtbot, make_panel):
    panel = make_panel("toobig")
    panel.estimate()
    qtbot.waitUntil(lambda: panel.estimator is None, timeout=60000)
    text = panel.run.estimate_label.text()
    assert "needs about 2.33 GiB of memory (0.93 GiB available)" in text and "run out of memory" in text
    assert "takes about 2 min 05 s" not in text and "takes 2 min to 3 min (10 steps)" in text
    assert "Completed" not in panel.run.status_label.text() and panel.last_status == ""
    assert panel.docs.files_table.item(0, 3).text() == "no: binary: .bin file"


def test_cannot_start_without_documents(qtbot, make_panel):
    panel = make_panel(with_docs=False)
    assert not panel.run.start_button.isEnabled()
    panel.start()
    assert panel.process is None and panel.run.status_label.text() == "Cannot start: no documents chosen"


# -- the real `chatapp train` (a tiny model from scratch: no weights needed, seconds per run) ---------
def _real_panel(qtbot, tmp_path, max_steps):
    docs = tmp_path / "real-docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"d{i}.txt").write_text(f"Penguins are flightless birds of the southern seas. Note {i} is about "
                                        "ice, fish and the cold water where emperor penguins huddle in winter.\n")
    panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters")  # the real command builder
    qtbot.addWidget(panel)
    panel.docs.set_data_paths([docs])
    qtbot.waitUntil(lambda: panel.docs.preview_used == 30, timeout=60000)
    panel.form.method.setCurrentIndex(panel.form.method.findData("scratch"))
    assert panel.form.lr.value() == 0.0 and not panel.form.lora_rank.isEnabled()  # the rate: scratch's default
    panel.form.max_steps.setValue(max_steps)
    panel.form.block_size.setValue(32)
    panel.form.batch_size.setValue(2)
    panel.form.eval_every.setValue(3)
    panel.form.save_every.setValue(3)
    return panel


def test_real_train_command_completes_and_lists_the_model(qtbot, tmp_path, wait_ended):
    panel = _real_panel(qtbot, tmp_path, max_steps=6)
    try:
        panel.start()
        wait_ended(panel, timeout=180000)
        assert panel.last_status == "completed", panel.run.status_label.text() + panel.run.log_view.toPlainText()[-2000:]
        assert (panel.run.progress.value(), panel.run.progress.maximum()) == (6, 6)
        assert panel.run.chart.loss_count == 6 and panel.run.chart.eval_count == 3
        ppl_text = panel.run.ppl_label.text()
        assert ppl_text.startswith("Perplexity on held-out text: before ") and ", after " in ppl_text
        qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
        panel.outputs.table.selectRow(0)
        assert panel.outputs.chat_button.text() == "Chat with this model" and not panel.outputs.compare_button.isEnabled()
        assert panel.outputs.table.item(0, 3).text() == f"{panel.run.ppl_after:.2f}"
        with qtbot.waitSignal(panel.use_model, timeout=1000) as blocker:
            panel.outputs.chat_with_selected()
        assert blocker.args == [str(panel.run_options.out)]
    finally:
        panel.shutdown(timeout_s=5.0)


def test_real_train_command_cancels_with_a_checkpoint_and_resumes(qtbot, tmp_path, wait_ended):
    panel = _real_panel(qtbot, tmp_path, max_steps=100_000)
    try:
        panel.start()
        qtbot.waitUntil(lambda: panel.run.chart.loss_count >= 4, timeout=180000)
        panel.cancel()
        wait_ended(panel, timeout=60000)
        assert panel.last_status == "cancelled", panel.run.status_label.text()
        assert panel.checkpoint is not None and Path(panel.checkpoint, "trainer_state.json").is_file()
        stopped_at = panel.checkpoint_step
        assert stopped_at >= 4 and panel.run.chart.steps[-1] == stopped_at
        assert panel.run.resume_button.isVisibleTo(panel)
        panel.resume()
        qtbot.waitUntil(lambda: panel.run.chart.loss_count >= stopped_at + 2, timeout=180000)
        panel.cancel()
        wait_ended(panel, timeout=60000)
        assert panel.last_status == "cancelled"
        steps = panel.run.chart.steps
        assert steps == list(range(1, len(steps) + 1))  # continued from the checkpoint, no gap, no repeat
        assert "--resume" in " ".join(build_train_command(panel.run_options))
    finally:
        panel.shutdown(timeout_s=5.0)


def test_settings_form_starts_at_the_options_tables_defaults(qtbot, tmp_path):
    from chatapp.ui.training.settings_form import SAVE_EVERY, SettingsForm
    form = SettingsForm()
    qtbot.addWidget(form)
    job = form.job("default", [tmp_path], tmp_path / "out")
    table = TrainJob(data=[str(tmp_path)], out=tmp_path / "out")
    # what the form sets on purpose: checkpoints as it goes; length, rate and LoRA shape stay "auto"
    assert dataclasses.replace(job, save_every=table.save_every) == table
    assert (job.epochs, job.lr, job.lora_rank, job.lora_targets, job.save_every) == ("auto", None, None, None,
                                                                                      SAVE_EVERY)
    form.epochs.setValue(2.0)
    form.lr.setValue(2e-4)
    assert form.job("default", [tmp_path], tmp_path).epochs == 2.0
    form.max_steps.setValue(5)
    assert not form.epochs.isEnabled() and form.job("default", [tmp_path], tmp_path).epochs is None
    form.method.setCurrentIndex(form.method.findData("full"))
    assert not form.lora_rank.isEnabled() and form.lr.value() == pytest.approx(5e-5)  # the user's lora rate followed
    form.set_locked_state(True)
    assert not any(w.isEnabled() for w in form.widgets)
