"""The protocol end to end: a child writes every event with `chatapp train`'s writer, the window's
`TrainingProcess` reads them back, typed and equal, through its signals."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

from chatapp.ui.training_process import TrainingProcess

SAMPLES_FILE = Path(__file__).resolve().parents[2] / "training" / "test_protocol.py"

CHILD = r'''
import importlib.util, sys
spec = importlib.util.spec_from_file_location("protocol_samples", sys.argv[1])
samples = importlib.util.module_from_spec(spec)
spec.loader.exec_module(samples)
from chatapp.commands.train import ProgressWriter
write = ProgressWriter(jsonl=True, stream=sys.stdout)
print("a stray line from a library")
for event in samples.SAMPLES:
    write(event)
'''


def _samples():
    spec = importlib.util.spec_from_file_location("protocol_samples", SAMPLES_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SAMPLES


def test_child_writes_every_event_and_the_window_reads_it_back(qtbot, tmp_path, fake_trainer):
    # fake_trainer: the child's PYTHONPATH points at this checkout
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    process = TrainingProcess([sys.executable, str(script), str(SAMPLES_FILE)])
    seen, lines = [], []
    for signal in (process.ingest, process.dataset, process.examples, process.estimate, process.evaluated,
                   process.stepped, process.checkpointed):
        signal.connect(seen.append)
    process.output.connect(lines.append)
    with qtbot.waitSignal(process.ended, timeout=60000) as blocker:
        process.start()
    status, reason, outcome = blocker.args
    samples = _samples()
    *events, end = samples
    assert seen == [e for e in events if e.KIND != "saved"]  # "saved" is read, and left to the end line
    assert outcome.end == end and (status, reason) == ("cancelled", "cancelled at step 3")
    assert (outcome.checkpoint, outcome.checkpoint_step) == (end.checkpoint, 3)
    assert lines == ["a stray line from a library"]
