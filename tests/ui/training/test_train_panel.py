"""The Train tab against a fake trainer child (tests/ui/training/conftest.py): complete, fail,
crash, cancel, resume; the documents, the adapters list, export, and the real `chatapp train`."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from chatapp.training.outputs import find_checkpoint, scan_adapters
from chatapp.training.protocol import TrainJob
from chatapp.ui.training_panel import TrainingPanel
from chatapp.ui.training_process import TrainingProcess, build_train_command, new_out_dir


# -- the command ---------------------------------------------------------------------------------
def test_build_train_command_lora_and_full(tmp_path):
    options = TrainJob(model="default", data=[tmp_path / "a", tmp_path / "b.md"], out=tmp_path / "out")
    argv = build_train_command(options, prefix=["chatapp"])
    assert argv[:4] == ["chatapp", "train", "--model", "default"]
    assert argv[4:7] == ["--data", str(tmp_path / "a"), str(tmp_path / "b.md")]
    pairs = dict(zip(argv[7::2], argv[8::2]))
    # the options table's defaults are the command's defaults: only what differs is written
    assert pairs == {"--out": str(tmp_path / "out"), "--progress": "jsonl"}
    chosen = TrainJob(model="default", data=[tmp_path], out=tmp_path / "out", epochs=2.0, lr=3e-4, batch_size=2,
                      lora_targets="attention", save_every=100)
    argv = build_train_command(chosen, prefix=["chatapp"])
    pairs = dict(zip(argv[6::2], argv[7::2]))
    assert pairs == {"--out": str(tmp_path / "out"), "--epochs": "2", "--lr": "0.0003", "--batch-size": "2",
                     "--lora-targets": "q_proj,k_proj,v_proj,o_proj", "--save-every": "100", "--progress": "jsonl"}
    full = TrainJob(model="m.gguf", data=[tmp_path], out=tmp_path / "o", method="full", max_steps=30,
                    lr=2e-5, resume=tmp_path / "o" / "step-00000010", lora_rank=4)
    argv = build_train_command(full, dry_run=True, prefix=["x"])
    assert "--lora-rank" not in argv and "--epochs" not in argv
    assert argv[argv.index("--max-steps") + 1] == "30" and argv[argv.index("--lr") + 1] == "2e-05"
    assert argv[argv.index("--resume") + 1] == str(tmp_path / "o" / "step-00000010")
    assert argv[-3:] == ["--progress", "jsonl", "--dry-run"]
    stopping = TrainJob(model="default", data=[tmp_path], out=tmp_path / "o", early_stop=3)
    argv = build_train_command(stopping, prefix=["x"])
    assert argv[argv.index("--early-stop") + 1] == "3"


def test_command_parses_with_the_real_train_cli(tmp_path):
    train = pytest.importorskip("chatapp.commands.train")
    import argparse
    parser = argparse.ArgumentParser()
    train.add_train_parser(parser.add_subparsers(dest="command"))
    options = TrainJob(model="default", data=[tmp_path / "a", tmp_path / "b.md"], out=tmp_path / "out",
                       max_steps=12, lr=3e-4, lora_rank=4, lora_alpha=8, resume=tmp_path / "out",
                       early_stop=2, lora_targets=["q_proj", "k_proj", "v_proj", "o_proj"], save_every=100)
    args = parser.parse_args(build_train_command(options, dry_run=True, prefix=["chatapp"])[1:])
    assert args.data == [str(tmp_path / "a"), str(tmp_path / "b.md")] and args.out == str(tmp_path / "out")
    assert (args.method, args.max_steps, args.epochs, args.lr) == ("lora", 12, None, 3e-4)
    assert (args.lora_rank, args.lora_alpha, args.save_every, args.eval_every) == (4, 8.0, 100, 50)
    assert (args.resume, args.progress, args.dry_run) == (str(tmp_path / "out"), "jsonl", True)
    assert args.early_stop == 2 and args.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert TrainJob.from_args(args) == dataclasses.replace(options, dry_run=True)  # the round trip loses nothing


def test_default_command_starts_this_app(tmp_path):
    argv = build_train_command(TrainJob(model="default", data=[tmp_path], out=tmp_path))
    assert argv[0] == sys.executable and argv[1:4] == ["-m", "chatapp", "train"]


@pytest.mark.parametrize("bad, message", [
    (dict(data=[]), "no documents"), (dict(method="qlora"), "method"), (dict(epochs=1.0, max_steps=5), "not both"),
    (dict(lr=0), "lr"), (dict(batch_size=0), "batch_size"), (dict(model=""), "model"),
    (dict(early_stop=-1), "early_stop"), (dict(lora_targets=[]), "lora_targets")])
def test_train_options_validate(tmp_path, bad, message):
    kwargs = dict(model="default", data=[tmp_path], out=tmp_path)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        TrainJob(**kwargs)


def test_out_dir_is_named_and_stamped(tmp_path):
    out = new_out_dir("My Notes!", root=tmp_path, now=0)
    assert out.parent == tmp_path and out.name.startswith("my-notes-") and len(out.name) == len("my-notes-") + 15


# -- the process on its own ----------------------------------------------------------------------
def _run_process(qtbot, command, **kwargs):
    process = TrainingProcess(command, **kwargs)
    seen = {"step": [], "eval": [], "ingest": [], "estimate": [], "checkpoint": []}
    process.stepped.connect(seen["step"].append)
    process.evaluated.connect(seen["eval"].append)
    process.ingest.connect(seen["ingest"].append)
    process.estimate.connect(seen["estimate"].append)
    process.checkpointed.connect(seen["checkpoint"].append)
    with qtbot.waitSignal(process.ended, timeout=60000) as blocker:
        process.start()
    assert not process.is_running()
    return blocker.args, seen


def test_process_parses_lines_and_completes(qtbot, fake_trainer, tmp_path):
    (status, reason, info), seen = _run_process(qtbot, [sys.executable, str(fake_trainer), "complete", str(tmp_path)])
    assert status == "completed", reason
    assert [e.step for e in seen["step"]] == list(range(1, 11))
    assert [e.val_ppl for e in seen["eval"]] == [40.0, 24.5, 20.0]
    assert seen["ingest"][0].files[1].reason == "binary: .bin file"
    assert seen["estimate"][0].eta_s == 400
    assert info.end.val_ppl_after == 20.0 and info.exit_code == 0  # the split, newline-less end line
    assert (info.checkpoint, info.checkpoint_step) == (str(tmp_path / "checkpoints" / "step-00000010"), 10)


@pytest.mark.parametrize("mode, expected", [
    ("noend", "exited without reporting an end"), ("lies", "reported completion but then")])
def test_process_without_a_true_end_fails(qtbot, fake_trainer, tmp_path, mode, expected):
    (status, reason, _), _ = _run_process(qtbot, [sys.executable, str(fake_trainer), mode, str(tmp_path)])
    assert status == "failed" and expected in reason


def test_process_that_cannot_start_fails(qtbot, tmp_path):
    (status, reason, info), _ = _run_process(qtbot, [str(tmp_path / "no-such-program")])
    assert status == "failed" and "could not start" in reason and info.exit_code is None and info.end is None


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
    assert panel.options().lora_targets == ["q_proj", "v_proj"]
    panel.form.lora_targets.setCurrentIndex(2)
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


# -- documents -----------------------------------------------------------------------------------
def test_dropping_a_folder_sets_data_and_previews_skips(qtbot, make_panel, docs):
    panel = make_panel(with_docs=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(docs))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    panel.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    panel.dropEvent(drop)
    assert drop.isAccepted()
    assert panel.docs.data_paths == [docs] and panel.form.name_edit.text() == "docs"
    qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
    # every file with its size and tokens, the skipped ones first with why (issue 19, item 19)
    notes_chars = len("# Penguins\n\nPenguins are flightless birds of the southern seas.")
    assert panel.docs.preview_label.text().startswith(
        f"1 files used ({notes_chars} B of text, about {round(notes_chars / 4)} tokens), 1 skipped.")
    table = panel.docs.files_table
    rows = [[table.item(r, c).text() for c in range(4)] for r in range(table.rowCount())]
    assert rows == [["blob.bin", "1.0 KiB", "", "no: binary: .bin file"],
                    ["notes.md", f"{(docs / 'notes.md').stat().st_size} B", f"about {round(notes_chars / 4)}", "yes"]]
    assert panel.run.start_button.isEnabled()


def test_drop_of_non_local_urls_is_refused(qtbot, make_panel):
    panel = make_panel(with_docs=False)
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/a.txt")])
    enter = QDragEnterEvent(QPoint(1, 1), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    enter.setAccepted(False)
    panel.dragEnterEvent(enter)
    assert not enter.isAccepted() and panel.docs.data_paths == []


def test_only_unusable_files_disable_start(qtbot, make_panel, tmp_path):
    panel = make_panel(with_docs=False)
    blob = tmp_path / "only.bin"
    blob.write_bytes(b"\x00\x01" * 10)
    panel.docs.set_data_paths([blob])
    qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
    assert panel.docs.preview_used == 0 and not panel.run.start_button.isEnabled()
    assert "None of these files can be used" in panel.docs.preview_label.text()


# -- adapters ------------------------------------------------------------------------------------
def _fake_adapter(root: Path, name: str, ppl_after: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "SmolLM2-135M-Instruct",
        "r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "bias": "none"}))
    (folder / "adapter_model.safetensors").write_bytes(b"")  # read_adapter_info does not open it
    (folder / "chatapp_adapter.json").write_text(json.dumps({
        "format": "chatapp-lora-adapter", "version": 1, "base_model": "SmolLM2-135M-Instruct",
        "metadata": {"eval_before": {"step": 0, "val_loss": 3.69, "val_ppl": 40.0},  # as chatapp train writes
                     "eval_after": {"step": 10, "val_loss": 2.5, "val_ppl": ppl_after}}}))
    return folder


def test_adapters_listed_and_chosen(qtbot, make_panel, tmp_path):
    root = tmp_path / "adapters"
    adapter = _fake_adapter(root, "notes-20250101-120000", 12.5)
    (root / "half-written").mkdir()  # no adapter_config.json: not listed
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
    cells = [panel.outputs.table.item(0, c).text() for c in range(4)]
    assert cells[0] == "notes-20250101-120000" and cells[1] == "SmolLM2-135M-Instruct" and cells[3] == "12.50"
    assert not panel.outputs.chat_button.isEnabled()
    panel.outputs.table.selectRow(0)
    assert panel.outputs.chat_button.isEnabled() and panel.outputs.chat_button.text() == "Chat with this adapter"
    with qtbot.waitSignal(panel.use_adapter, timeout=1000) as blocker:
        qtbot.mouseClick(panel.outputs.chat_button, Qt.LeftButton)
    assert blocker.args == [str(adapter)]
    assert not panel.outputs.off_button.isEnabled()  # no adapter in use: nothing to switch off
    panel.set_active_adapter(str(adapter))
    assert panel.outputs.table.item(0, 0).text().endswith("(in use)")
    with qtbot.waitSignal(panel.adapter_off, timeout=1000):
        qtbot.mouseClick(panel.outputs.off_button, Qt.LeftButton)


def test_compare_view_round_trip(qtbot, make_panel, tmp_path):
    adapter = _fake_adapter(tmp_path / "adapters", "a-1", 10.0)
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
    panel.outputs.table.selectRow(0)
    qtbot.mouseClick(panel.outputs.compare_button, Qt.LeftButton)
    view = panel.compare_view
    assert view.isVisible() and view.adapter_path == str(adapter)
    view.prompt.setPlainText("What are penguins?")
    view.seed.setValue(7)
    with qtbot.waitSignal(panel.compare_requested, timeout=1000) as blocker:
        qtbot.mouseClick(view.run_button, Qt.LeftButton)
    assert blocker.args == ["What are penguins?", 7, str(adapter)]
    assert not view.run_button.isEnabled()
    for delta in ("Birds", " of the", " south."):
        view.append_base(delta)
    view.show_tuned("Flightless seabirds.")
    view.append_tuned(" Indeed.")
    view.set_running(False)
    assert view.base_text.toPlainText() == "Birds of the south."
    assert view.tuned_text.toPlainText() == "Flightless seabirds. Indeed."
    assert view.run_button.isEnabled()


def test_damaged_adapter_is_listed_but_not_offered(qtbot, make_panel, tmp_path):
    folder = tmp_path / "adapters" / "broken"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')  # no r, no target_modules
    (folder / "adapter_model.safetensors").write_bytes(b"")
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
    panel.outputs.table.selectRow(0)
    assert panel.outputs.table.item(0, 0).text() == "broken (damaged)"
    assert "target_modules" in panel.outputs.table.item(0, 0).toolTip()
    assert not panel.outputs.chat_button.isEnabled() and not panel.outputs.compare_button.isEnabled()


def test_scan_adapters_reports_damaged_folders(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{not json")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    rows = scan_adapters(tmp_path)
    assert len(rows) == 1 and rows[0].kind == "adapter" and "not valid JSON" in rows[0].error
    assert scan_adapters(tmp_path / "missing") == []


def test_find_checkpoint_picks_the_newest(tmp_path):
    for step in (10, 200, 30):
        (tmp_path / "checkpoints" / f"step-{step:08d}").mkdir(parents=True)
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-00000200"
    assert find_checkpoint(tmp_path / "none") is None


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
    assert panel.form.lr.value() == pytest.approx(1e-3) and not panel.form.lora_rank.isEnabled()
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


def test_background_results_arrive_in_the_gui_thread(qtbot, docs, tmp_path):
    import threading

    threads = []

    panel = TrainingPanel(adapters_dir=tmp_path / "adapters")
    qtbot.addWidget(panel)
    shown = panel.docs.show_ingest_report

    def recording(report):
        threads.append(threading.current_thread())
        shown(report)

    panel.docs.show_ingest_report = recording
    panel.docs.set_data_paths([docs])
    qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
    assert threads == [threading.main_thread()]
    panel.shutdown()


# -- export of a merged model --------------------------------------------------------------------
def _trained_adapter(tmp_path: Path) -> tuple[Path, Path]:
    """(tiny base model folder, adapters root holding one LoRA adapter trained on it)."""
    import contextlib
    import io

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
    from tiny_hf import tiny_llama_folder, write_corpus

    from chatapp.cli import main
    base = tiny_llama_folder(tmp_path / "base")
    docs = write_corpus(tmp_path / "docs")
    root = tmp_path / "adapters"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--model", str(base), "--data", str(docs), "--out", str(root / "notes"),
                     "--max-steps", "2", "--lr", "5e-2", "--block-size", "32", "--batch-size", "4",
                     "--lora-targets", "q_proj,v_proj", "--threads", "1", "--progress", "jsonl"])
    assert code == 0
    return base, root


def _export(qtbot, panel, folder: Path) -> list[Path]:
    """Export the first row into `folder`, as named in the dialog; the folder the dialog proposed."""
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() >= 1, timeout=120000)
    panel.outputs.table.selectRow(0)
    assert panel.outputs.export_button.isEnabled()
    proposed = []
    panel.outputs.choose_export_folder = lambda suggested: proposed.append(suggested) or folder
    qtbot.mouseClick(panel.outputs.export_button, Qt.LeftButton)
    assert panel.outputs.exporter is not None and not panel.outputs.export_button.isEnabled()
    qtbot.waitUntil(lambda: panel.outputs.exporter is None, timeout=120000)
    return proposed


def test_export_writes_the_merged_model_and_lists_it(qtbot, tmp_path):
    pytest.importorskip("transformers")
    import torch

    from chatapp.engine.loader import load_model
    base, root = _trained_adapter(tmp_path)
    panel = TrainingPanel(model=str(base), adapters_dir=root)
    qtbot.addWidget(panel)
    try:
        # a new folder name is the destination itself (issue 19, item 8): no subfolder made inside it
        out = root / "my merged model"
        proposed = _export(qtbot, panel, out)
        assert proposed == [root / "notes-merged"]
        assert panel.run.status_label.text().startswith(f"Exported to {out}."), panel.run.status_label.text()
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        # the merged model computes what the base model with the adapter computes
        tokens = torch.arange(5, 30)[None]
        with torch.inference_mode():
            merged = load_model(out, device="cpu").model(tokens)
            adapted = load_model(base, device="cpu", adapter=root / "notes").model(tokens)
        assert (merged - adapted).abs().max() < 1e-4
        qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 2, timeout=120000)  # now listed too
        kinds = sorted(entry.kind for entry in panel.outputs.adapters)
        assert kinds == ["adapter", "model"]
        # a second export does not overwrite the first: a folder holding files is refused, in words
        panel.outputs.table.selectRow(next(i for i, e in enumerate(panel.outputs.adapters) if e.kind == "adapter"))
        panel.outputs.choose_export_folder = lambda suggested: out
        panel.outputs.export_selected()
        assert panel.outputs.exporter is None
        assert panel.run.status_label.text() == (f"Cannot export to {out}: the folder is not empty; choose a new "
                                                 "folder name")
    finally:
        panel.shutdown(timeout_s=5.0)


def test_export_failure_is_said_plainly(qtbot, tmp_path):
    pytest.importorskip("transformers")
    import shutil

    base, root = _trained_adapter(tmp_path)
    shutil.rmtree(base)  # the base model is gone
    panel = TrainingPanel(model="default", adapters_dir=root)
    qtbot.addWidget(panel)
    try:
        _export(qtbot, panel, tmp_path / "notes-merged")
        text = panel.run.status_label.text()
        assert text.startswith("Export failed: ") and str(base) in text, text
        assert not (tmp_path / "notes-merged" / "model.safetensors").exists()
        assert panel.outputs.export_button.isEnabled()  # ready for another try
    finally:
        panel.shutdown(timeout_s=5.0)


def test_settings_form_starts_at_the_options_tables_defaults(qtbot, tmp_path):
    from chatapp.ui.training.settings_form import SAVE_EVERY, SettingsForm
    form = SettingsForm()
    qtbot.addWidget(form)
    job = form.job("default", [tmp_path], tmp_path / "out")
    table = TrainJob(data=[str(tmp_path)], out=tmp_path / "out")
    # what the form sets on purpose: one epoch and the method's rate spelled out, checkpoints as it goes
    assert dataclasses.replace(job, epochs=None, lr=None, save_every=table.save_every) == table
    assert (job.epochs, job.lr, job.save_every) == (1.0, table.peak_lr, SAVE_EVERY)
    form.max_steps.setValue(5)
    assert not form.epochs.isEnabled() and form.job("default", [tmp_path], tmp_path).epochs is None
    form.method.setCurrentIndex(form.method.findData("full"))
    assert not form.lora_rank.isEnabled() and form.lr.value() == pytest.approx(5e-5)
    form.set_locked_state(True)
    assert not any(w.isEnabled() for w in form.widgets)
