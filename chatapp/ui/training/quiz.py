"""The quiz for the Train tab: `chatapp quiz ... --json --progress` in a child process, and its scores.

What does the model know about the documents? Four rows, each one run of the quiz child:
the base model and the tuned one (an adapter), each closed-book and with the documents
retrieved into the prompt. `QuizProcess` supervises one child with QProcess (asynchronous in
the GUI thread; the model loads and answers in the child). `QuizRunner` runs the rows one
after the other. `QuizRecord` is what the table shows, kept beside an adapter as quiz.json
(before and after the run that made it).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal, Slot
from PySide6.QtGui import QGuiApplication

log = logging.getLogger(__name__)

BASE, BASE_DOCS, TUNED, TUNED_DOCS = "base", "base_docs", "tuned", "tuned_docs"
ROWS = (BASE, BASE_DOCS, TUNED, TUNED_DOCS)
QUIZ_FILE = "quiz.json"  # beside the adapter's weights
STDERR_KEPT = 20


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingQuiz", text)


@dataclass(frozen=True)
class QuizJob:
    """One row's quiz: the model, maybe an adapter, maybe documents, and the question file."""

    row: str
    model: str
    questions: str
    adapter: Optional[str] = None
    docs: tuple[str, ...] = ()


# QuizJob -> argv; the panel takes one so that tests can start a fake quiz child
QuizCommandBuilder = Callable[[QuizJob], list[str]]


def build_quiz_command(job: QuizJob, prefix: Optional[Sequence[str]] = None) -> list[str]:
    """`<self> quiz --model M [--adapter DIR] [--docs PATH...] --questions FILE --json --progress`."""
    if prefix is None:
        from ..training_process import self_command
        prefix = self_command()
    argv = list(prefix) + ["quiz", "--model", job.model, "--questions", job.questions]
    if job.adapter:
        argv += ["--adapter", job.adapter]
    if job.docs:
        argv += ["--docs", *job.docs]
    return argv + ["--json", "--progress"]


@dataclass
class QuizRecord:
    """Scores by row (score, total) before and after a run; what the table shows."""

    questions: str = ""
    docs: list[str] = field(default_factory=list)
    before: dict[str, list[int]] = field(default_factory=dict)
    after: dict[str, list[int]] = field(default_factory=dict)
    when: str = ""

    def save(self, folder: Path) -> Path:
        path = Path(folder) / QUIZ_FILE
        self.when = self.when or time.strftime("%Y-%m-%d %H:%M")
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: Path) -> Optional["QuizRecord"]:
        """The record kept beside an adapter; None when there is none or it cannot be read."""
        path = Path(folder) / QUIZ_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = cls(questions=str(data.get("questions", "")), docs=[str(d) for d in data.get("docs", [])],
                         before=_scores(data.get("before")), after=_scores(data.get("after")),
                         when=str(data.get("when", "")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring %s: %s", path, exc)
            return None
        return record


def _scores(value) -> dict[str, list[int]]:
    if not value:
        return {}
    return {row: [int(value[row][0]), int(value[row][1])] for row in ROWS if row in value}


def score_text(score: Optional[Sequence[int]]) -> str:
    return "—" if not score else f"{score[0]}/{score[1]}"


class QuizProcess(QObject):
    """One `chatapp quiz --json --progress` child. `ended` comes once: (job, summary dict or None,
    error text ("" on success or when cancelled))."""

    progress = Signal(object, int, int)  # job, answered, total
    ended = Signal(object, object, str)

    def __init__(self, job: QuizJob, command: Sequence[str], parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.job = job
        self.command = list(command)
        self.summary: Optional[dict] = None
        self.cancelled = False
        self._buffer = b""
        self._stderr: list[str] = []
        self._done = False
        self.process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)

    def start(self) -> None:
        log.info("starting quiz: %s", " ".join(self.command))
        self.process.start(self.command[0], self.command[1:])

    def is_running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def cancel(self) -> None:
        """The quiz keeps nothing worth saving: stop the child now."""
        if self.is_running():
            self.cancelled = True
            self.process.kill()

    @Slot()
    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._line(line)

    @Slot()
    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", errors="replace")
        self._stderr = (self._stderr + [ln for ln in text.splitlines() if ln.strip()])[-STDERR_KEPT:]

    def _line(self, raw: bytes) -> None:
        try:
            data = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if data.get("kind") == "quiz_item":
            self.progress.emit(self.job, int(data.get("done", 0)), int(data.get("total", 0)))
        elif "score" in data and "total" in data:
            self.summary = data

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._buffer:
            self._line(self._buffer)
            self._buffer = b""
        if self.cancelled:
            self._finish(None, "")
        elif exit_status == QProcess.NormalExit and exit_code == 0 and self.summary is not None:
            self._finish(self.summary, "")
        else:
            tail = " | ".join(self._stderr[-3:]) or _tr("no output")
            self._finish(None, _tr("the quiz exited with code {code}: {tail}").format(code=exit_code, tail=tail))

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.FailedToStart:
            self._finish(None, _tr("the quiz could not start: {error}").format(error=self.process.errorString()))

    def _finish(self, summary: Optional[dict], error: str) -> None:
        if not self._done:
            self._done = True
            self.ended.emit(self.job, summary, error)


class QuizRunner(QObject):
    """Runs quiz jobs one after another. `row_done(job, summary)` per row; `finished(status, error)`
    once, status "completed", "cancelled" or "failed" (the first failure stops the rest)."""

    progress = Signal(object, int, int)
    row_done = Signal(object, object)
    finished = Signal(str, str)

    def __init__(self, jobs: Sequence[QuizJob], builder: QuizCommandBuilder, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.jobs = list(jobs)
        self.builder = builder
        self.current: Optional[QuizProcess] = None
        self.cancelled = False

    def start(self) -> None:
        self._next()

    def _next(self) -> None:
        if self.cancelled:
            self.finished.emit("cancelled", "")
            return
        if not self.jobs:
            self.finished.emit("completed", "")
            return
        job = self.jobs.pop(0)
        try:
            command = self.builder(job)
        except (ValueError, OSError) as exc:
            self.finished.emit("failed", str(exc))
            return
        self.current = QuizProcess(job, command, self)
        self.current.progress.connect(self.progress)
        self.current.ended.connect(self._on_ended)
        self.current.start()

    @Slot(object, object, str)
    def _on_ended(self, job: QuizJob, summary: Optional[dict], error: str) -> None:
        process, self.current = self.current, None
        if process is not None:
            process.deleteLater()
        if summary is not None:
            self.row_done.emit(job, summary)
        if error:
            self.finished.emit("failed", error)
            return
        self._next()

    def cancel(self) -> None:
        self.cancelled = True
        if self.current is not None:
            self.current.cancel()

    def is_running(self) -> bool:
        return self.current is not None

    def kill(self, timeout_s: float = 2.0) -> None:
        """For the window's close: stop the child and wait for it a bounded time."""
        self.cancelled = True
        if self.current is not None and self.current.is_running():
            self.current.process.kill()
            self.current.process.waitForFinished(int(timeout_s * 1000))
