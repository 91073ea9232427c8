"""The real `chatapp train` child SIGKILLed at a random moment (the OOM killer, a crash): its
last checkpoint is whole, the Train panel says "Training stopped unexpectedly; resume from step
N", and its Resume button continues from step N to the end without a gap or a repeat."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from chatapp.training.checkpoint import checkpoint_problem, load_checkpoint  # noqa: E402
from chatapp.ui.training_panel import TrainingPanel  # noqa: E402


def _panel(qtbot, tmp_path, max_steps):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"d{i}.txt").write_text(f"Penguins are flightless birds of the southern seas. Note {i} is about "
                                        "ice, fish and the cold water where emperor penguins huddle in winter.\n")
    panel = TrainingPanel(model="default", adapters_dir=tmp_path / "adapters")
    qtbot.addWidget(panel)
    panel.docs.set_data_paths([docs])
    qtbot.waitUntil(lambda: panel.docs.preview_used == 30, timeout=60000)
    panel.form.method.setCurrentIndex(panel.form.method.findData("scratch"))
    panel.form.max_steps.setValue(max_steps)
    panel.form.block_size.setValue(32)
    panel.form.batch_size.setValue(2)
    panel.form.eval_every.setValue(4)
    panel.form.save_every.setValue(2)
    return panel


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
@pytest.mark.parametrize("seed", [1])
def test_killed_training_says_so_and_resume_finishes_the_run(qtbot, tmp_path, seed):
    def wait_ended(timeout):
        qtbot.waitUntil(lambda: panel.process is None and panel.last_status not in ("", "running"), timeout=timeout)

    total = 40
    panel = _panel(qtbot, tmp_path, max_steps=total)
    try:
        panel.start()
        qtbot.waitUntil(lambda: panel.checkpoint is not None, timeout=180000)  # one checkpoint written
        deadline = time.monotonic() + random.Random(seed).uniform(0.0, 1.5)  # then any moment, saving included
        while time.monotonic() < deadline and panel.process is not None:
            qtbot.wait(10)
        assert panel.process is not None, "the run ended before the kill"
        os.kill(panel.process.pid(), signal.SIGKILL)
        wait_ended(60000)
        step = panel.checkpoint_step
        text = panel.run.status_label.text()
        assert panel.last_status == "failed"
        assert text.startswith(f"Training stopped unexpectedly; resume from step {step} with Resume."), text
        assert step >= 2 and checkpoint_problem(panel.checkpoint) == ""
        assert load_checkpoint(Path(panel.checkpoint)).step == step
        assert panel.run.resume_button.isVisibleTo(panel)

        panel.run.resume_button.click()
        wait_ended(300000)
        assert panel.last_status == "completed", panel.run.status_label.text()
        assert panel.run.chart.steps == list(range(1, total + 1))  # from step N on: no gap, no repeat
    finally:
        panel.shutdown(timeout_s=5.0)
