"""Supervising `chatapp train ... --progress jsonl` as a child process.

The window never trains in its own process: an out-of-memory error, a crash or the OOM
killer takes the child down, never the window. `TrainingProcess` starts the child with
QProcess (asynchronous in the GUI thread, no extra thread), reads stdout as it arrives, turns
each JSON line into a typed event (training/protocol.py) and a signal, and keeps the tail of
stderr for the failure reason. A run is "completed" only when the child said so in its final
"end" line AND exited normally with code 0; anything else ends "failed" (or "cancelled" after
cancel()).

`build_train_command(TrainJob)` is the argv, testable without Qt.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication

from ..training.protocol import (CANCELLED, COMPLETED, FAILED, CheckpointEvent, DatasetEvent, EndEvent, ExamplesEvent,
                                 EstimateEvent, EvalEvent, IngestEvent, StepEvent, TrainJob, decode)

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 20.0  # time for the child to write its checkpoint after SIGTERM
STDERR_LINES_KEPT = 200
OOM_MARKERS = ("out of memory", "outofmemoryerror", "memoryerror", "cannot allocate memory")


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingProcess", text)


def self_command() -> list[str]:
    """argv prefix that starts this app again (a packaged binary has no Python to call)."""
    from ..frozen import self_command as frozen_self_command
    return list(frozen_self_command())


def slug(name: str) -> str:
    """A folder-safe form of a user's adapter name ("My notes!" -> "my-notes")."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-.")
    return text[:48] or "adapter"


def adapters_root() -> Path:
    from ..paths import user_data_dir
    return user_data_dir() / "adapters"


def new_out_dir(name: str, root: Optional[Path] = None, now: Optional[float] = None) -> Path:
    """`<root>/<name>-<YYYYmmdd-HHMMSS>`; root defaults to user_data_dir()/adapters."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(root if root is not None else adapters_root()) / f"{slug(name)}-{stamp}"


# (job, dry_run) -> argv; the panel takes one so tests can start a fake trainer
CommandBuilder = Callable[[TrainJob, bool], list[str]]


def build_train_command(job: TrainJob, dry_run: bool = False, prefix: Optional[Sequence[str]] = None) -> list[str]:
    """`<self> train <the job's options> --progress jsonl [--dry-run]` (see chatapp/commands/train.py)."""
    argv = list(prefix if prefix is not None else self_command()) + ["train"] + job.to_argv()
    return argv + ["--progress", "jsonl"] + (["--dry-run"] if dry_run else [])


def looks_like_oom(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in OOM_MARKERS)


@dataclass
class RunOutcome:
    """How a run ended, beyond its status and reason: what the child said last, and how it exited."""

    end: Optional[EndEvent]  # the child's "end" line, if it wrote one
    exit_code: Optional[int]  # None: crashed, killed or never started
    stderr_tail: str = ""
    checkpoint: Optional[str] = None  # the newest checkpoint the run announced
    checkpoint_step: int = 0
    # the child ended without its "end" line and without being asked to stop: killed (SIGKILL,
    # the OOM killer) or crashed. Its last checkpoint is whole (written atomically), so it resumes.
    unexpected: bool = False


class TrainingProcess(QObject):
    """One run of the trainer child; create a new one per run.

    Signals carry the typed events the child wrote (training/protocol.py); `ended` comes
    exactly once, after the process is gone: (status, reason, RunOutcome) with status
    "completed", "cancelled" or "failed".
    """

    ingest = Signal(object)  # IngestEvent
    dataset = Signal(object)  # DatasetEvent: blocks and tokens for training and validation
    examples = Signal(object)  # ExamplesEvent: the knowledge recipe writing its questions and answers
    estimate = Signal(object)  # EstimateEvent
    evaluated = Signal(object)  # EvalEvent
    stepped = Signal(object)  # StepEvent
    checkpointed = Signal(object)  # CheckpointEvent
    event = Signal(object)  # every event, the ones above and the rest ("saved", "end"), for the log
    output = Signal(str)  # a line the child wrote that is not an event (stderr, stray stdout)
    ended = Signal(str, str, object)  # status, reason, RunOutcome

    def __init__(self, command: Sequence[str], parent: Optional[QObject] = None,
                 grace_s: float = CANCEL_GRACE_S) -> None:
        super().__init__(parent)
        if not command:
            raise ValueError("empty command")
        self.command = list(command)
        self.grace_s = grace_s
        self.end_event: Optional[EndEvent] = None
        self.last_checkpoint: Optional[CheckpointEvent] = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self.cancel_requested = False
        self.killed_after_grace = False
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self._done = False
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.SeparateChannels)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # lines arrive as written, not in 8 kB lumps
        env.insert("PYTHONIOENCODING", "utf-8")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.kill_timer = QTimer(self, singleShot=True)
        self.kill_timer.timeout.connect(self._kill_after_grace)

    # -- control ----------------------------------------------------------------------------
    def start(self) -> None:
        log.info("starting training: %s", " ".join(self.command))
        self.process.start(self.command[0], self.command[1:])

    def is_running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def pid(self) -> int:
        return int(self.process.processId())

    @Slot()
    def cancel(self) -> None:
        """SIGTERM (the child checkpoints and ends "cancelled"); SIGKILL after the grace period."""
        if not self.is_running() or self.cancel_requested:
            return
        self.cancel_requested = True
        self.process.terminate()
        self.kill_timer.start(int(self.grace_s * 1000))

    def wait(self, timeout_s: float) -> bool:
        """Block until the child has exited (for shutdown only); True when it has."""
        if not self.is_running():
            return True
        return self.process.waitForFinished(int(timeout_s * 1000))

    @Slot()
    def _kill_after_grace(self) -> None:
        if self.is_running():
            log.warning("training did not stop %.0f s after SIGTERM; killing it", self.grace_s)
            self.killed_after_grace = True
            self.process.kill()

    # -- reading ----------------------------------------------------------------------------
    @Slot()
    def _read_stdout(self) -> None:
        self._stdout_buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for line in lines:
            self._handle_stdout_line(line)

    @Slot()
    def _read_stderr(self) -> None:
        self._stderr_buffer += bytes(self.process.readAllStandardError().data())
        *lines, self._stderr_buffer = self._stderr_buffer.split(b"\n")
        for line in lines:
            self._handle_stderr_line(line)

    def _handle_stdout_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        event = decode(text)
        if event is None:
            self.output.emit(text)  # a stray print or a library's chatter: shown in the log only
            return
        self.event.emit(event)
        if isinstance(event, CheckpointEvent):
            self.last_checkpoint = event
        if isinstance(event, EndEvent):
            self.end_event = event
            return
        signal = {IngestEvent: self.ingest, DatasetEvent: self.dataset, ExamplesEvent: self.examples,
                  EstimateEvent: self.estimate,
                  EvalEvent: self.evaluated, StepEvent: self.stepped, CheckpointEvent: self.checkpointed}.get(
                      type(event))
        if signal is not None:
            signal.emit(event)
        else:  # e.g. "saved": the end line repeats what matters
            log.debug("training event %r", event.KIND)

    def _handle_stderr_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip()
        if text.strip():
            self.stderr_tail.append(text)
            self.output.emit(text)

    # -- ending -----------------------------------------------------------------------------
    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._drain()
        crashed = exit_status == QProcess.CrashExit
        self._finish(*self._verdict(exit_code, crashed), exit_code=None if crashed else exit_code,
                     unexpected=self.end_event is None and not self.cancel_requested)

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        # A child that ran and crashed also reports Crashed here; finished() follows and decides.
        if error == QProcess.FailedToStart:
            self._finish("failed", _tr("the training process could not start: {error}").format(
                error=self.process.errorString()), exit_code=None)

    def _drain(self) -> None:
        self._read_stdout()
        self._read_stderr()
        for attr, handle in (("_stdout_buffer", self._handle_stdout_line),
                             ("_stderr_buffer", self._handle_stderr_line)):
            rest = getattr(self, attr)
            setattr(self, attr, b"")
            if rest:
                handle(rest)  # a last line without its newline

    def _verdict(self, exit_code: int, crashed: bool) -> tuple[str, str]:
        end = self.end_event
        status = end.status if end is not None else None
        told = (end.reason or "") if end is not None else ""
        if status == CANCELLED:
            return CANCELLED, told
        if self.cancel_requested and status is None:
            if self.killed_after_grace:
                return "cancelled", _tr("the process did not stop in time and was killed; "
                                        "no checkpoint was written")
            return "cancelled", ""
        if status == FAILED:
            return FAILED, self._with_oom_hint(told or self._exit_description(exit_code, crashed), told)
        if status == COMPLETED and not crashed and exit_code == 0:
            return COMPLETED, told
        if status == COMPLETED:
            what = self._exit_description(exit_code, crashed)
            return "failed", _tr("it reported completion but then {what}").format(what=what)
        return "failed", self._with_oom_hint(self._exit_description(exit_code, crashed))

    def _exit_description(self, exit_code: int, crashed: bool) -> str:
        if crashed:
            reason = _tr("the training process crashed or was killed "
                         "(the system may have run out of memory)")
        elif exit_code in (137, -9):
            reason = _tr("the training process was killed (exit code {code}), "
                         "most often by the system running out of memory").format(code=exit_code)
        elif exit_code == 0:
            reason = _tr("the training process exited without reporting an end")
        else:
            reason = _tr("the training process exited with code {code}").format(code=exit_code)
        tail = self.last_stderr_lines(3)
        if tail:
            reason += _tr("; last output: {lines}").format(lines=" | ".join(tail))
        return reason

    def _with_oom_hint(self, reason: str, told: str = "") -> str:
        """Say "out of memory" plainly when the child's own words (not ours) mention it."""
        if looks_like_oom(told) or looks_like_oom("\n".join(self.last_stderr_lines(5))):
            return _tr("out of memory. Try LoRA, a smaller batch size or a shorter block size. "
                       "Details: {reason}").format(reason=reason)
        return reason

    def last_stderr_lines(self, n: int) -> list[str]:
        return [line.strip() for line in list(self.stderr_tail)[-n:]]

    def _finish(self, status: str, reason: str, exit_code: Optional[int], unexpected: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self.kill_timer.stop()
        outcome = RunOutcome(self.end_event, exit_code, "\n".join(self.stderr_tail), unexpected=unexpected)
        end = self.end_event
        if end is not None and end.checkpoint:
            outcome.checkpoint, outcome.checkpoint_step = end.checkpoint, int(end.step or 0)
        elif self.last_checkpoint is not None:
            outcome.checkpoint, outcome.checkpoint_step = self.last_checkpoint.path, self.last_checkpoint.step
        log.info("training ended: %s %s", status, reason)
        self.ended.emit(status, reason, outcome)

