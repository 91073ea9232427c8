"""The training tab against a fake trainer child: complete, fail, crash, cancel, resume.

The fake trainer is a small Python script written to tmp_path that prints the JSON lines of
`chatapp train --progress jsonl` with short sleeps; the panel starts it through an injected
command builder, so everything real (QProcess, line parsing, exit handling) runs.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPixmap

from chatapp.ui.loss_chart import LossChart, nice_ticks, ppl_ticks
from chatapp.ui.training_panel import TrainingPanel, format_eta
from chatapp.ui.training_process import (TrainingProcess, TrainOptions, build_train_command, find_checkpoint,
                                         new_out_dir, scan_adapters)

FAKE_TRAINER = r'''
import json, os, signal, sys, time

mode, out = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
resume = args[args.index("--resume") + 1] if "--resume" in args else None

def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()

def checkpoint(step):
    path = os.path.join(out, "checkpoints", "step-%08d" % step)
    os.makedirs(path, exist_ok=True)
    emit(event="checkpoint", step=step, path=path)

emit(event="ingest", complete=True, files_used=1, files_skipped=1,
     summary="1 file used (1 kB of text), 1 skipped: 1 binary",
     files=[{"path": "/docs/a.txt", "status": "used", "reason": ""},
            {"path": "/docs/blob.bin", "status": "skipped", "reason": "binary: .bin file"}])
emit(event="dataset", kind="documents", train_blocks=4, val_blocks=1, train_tokens=900, val_tokens=100)
fits = mode != "toobig"
emit(event="estimate", memory_bytes=2_500_000_000, available_bytes=16_000_000_000 if fits else 1_000_000_000,
     fits=fits, total_steps=10, eta_s=125)
if "--dry-run" in args:
    emit(event="end", status="completed", reason="dry run", out=out)
    sys.exit(0)

total = 10
start = int(resume.rsplit("-", 1)[1]) if resume else 0
if not resume:
    emit(event="eval", step=0, val_loss=3.6889, val_ppl=40.0)

if mode == "long":
    def on_term(signum, frame):  # like chatapp train: finish the step, checkpoint, say where
        checkpoint(step)
        emit(event="end", status="cancelled", reason="cancelled at step %d" % step, out=out, step=step,
             checkpoint=os.path.join(out, "checkpoints", "step-%08d" % step))
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

step = start
while True:
    step += 1
    # the trainer says total_steps; the contract said max_steps: the panel reads either
    emit(event="step", step=step, **{"max_steps" if mode == "long" else "total_steps": total},
         loss=3.0 - 0.1 * step, lr=2e-4, tokens_per_s=1000.0, eta_s=12.0 * (total - step))
    time.sleep(0.02)
    if mode in ("long", "stubborn"):
        if step == 3:
            checkpoint(step)
        time.sleep(0.03)
        continue
    if step == 5 and mode == "complete":
        emit(event="eval", step=5, val_loss=3.2, val_ppl=24.5)
    if step == 3 and mode == "fail":
        sys.stderr.write("Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory.\n")
        emit(event="end", status="failed", reason="CUDA out of memory. Tried to allocate 2.00 GiB", out=out)
        sys.exit(1)
    if step == 3 and mode == "crash":
        sys.stderr.write("loading shards\nsomething went badly wrong in the native code\n")
        sys.stderr.flush()
        os._exit(137)
    if step == 3 and mode == "sigkill":
        sys.stderr.write("about to be killed\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if step == 5 and mode == "earlystop":
        emit(event="eval", step=5, val_loss=3.2, val_ppl=24.5)
    if step == 6 and mode == "earlystop":
        emit(event="eval", step=6, val_loss=3.3, val_ppl=27.1)
        checkpoint(step)
        emit(event="end", status="completed", reason="early_stop", out=out, step=6, best_step=5, restored_step=5,
             val_ppl_before=40.0, val_ppl_after=24.5)
        sys.exit(0)
    if step == 3 and mode == "noend":
        sys.exit(0)
    if step == 3 and mode == "lies":
        emit(event="end", status="completed", reason="", out=out)
        sys.exit(3)
    if step >= total:
        break

emit(event="eval", step=total, val_loss=2.9957, val_ppl=20.0)
checkpoint(total)
# the last line arrives in two pieces and without a newline: partial lines must be joined
sys.stdout.write('{"event": "end", "status": "completed", ')
sys.stdout.flush()
time.sleep(0.05)
sys.stdout.write(json.dumps({"reason": "", "out": out, "val_ppl_before": 40.0, "val_ppl_after": 20.0})[1:])
sys.stdout.flush()
'''


@pytest.fixture
def fake_trainer(tmp_path):
    script = tmp_path / "fake_trainer.py"
    script.write_text(textwrap.dedent(FAKE_TRAINER))
    return script


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("# Penguins\n\nPenguins are flightless birds of the southern seas.\n")
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 4)
    return folder


@pytest.fixture
def make_panel(qtbot, tmp_path, fake_trainer, docs):
    made = []

    def make(mode="complete", grace_s=5.0, with_docs=True):
        def builder(options, dry_run):
            argv = [sys.executable, str(fake_trainer), mode, str(options.out_dir)]
            if options.resume_from is not None:
                argv += ["--resume", str(options.resume_from)]
            return argv + (["--dry-run"] if dry_run else [])

        panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters", command_builder=builder,
                              grace_s=grace_s)
        qtbot.addWidget(panel)
        made.append(panel)
        if with_docs:
            panel.set_data_paths([docs])
            qtbot.waitUntil(lambda: panel.preview_used is not None, timeout=60000)
        return panel

    yield make
    for panel in made:
        panel.shutdown(timeout_s=2.0)


def _wait_ended(qtbot, panel, timeout=60000):
    qtbot.waitUntil(lambda: panel.process is None and panel.last_status not in ("", "running"), timeout=timeout)


# -- the command ---------------------------------------------------------------------------------
def test_build_train_command_lora_and_full(tmp_path):
    options = TrainOptions(model="default", data=[tmp_path / "a", tmp_path / "b.md"], out_dir=tmp_path / "out")
    argv = build_train_command(options, prefix=["chatapp"])
    assert argv[:4] == ["chatapp", "train", "--model", "default"]
    assert argv[4:7] == ["--data", str(tmp_path / "a"), str(tmp_path / "b.md")]
    pairs = dict(zip(argv[7::2], argv[8::2]))
    assert pairs == {"--out": str(tmp_path / "out"), "--method": "lora", "--epochs": "1", "--lr": "0.0002",
                     "--batch-size": "4", "--grad-accum": "1", "--block-size": "256", "--lora-rank": "8",
                     "--lora-alpha": "16", "--lora-targets": "q_proj,v_proj", "--eval-every": "50",
                     "--save-every": "100", "--seed": "0",
                     "--progress": "jsonl"}
    full = TrainOptions(model="m.gguf", data=[tmp_path], out_dir=tmp_path / "o", method="full", max_steps=30,
                        lr=2e-5, resume_from=tmp_path / "o" / "step-00000010")
    argv = build_train_command(full, dry_run=True, prefix=["x"])
    assert "--lora-rank" not in argv and "--epochs" not in argv
    assert argv[argv.index("--max-steps") + 1] == "30" and argv[argv.index("--lr") + 1] == "2e-05"
    assert argv[argv.index("--resume") + 1] == str(tmp_path / "o" / "step-00000010")
    assert argv[-3:] == ["--progress", "jsonl", "--dry-run"]
    stopping = TrainOptions(model="default", data=[tmp_path], out_dir=tmp_path / "o", early_stop=3)
    argv = build_train_command(stopping, prefix=["x"])
    assert argv[argv.index("--early-stop") + 1] == "3"


def test_command_parses_with_the_real_train_cli(tmp_path):
    train = pytest.importorskip("chatapp.commands.train")
    import argparse
    parser = argparse.ArgumentParser()
    train.add_train_parser(parser.add_subparsers(dest="command"))
    options = TrainOptions(model="default", data=[tmp_path / "a", tmp_path / "b.md"], out_dir=tmp_path / "out",
                           max_steps=12, lr=3e-4, lora_rank=4, lora_alpha=8, resume_from=tmp_path / "out",
                           early_stop=2, lora_targets=["q_proj", "k_proj", "v_proj", "o_proj"])
    args = parser.parse_args(build_train_command(options, dry_run=True, prefix=["chatapp"])[1:])
    assert args.data == [str(tmp_path / "a"), str(tmp_path / "b.md")] and args.out == str(tmp_path / "out")
    assert (args.method, args.max_steps, args.epochs, args.lr) == ("lora", 12, None, 3e-4)
    assert (args.lora_rank, args.lora_alpha, args.save_every, args.eval_every) == (4, 8.0, 100, 50)
    assert (args.resume, args.progress, args.dry_run) == (str(tmp_path / "out"), "jsonl", True)
    assert args.early_stop == 2 and args.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_default_command_starts_this_app(tmp_path):
    argv = build_train_command(TrainOptions(model="default", data=[tmp_path], out_dir=tmp_path))
    assert argv[0] == sys.executable and argv[1:4] == ["-m", "chatapp", "train"]


@pytest.mark.parametrize("bad, message", [
    (dict(data=[]), "no documents"), (dict(method="qlora"), "method"), (dict(epochs=1.0, max_steps=5), "not both"),
    (dict(lr=0), "lr"), (dict(batch_size=0), "batch_size"), (dict(model=""), "model"),
    (dict(early_stop=-1), "early_stop"), (dict(lora_targets=[]), "lora_targets")])
def test_train_options_validate(tmp_path, bad, message):
    kwargs = dict(model="default", data=[tmp_path], out_dir=tmp_path)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        TrainOptions(**kwargs)


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
    assert [e["step"] for e in seen["step"]] == list(range(1, 11))
    assert [e["val_ppl"] for e in seen["eval"]] == [40.0, 24.5, 20.0]
    assert seen["ingest"][0]["files"][1]["reason"] == "binary: .bin file"
    assert seen["estimate"][0]["eta_s"] == 125
    assert info["val_ppl_after"] == 20.0 and info["exit_code"] == 0  # the split, newline-less end line


@pytest.mark.parametrize("mode, expected", [
    ("noend", "exited without reporting an end"), ("lies", "reported completion but then")])
def test_process_without_a_true_end_fails(qtbot, fake_trainer, tmp_path, mode, expected):
    (status, reason, _), _ = _run_process(qtbot, [sys.executable, str(fake_trainer), mode, str(tmp_path)])
    assert status == "failed" and expected in reason


def test_process_that_cannot_start_fails(qtbot, tmp_path):
    (status, reason, info), _ = _run_process(qtbot, [str(tmp_path / "no-such-program")])
    assert status == "failed" and "could not start" in reason and info["exit_code"] is None


# -- the panel -----------------------------------------------------------------------------------
def test_completed_run_fills_progress_chart_and_perplexity(qtbot, make_panel):
    panel = make_panel("complete")
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    etas = []
    panel.progress.valueChanged.connect(lambda _v: etas.append(panel.progress.format()))
    qtbot.mouseClick(panel.start_button, Qt.LeftButton)
    assert panel.is_training() and panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()
    _wait_ended(qtbot, panel)
    assert panel.last_status == "completed"
    assert panel.status_label.text().startswith("Completed. Saved to ")
    assert (panel.progress.minimum(), panel.progress.maximum(), panel.progress.value()) == (0, 10, 10)
    assert "Step 1 of 10 · about 1 min 48 s left" in etas  # eta_s 108
    assert panel.chart.loss_count == 10 and panel.chart.eval_count == 3 and panel.chart.total_steps == 10
    assert panel.ppl_label.text() == "Perplexity on held-out text: before 40.00, after 20.00 (-50%)"
    assert "needs about 2.5 GB of memory (16.0 GB available), takes about 2 min 05 s" in panel.estimate_label.text()
    assert not panel.resume_button.isVisibleTo(panel)
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_early_stop_setting_and_its_completion_message(qtbot, make_panel):
    panel = make_panel("earlystop")
    assert panel.options().early_stop == 0 and panel.early_stop.text() == "Never"
    panel.early_stop.setValue(3)
    assert panel.options().early_stop == 3
    assert panel.options().lora_targets == ["q_proj", "v_proj"]
    panel.lora_targets.setCurrentIndex(2)
    assert panel.options().lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"]
    qtbot.mouseClick(panel.start_button, Qt.LeftButton)
    _wait_ended(qtbot, panel)
    text = panel.status_label.text()
    assert panel.last_status == "completed"
    assert text.startswith("Stopped early at step 6: held-out perplexity stopped improving. Completed. Saved to ")
    assert text.endswith(" (the weights of step 5, the lowest held-out perplexity)")
    assert panel.ppl_label.text() == "Perplexity on held-out text: before 40.00, after 24.50 (-39%)"


def test_failed_end_line_says_failed_with_reason(qtbot, make_panel):
    panel = make_panel("fail")
    with qtbot.waitSignal(panel.training_finished, timeout=60000) as blocker:
        panel.start()
    assert blocker.args[0] == "failed"
    text = panel.status_label.text()
    assert text.startswith("Failed: out of memory. Try LoRA") and "Tried to allocate 2.00 GiB" in text
    assert "Completed" not in text and panel.progress.format().startswith("Failed")
    assert "torch.OutOfMemoryError" in panel.log_view.toPlainText()  # the traceback is in the log, not the status


@pytest.mark.parametrize("mode, expected", [
    ("crash", "was killed (exit code 137)"), ("sigkill", "crashed or was killed")])
def test_crash_without_end_line_is_a_failure(qtbot, make_panel, mode, expected):
    panel = make_panel(mode)
    panel.start()
    _wait_ended(qtbot, panel)
    text = panel.status_label.text()
    assert panel.last_status == "failed" and text.startswith("Failed: ") and expected in text
    assert "Completed" not in text
    last_line = "something went badly wrong in the native code" if mode == "crash" else "about to be killed"
    assert last_line in text
    assert panel.chart.loss_count == 3 and panel.progress.value() == 3


def test_cancel_checkpoints_and_resume_continues(qtbot, make_panel, fake_trainer):
    panel = make_panel("long")
    panel.start()
    qtbot.waitUntil(lambda: panel.chart.loss_count >= 5, timeout=60000)
    pid = panel.process.pid()
    qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    _wait_ended(qtbot, panel)
    assert panel.last_status == "cancelled" and panel.status_label.text().startswith("Cancelled")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
    assert panel.checkpoint is not None and panel.checkpoint_step >= 5
    assert panel.resume_button.isVisibleTo(panel)
    assert "Resume continues from it" in panel.status_label.text()

    # a resumed run writes into the same folder and continues the chart from the checkpoint
    first_out = panel.run_options.out_dir
    panel.command_builder = _builder_for(fake_trainer, "complete")
    qtbot.mouseClick(panel.resume_button, Qt.LeftButton)
    _wait_ended(qtbot, panel)
    assert panel.last_status == "completed", panel.status_label.text()
    assert panel.run_options.out_dir == first_out and panel.run_options.resume_from is not None
    assert panel.chart.steps == list(range(1, 11))


def _builder_for(script, mode):
    def builder(options, dry_run):
        argv = [sys.executable, str(script), mode, str(options.out_dir)]
        if options.resume_from is not None:
            argv += ["--resume", str(options.resume_from)]
        return argv

    return builder


def test_cancel_kills_a_child_that_ignores_sigterm(qtbot, make_panel):
    panel = make_panel("stubborn", grace_s=0.5)
    panel.start()
    qtbot.waitUntil(lambda: panel.chart.loss_count >= 2, timeout=60000)
    pid = panel.process.pid()
    panel.cancel()
    _wait_ended(qtbot, panel)
    assert panel.last_status == "cancelled" and "was killed" in panel.status_label.text()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_estimate_is_a_dry_run_not_a_completion(qtbot, make_panel):
    panel = make_panel("toobig")
    panel.estimate()
    qtbot.waitUntil(lambda: panel.estimator is None, timeout=60000)
    text = panel.estimate_label.text()
    assert "needs about 2.5 GB of memory (1.0 GB available)" in text and "run out of memory" in text
    assert "Completed" not in panel.status_label.text() and panel.last_status == ""
    assert panel.skipped_table.item(0, 1).text() == "binary: .bin file"


def test_cannot_start_without_documents(qtbot, make_panel):
    panel = make_panel(with_docs=False)
    assert not panel.start_button.isEnabled()
    panel.start()
    assert panel.process is None and panel.status_label.text() == "Cannot start: no documents chosen"


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
    assert panel.data_paths == [docs] and panel.name_edit.text() == "docs"
    qtbot.waitUntil(lambda: panel.preview_used is not None, timeout=60000)
    assert panel.preview_label.text().startswith("1 files used, 1 skipped.")
    assert panel.skipped_table.rowCount() == 1
    assert panel.skipped_table.item(0, 0).text() == "blob.bin"
    assert panel.skipped_table.item(0, 1).text() == "binary: .bin file"
    assert panel.start_button.isEnabled()


def test_drop_of_non_local_urls_is_refused(qtbot, make_panel):
    panel = make_panel(with_docs=False)
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/a.txt")])
    enter = QDragEnterEvent(QPoint(1, 1), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    enter.setAccepted(False)
    panel.dragEnterEvent(enter)
    assert not enter.isAccepted() and panel.data_paths == []


def test_only_unusable_files_disable_start(qtbot, make_panel, tmp_path):
    panel = make_panel(with_docs=False)
    blob = tmp_path / "only.bin"
    blob.write_bytes(b"\x00\x01" * 10)
    panel.set_data_paths([blob])
    qtbot.waitUntil(lambda: panel.preview_used is not None, timeout=60000)
    assert panel.preview_used == 0 and not panel.start_button.isEnabled()
    assert "None of these files can be used" in panel.preview_label.text()


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
    qtbot.waitUntil(lambda: panel.adapters_table.rowCount() == 1, timeout=120000)  # the scan imports torch
    cells = [panel.adapters_table.item(0, c).text() for c in range(4)]
    assert cells[0] == "notes-20250101-120000" and cells[1] == "SmolLM2-135M-Instruct" and cells[3] == "12.50"
    assert not panel.chat_button.isEnabled()
    panel.adapters_table.selectRow(0)
    assert panel.chat_button.isEnabled() and panel.chat_button.text() == "Chat with this adapter"
    with qtbot.waitSignal(panel.use_adapter, timeout=1000) as blocker:
        qtbot.mouseClick(panel.chat_button, Qt.LeftButton)
    assert blocker.args == [str(adapter)]
    with qtbot.waitSignal(panel.adapter_off, timeout=1000):
        qtbot.mouseClick(panel.off_button, Qt.LeftButton)
    panel.set_active_adapter(str(adapter))
    assert panel.adapters_table.item(0, 0).text().endswith("(in use)")


def test_compare_view_round_trip(qtbot, make_panel, tmp_path):
    adapter = _fake_adapter(tmp_path / "adapters", "a-1", 10.0)
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.adapters_table.rowCount() == 1, timeout=120000)  # the scan imports torch
    panel.adapters_table.selectRow(0)
    qtbot.mouseClick(panel.compare_button, Qt.LeftButton)
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
    qtbot.waitUntil(lambda: panel.adapters_table.rowCount() == 1, timeout=120000)  # the scan imports torch
    panel.adapters_table.selectRow(0)
    assert panel.adapters_table.item(0, 0).text() == "broken (damaged)"
    assert "target_modules" in panel.adapters_table.item(0, 0).toolTip()
    assert not panel.chat_button.isEnabled() and not panel.compare_button.isEnabled()


def test_scan_adapters_reports_damaged_folders(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{not json")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    rows = scan_adapters(tmp_path)
    assert len(rows) == 1 and rows[0]["kind"] == "adapter" and "not valid JSON" in rows[0]["error"]
    assert scan_adapters(tmp_path / "missing") == []


def test_find_checkpoint_picks_the_newest(tmp_path):
    for step in (10, 200, 30):
        (tmp_path / "checkpoints" / f"step-{step:08d}").mkdir(parents=True)
    path, step = find_checkpoint(tmp_path)
    assert step == 200 and path.endswith("step-00000200")
    assert find_checkpoint(tmp_path / "none") == (None, 0)


# -- the chart -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_loss_chart_renders(qtbot, n):
    chart = LossChart()
    qtbot.addWidget(chart)
    chart.resize(480, 260)
    chart.set_total_steps(max(n, 10))
    for step in range(1, n + 1):
        chart.add_loss(step, 3.0 / (1 + step / 500) + (0.2 if step % 7 == 0 else 0.0))
    if n:
        chart.add_eval(0, 40.0)
        chart.add_eval(n, 12.0)
    chart.add_loss(n + 1, float("nan"))  # a diverged step is not drawn
    assert chart.loss_count == n
    pixmap = QPixmap(chart.size())
    pixmap.fill(QColor("white"))
    chart.render(pixmap)
    assert not pixmap.isNull() and chart.paint_count == 1
    if n == 5000:
        image = pixmap.toImage()
        blue = sum(1 for x in range(0, 480, 2) for y in range(0, 260, 2)
                   if image.pixelColor(x, y).blue() > 150 and image.pixelColor(x, y).red() < 120)
        assert blue > 20  # the loss line is there


def test_chart_repaints_are_throttled_and_resume_truncates(qtbot):
    chart = LossChart()
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    before = chart.paint_count
    for step in range(1, 1001):
        chart.add_loss(step, 2.0)
    qtbot.wait(400)
    assert chart.paint_count - before <= 3
    chart.add_eval(500, 9.0)
    chart.add_eval(900, 8.0)
    chart.truncate_after(600)
    assert chart.loss_count == 600 and chart.eval_count == 1
    chart.add_loss(601, 1.5)
    assert chart.steps[-2:] == [600, 601]


def test_ticks_and_eta_formatting():
    assert nice_ticks(0, 10, 6) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(1.13, 1.31, 5) == [1.15, 1.2, 1.25, 1.3]
    assert ppl_ticks(0.0, 4.7) == [1, 2, 5, 10, 20, 50, 100]
    assert len(ppl_ticks(2.0, 2.1)) >= 2
    assert [format_eta(s) for s in (5, 125, 7322, None, float("nan"))] == [
        "5 s", "2 min 05 s", "2 h 02 min", "…", "…"]


# -- the real `chatapp train` (a tiny model from scratch: no weights needed, seconds per run) ---------
def _real_panel(qtbot, tmp_path, max_steps):
    docs = tmp_path / "real-docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"d{i}.txt").write_text(f"Penguins are flightless birds of the southern seas. Note {i} is about "
                                        "ice, fish and the cold water where emperor penguins huddle in winter.\n")
    panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters")  # the real command builder
    qtbot.addWidget(panel)
    panel.set_data_paths([docs])
    qtbot.waitUntil(lambda: panel.preview_used == 30, timeout=60000)
    panel.method.setCurrentIndex(panel.method.findData("scratch"))
    assert panel.lr.value() == pytest.approx(1e-3) and not panel.lora_rank.isEnabled()
    panel.max_steps.setValue(max_steps)
    panel.block_size.setValue(32)
    panel.batch_size.setValue(2)
    panel.eval_every.setValue(3)
    panel.save_every.setValue(3)
    return panel


def test_real_train_command_completes_and_lists_the_model(qtbot, tmp_path):
    panel = _real_panel(qtbot, tmp_path, max_steps=6)
    try:
        panel.start()
        _wait_ended(qtbot, panel, timeout=180000)
        assert panel.last_status == "completed", panel.status_label.text() + panel.log_view.toPlainText()[-2000:]
        assert (panel.progress.value(), panel.progress.maximum()) == (6, 6)
        assert panel.chart.loss_count == 6 and panel.chart.eval_count == 3
        ppl_text = panel.ppl_label.text()
        assert ppl_text.startswith("Perplexity on held-out text: before ") and ", after " in ppl_text
        qtbot.waitUntil(lambda: panel.adapters_table.rowCount() == 1, timeout=120000)  # the scan imports torch
        panel.adapters_table.selectRow(0)
        assert panel.chat_button.text() == "Chat with this model" and not panel.compare_button.isEnabled()
        assert panel.adapters_table.item(0, 3).text() == f"{panel.ppl_after:.2f}"
        with qtbot.waitSignal(panel.use_model, timeout=1000) as blocker:
            panel.chat_with_selected()
        assert blocker.args == [str(panel.run_options.out_dir)]
    finally:
        panel.shutdown(timeout_s=5.0)


def test_real_train_command_cancels_with_a_checkpoint_and_resumes(qtbot, tmp_path):
    panel = _real_panel(qtbot, tmp_path, max_steps=100_000)
    try:
        panel.start()
        qtbot.waitUntil(lambda: panel.chart.loss_count >= 4, timeout=180000)
        panel.cancel()
        _wait_ended(qtbot, panel, timeout=60000)
        assert panel.last_status == "cancelled", panel.status_label.text()
        assert panel.checkpoint is not None and Path(panel.checkpoint, "trainer_state.json").is_file()
        stopped_at = panel.checkpoint_step
        assert stopped_at >= 4 and panel.chart.steps[-1] == stopped_at
        assert panel.resume_button.isVisibleTo(panel)
        panel.resume()
        qtbot.waitUntil(lambda: panel.chart.loss_count >= stopped_at + 2, timeout=180000)
        panel.cancel()
        _wait_ended(qtbot, panel, timeout=60000)
        assert panel.last_status == "cancelled"
        steps = panel.chart.steps
        assert steps == list(range(1, len(steps) + 1))  # continued from the checkpoint, no gap, no repeat
        assert "--resume" in " ".join(build_train_command(panel.run_options))
    finally:
        panel.shutdown(timeout_s=5.0)


def test_background_results_arrive_in_the_gui_thread(qtbot, docs, tmp_path):
    import threading

    from PySide6.QtCore import Slot

    threads = []

    class Recording(TrainingPanel):
        @Slot(int, object)
        def _on_preview_done(self, ticket, report):
            threads.append(threading.current_thread())
            super()._on_preview_done(ticket, report)

    panel = Recording(adapters_dir=tmp_path / "adapters")
    qtbot.addWidget(panel)
    panel.set_data_paths([docs])
    qtbot.waitUntil(lambda: panel.preview_used is not None, timeout=60000)
    assert threads == [threading.main_thread()]
    panel.shutdown()


# -- export of a merged model --------------------------------------------------------------------
def _trained_adapter(tmp_path: Path) -> tuple[Path, Path]:
    """(tiny base model folder, adapters root holding one LoRA adapter trained on it)."""
    import contextlib
    import io

    from helpers.tiny_hf import tiny_llama_folder, write_corpus

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


def _export(qtbot, panel, parent: Path) -> None:
    qtbot.waitUntil(lambda: panel.adapters_table.rowCount() >= 1, timeout=120000)
    panel.adapters_table.selectRow(0)
    assert panel.export_button.isEnabled()
    panel.choose_export_parent = lambda start: parent
    qtbot.mouseClick(panel.export_button, Qt.LeftButton)
    assert panel.exporter is not None and not panel.export_button.isEnabled()
    qtbot.waitUntil(lambda: panel.exporter is None, timeout=120000)


def test_export_writes_the_merged_model_and_lists_it(qtbot, tmp_path):
    pytest.importorskip("transformers")
    import torch

    from chatapp.engine.loader import load_model
    base, root = _trained_adapter(tmp_path)
    panel = TrainingPanel(model=str(base), adapters_dir=root)
    qtbot.addWidget(panel)
    try:
        _export(qtbot, panel, root)
        out = root / "notes-merged"
        assert panel.status_label.text().startswith(f"Exported to {out}."), panel.status_label.text()
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        # the merged model computes what the base model with the adapter computes
        tokens = torch.arange(5, 30)[None]
        with torch.inference_mode():
            merged = load_model(out, device="cpu").model(tokens)
            adapted = load_model(base, device="cpu", adapter=root / "notes").model(tokens)
        assert (merged - adapted).abs().max() < 1e-4
        qtbot.waitUntil(lambda: panel.adapters_table.rowCount() == 2, timeout=120000)  # now listed too
        kinds = sorted(entry["kind"] for entry in panel.adapters)
        assert kinds == ["adapter", "model"]
        # a second export does not overwrite the first
        panel.adapters_table.selectRow(next(i for i, e in enumerate(panel.adapters) if e["kind"] == "adapter"))
        panel.choose_export_parent = lambda start: root
        panel.export_selected()
        qtbot.waitUntil(lambda: panel.exporter is None, timeout=120000)
        assert (root / "notes-merged-2" / "model.safetensors").is_file()
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
        _export(qtbot, panel, tmp_path)
        text = panel.status_label.text()
        assert text.startswith("Export failed: ") and str(base) in text, text
        assert not (tmp_path / "notes-merged" / "model.safetensors").exists()
        assert panel.export_button.isEnabled()  # ready for another try
    finally:
        panel.shutdown(timeout_s=5.0)
