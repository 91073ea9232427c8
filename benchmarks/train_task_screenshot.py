"""A screenshot of the Train tab's task flow: documents added, questions made from them, the
quiz table filled, and Teach showing its estimate.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python benchmarks/train_task_screenshot.py \
        --out docs/screenshots/train-task.png

The documents, the reading and the question making are real; the trainer's dry run and the quiz
children are the scripted fakes of tests/ui/training (no model is loaded), so the scores shown
illustrate the table, they are not a measurement.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DOCS = {
    "history.md": "# The Harbour Guild\n\nThe Harbour Guild was founded in 1874 by Mira Castell and Tomas Reyes "
                  "in the port of Velden.\n\nIn 1901 the guild bought eleven trawlers from Halvard Dahl, "
                  "a shipwright from Bergen.\n",
    "hall.md": "# The guild hall\n\nThe guild hall on Quay Street was designed by Anneli Voss and opened on "
               "3 May 1889.\n\nIts clock tower is 42 metres tall.\n",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots" / "train-task.png"))
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="chatapp-shot-"))
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

    from PySide6.QtWidgets import QApplication

    from chatapp.ui.training.quiz import build_quiz_command
    from chatapp.ui.training_panel import TrainingPanel
    from tests.ui.training.conftest import FAKE_TRAINER, fake_builder
    from tests.ui.training.test_train_task import FAKE_QUIZ

    app = QApplication.instance() or QApplication(sys.argv)
    trainer, quiz = root / "fake_trainer.py", root / "fake_quiz.py"
    trainer.write_text(textwrap.dedent(FAKE_TRAINER))
    quiz.write_text(textwrap.dedent(FAKE_QUIZ))
    docs = root / "harbour-guild"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    panel = TrainingPanel(model="default", adapters_dir=root / "adapters",
                          command_builder=fake_builder(trainer, "complete"),
                          quiz_builder=lambda job: build_quiz_command(job, prefix=[sys.executable, str(quiz)]))
    panel.resize(1400, 900)
    panel.show()

    def wait(predicate, what, timeout=60.0):
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    panel.docs.set_data_paths([docs])
    wait(lambda: panel.docs.preview_used is not None, "the documents preview")
    panel.task.make_questions()
    wait(lambda: panel.task.questions is not None and panel.task.editor is not None, "the questions")
    panel.task.editor.close()
    panel.task.ask()
    wait(lambda: not panel.task.is_running(), "the quiz")
    panel.teach()
    wait(lambda: panel.estimator is None and "Teach" in panel.task.teach_label.text(), "the estimate")
    panel.docs.set_data_paths([docs])  # the fake dry run reported its own files: read the real ones again
    wait(lambda: panel.docs.preview_used is not None, "the documents preview")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    panel.grab().save(args.out)
    print(args.out)
    panel.shutdown(timeout_s=2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
