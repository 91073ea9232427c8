"""The Train tab's fixtures: a fake trainer child speaking the real protocol, documents, panels.

The fake trainer is a small Python script written to tmp_path that writes the typed events of
`chatapp train --progress jsonl` (chatapp.training.protocol) with short sleeps; the panel starts
it through an injected command builder, so everything real (QProcess, line parsing, exit
handling) runs.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

FAKE_TRAINER = r'''
import os, signal, sys, time
from chatapp.training.protocol import (CheckpointEvent, DatasetEvent, EndEvent, EstimateEvent, EvalEvent, FileEntry,
                                       IngestEvent, StepEvent, encode)

mode, out = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
resume = args[args.index("--resume") + 1] if "--resume" in args else None

def emit(event):
    sys.stdout.write(encode(event))
    sys.stdout.flush()

def checkpoint(step):
    path = os.path.join(out, "checkpoints", "step-%08d" % step)
    os.makedirs(path, exist_ok=True)
    emit(CheckpointEvent(step=step, path=path))

emit(IngestEvent(files_used=1, files_skipped=1, chars=1000, text_bytes=1000,
                 summary="1 file used (1 kB of text), 1 skipped: 1 binary",
                 files=[FileEntry(path="/docs/a.txt", status="used", size=1100, chars=1000),
                        FileEntry(path="/docs/blob.bin", status="skipped", reason="binary: .bin file", size=1024)]))
emit(DatasetEvent(train_blocks=4, val_blocks=1, train_tokens=900, val_tokens=100))
fits = mode != "toobig"
emit(EstimateEvent(memory_bytes=2_500_000_000, available_bytes=16_000_000_000 if fits else 1_000_000_000,
                   fits=fits, total_steps=10, eta_s=125 if "--dry-run" in args else 400,
                   eta_low_s=100 if "--dry-run" in args else 320, eta_high_s=156 if "--dry-run" in args else 500))
if "--dry-run" in args:
    emit(EndEvent(status="completed", reason="dry_run", out=out))
    sys.exit(0)

total = 4 if mode == "tiny" else 10
start = int(resume.rsplit("-", 1)[1]) if resume else 0
if not resume:
    emit(EvalEvent(step=0, val_loss=3.6889, val_ppl=40.0))

if mode == "long":
    def on_term(signum, frame):  # like chatapp train: finish the step, checkpoint, say where
        checkpoint(step)
        emit(EndEvent(status="cancelled", reason="cancelled at step %d" % step, out=out, step=step,
                      checkpoint=os.path.join(out, "checkpoints", "step-%08d" % step)))
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

step = start
while True:
    step += 1
    loss = 3.0 + 0.01 * step if mode == "tiny" else 3.0 - 0.1 * step
    emit(StepEvent(step=step, total_steps=total, loss=loss, lr=2e-4, tokens_per_s=1000.0, eta_s=12.0 * (total - step)))
    time.sleep(0.02)
    if mode in ("long", "stubborn"):
        if step == 3:
            checkpoint(step)
        time.sleep(0.03)
        continue
    if step == 5 and mode == "complete":
        emit(EvalEvent(step=5, val_loss=3.2, val_ppl=24.5))
    if step == 3 and mode == "fail":
        sys.stderr.write("Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory.\n")
        emit(EndEvent(status="failed", reason="CUDA out of memory. Tried to allocate 2.00 GiB", out=out))
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
        emit(EvalEvent(step=5, val_loss=3.2, val_ppl=24.5))
    if step == 6 and mode == "earlystop":
        emit(EvalEvent(step=6, val_loss=3.3, val_ppl=27.1))
        checkpoint(step)
        emit(EndEvent(status="completed", reason="early_stop", out=out, step=6, best_step=5, restored_step=5,
                      val_ppl_before=40.0, val_ppl_after=24.5))
        sys.exit(0)
    if step == 3 and mode == "noend":
        sys.exit(0)
    if step == 3 and mode == "lies":
        emit(EndEvent(status="completed", reason="", out=out))
        sys.exit(3)
    if step >= total:
        break

after = 39.6 if mode == "tiny" else 20.0
emit(EvalEvent(step=total, val_loss=2.9957, val_ppl=after))
checkpoint(total)
# the last line arrives in two pieces and without a newline: partial lines must be joined
line = encode(EndEvent(status="completed", reason="completed", out=out, step=total, val_ppl_before=40.0,
                       val_ppl_after=after)).rstrip("\n")
sys.stdout.write(line[:30])
sys.stdout.flush()
time.sleep(0.05)
sys.stdout.write(line[30:])
sys.stdout.flush()
'''


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    script = tmp_path / "fake_trainer.py"
    script.write_text(textwrap.dedent(FAKE_TRAINER))
    # the child imports this checkout's protocol, wherever the venv's chatapp points
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return script


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("# Penguins\n\nPenguins are flightless birds of the southern seas.\n")
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 4)
    return folder


def fake_builder(script, mode):
    def builder(job, dry_run):
        argv = [sys.executable, str(script), mode, str(job.out)]
        if job.resume is not None:
            argv += ["--resume", str(job.resume)]
        return argv + (["--dry-run"] if dry_run else [])

    return builder


@pytest.fixture
def make_panel(qtbot, tmp_path, fake_trainer, docs):
    from chatapp.ui.training_panel import TrainingPanel

    made = []

    def make(mode="complete", grace_s=5.0, with_docs=True):
        panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters",
                              command_builder=fake_builder(fake_trainer, mode), grace_s=grace_s)
        qtbot.addWidget(panel)
        made.append(panel)
        if with_docs:
            panel.docs.set_data_paths([docs])
            qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
        return panel

    yield make
    for panel in made:
        panel.shutdown(timeout_s=2.0)


@pytest.fixture
def wait_ended(qtbot):
    def wait(panel, timeout=60000):
        qtbot.waitUntil(lambda: panel.process is None and panel.last_status not in ("", "running"), timeout=timeout)
    return wait


@pytest.fixture
def builder_for(fake_trainer):
    return lambda mode: fake_builder(fake_trainer, mode)
