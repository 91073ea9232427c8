"""Supervising `chatapp train ... --progress jsonl` as a child process.

The window never trains in its own process: an out-of-memory error, a crash or the OOM
killer takes the child down, never the window. `TrainingProcess` starts the child with
QProcess (asynchronous in the GUI thread, no extra thread), reads stdout as it arrives, turns
each JSON line into a signal, and keeps the tail of stderr for the failure reason. A run is
"completed" only when the child said so in its final "end" line AND exited normally with
code 0; anything else ends "failed" (or "cancelled" after cancel()).

`build_train_command(TrainOptions)` is the argv, testable without Qt.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication

log = logging.getLogger(__name__)

METHODS = ("lora", "full", "scratch")
CANCEL_GRACE_S = 20.0  # time for the child to write its checkpoint after SIGTERM
STDERR_LINES_KEPT = 200
TRAINING_NOTES = "chatapp_training.json"  # beside a full model `chatapp train` wrote (training/run.py)
OOM_MARKERS = ("out of memory", "outofmemoryerror", "memoryerror", "cannot allocate memory")


def _tr(text: str) -> str:
    return QGuiApplication.translate("TrainingProcess", text)


def self_command() -> list[str]:
    """argv prefix that starts this app again (a packaged binary has no Python to call)."""
    try:
        from ..frozen import self_command as frozen_self_command
    except ImportError:  # pragma: no cover - frozen.py is always there in a full checkout
        return [sys.executable, "-m", "chatapp"]
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


@dataclass
class TrainOptions:
    """One training run as the panel asks for it. Give `epochs` or `max_steps`, not both."""

    model: str
    data: list[Path]
    out_dir: Optional[Path] = None  # None: new_out_dir(name)
    name: str = "adapter"
    method: str = "lora"
    epochs: Optional[float] = None  # None with max_steps None: 1 epoch
    max_steps: Optional[int] = None
    lr: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    block_size: int = 256
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    eval_every: int = 50
    early_stop: int = 0  # evaluations without improvement before stopping (best weights kept); 0: off
    save_every: int = 100
    seed: int = 0
    resume_from: Optional[Path] = None  # a checkpoint folder of an earlier run into out_dir
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = [Path(p) for p in self.data]
        if self.max_steps is None and self.epochs is None:
            self.epochs = 1.0
        self.validate()
        if self.out_dir is None:
            self.out_dir = new_out_dir(self.name)
        self.out_dir = Path(self.out_dir)

    def validate(self) -> None:
        if not self.model:
            raise ValueError("no base model chosen")
        if not self.data:
            raise ValueError("no documents chosen")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError("give max_steps or epochs, not both")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps <= 0):
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        for name in ("batch_size", "grad_accum", "block_size", "lora_rank"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.lora_alpha > 0:
            raise ValueError(f"lora_alpha must be positive, got {self.lora_alpha!r}")
        if not self.lora_targets:
            raise ValueError("lora_targets is empty")
        for name in ("eval_every", "early_stop", "save_every", "seed"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


# (options, dry_run) -> argv; the panel takes one so tests can start a fake trainer
CommandBuilder = Callable[[TrainOptions, bool], list[str]]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def build_train_command(options: TrainOptions, dry_run: bool = False,
                        prefix: Optional[Sequence[str]] = None) -> list[str]:
    """`<self> train --model ... --progress jsonl` (see chatapp/commands/train.py)."""
    o = options
    argv = list(prefix if prefix is not None else self_command()) + ["train", "--model", o.model]
    # one --data with every path: the CLI's --data takes several (a repeated --data would keep only the last)
    argv += ["--data"] + [str(path) for path in o.data]
    argv += ["--out", str(o.out_dir), "--method", o.method]
    if o.max_steps is not None:
        argv += ["--max-steps", str(o.max_steps)]
    else:
        argv += ["--epochs", _number(o.epochs)]
    argv += ["--lr", repr(float(o.lr)), "--batch-size", str(o.batch_size), "--grad-accum", str(o.grad_accum),
             "--block-size", str(o.block_size)]
    if o.method == "lora":
        argv += ["--lora-rank", str(o.lora_rank), "--lora-alpha", _number(o.lora_alpha),
                 "--lora-targets", ",".join(o.lora_targets)]
    argv += ["--eval-every", str(o.eval_every), "--save-every", str(o.save_every), "--seed", str(o.seed)]
    if o.early_stop:
        argv += ["--early-stop", str(o.early_stop)]
    if o.resume_from is not None:
        argv += ["--resume", str(o.resume_from)]
    argv += list(o.extra_args) + ["--progress", "jsonl"]
    if dry_run:
        argv.append("--dry-run")
    return argv


# -- what runs leave behind -------------------------------------------------------------------
def find_checkpoint(out_dir: Path) -> tuple[Optional[str], int]:
    """Newest `step-*` checkpoint folder in out_dir (or out_dir/checkpoints): (path, step)."""
    found = []
    for folder in (out_dir, out_dir / "checkpoints"):
        if folder.is_dir():
            for child in folder.glob("step-*"):
                match = re.fullmatch(r"step-(\d+)", child.name)
                if match and child.is_dir():
                    found.append((int(match.group(1)), str(child)))
    if not found:
        return None, 0
    step, path = max(found)
    return path, step


def scan_adapters(root: Path) -> list[dict]:
    """Trained outputs under `root`, newest first: a LoRA adapter (adapter_config.json) or a full
    model (config.json + safetensors) in each folder or one level below it. Rows: name, path,
    kind ("adapter" | "model"), base_model, date (epoch s), val_ppl, val_ppl_before, error.
    Imports torch (through peft_adapter): call it off the GUI thread."""
    rows = []
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for candidate in [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and p.name[:5] != "step-"):
            row = _describe_output(folder.name, candidate)
            if row is not None:
                rows.append(row)
                break
    rows.sort(key=lambda r: r["date"], reverse=True)
    return rows


def _describe_output(name: str, folder: Path) -> Optional[dict]:
    row = {"name": name, "path": str(folder), "base_model": "", "val_ppl": None, "val_ppl_before": None,
           "error": ""}
    if (folder / "adapter_config.json").is_file():
        row.update(kind="adapter", date=(folder / "adapter_config.json").stat().st_mtime)
        try:
            from ..weights.peft_adapter import read_adapter_info
            info = read_adapter_info(folder)
        except Exception as exc:  # a damaged folder is listed with its problem, not hidden
            row["error"] = str(exc)
            return row
        row["base_model"] = info.base_model_name
        _read_metrics(row, info.metadata)
        return row
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        row.update(kind="model", date=(folder / "config.json").stat().st_mtime)
        try:
            notes = json.loads((folder / TRAINING_NOTES).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            notes = {}
        _read_metrics(row, notes if isinstance(notes, dict) else {})
        return row
    return None


def _read_metrics(row: dict, notes: dict) -> None:
    """Perplexity before/after from the notes `chatapp train` keeps with its output
    ("eval_before"/"eval_after": {"step", "val_loss", "val_ppl"}), or flat "val_ppl_*" keys."""
    def ppl(*keys: str) -> Optional[float]:
        for key in keys:
            value = notes.get(key)
            value = value.get("val_ppl") if isinstance(value, dict) else value
            if _finite(value):
                return float(value)
        return None

    row["val_ppl"] = ppl("eval_after", "val_ppl_after", "val_ppl")
    row["val_ppl_before"] = ppl("eval_before", "val_ppl_before")
    if notes.get("base_model") and not row["base_model"]:
        row["base_model"] = str(notes["base_model"])


def human_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def looks_like_oom(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in OOM_MARKERS)


class TrainingProcess(QObject):
    """One run of the trainer child; create a new one per run.

    Signals carry the event dicts as the child wrote them; `ended` comes exactly once, after
    the process is gone: (status, reason, info) with status "completed", "cancelled" or
    "failed", and info the child's "end" object (or {}) plus "exit_code" and "stderr_tail".
    """

    ingest = Signal(dict)
    dataset = Signal(dict)  # blocks and tokens for training and validation
    estimate = Signal(dict)
    evaluated = Signal(dict)
    stepped = Signal(dict)
    checkpointed = Signal(dict)
    output = Signal(str)  # a line the child wrote that is not an event (stderr, stray stdout)
    ended = Signal(str, str, dict)

    def __init__(self, command: Sequence[str], parent: Optional[QObject] = None,
                 grace_s: float = CANCEL_GRACE_S) -> None:
        super().__init__(parent)
        if not command:
            raise ValueError("empty command")
        self.command = list(command)
        self.grace_s = grace_s
        self.end_event: Optional[dict] = None
        self.last_checkpoint: Optional[dict] = None
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
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            self.output.emit(text)  # a stray print or a library's chatter: shown in the log only
            return
        kind = event["event"]
        if kind == "ingest":
            self.ingest.emit(event)
        elif kind == "dataset":
            self.dataset.emit(event)
        elif kind == "estimate":
            self.estimate.emit(event)
        elif kind == "eval":
            self.evaluated.emit(event)
        elif kind == "step":
            self.stepped.emit(event)
        elif kind == "checkpoint":
            self.last_checkpoint = event
            self.checkpointed.emit(event)
        elif kind == "end":
            self.end_event = event
        else:  # e.g. "saved": the end line repeats what matters
            log.debug("training event %r", kind)

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
        self._finish(*self._verdict(exit_code, crashed), exit_code=None if crashed else exit_code)

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
        end = self.end_event or {}
        status = end.get("status")
        if status == "cancelled":
            return "cancelled", str(end.get("reason") or "")
        if self.cancel_requested and status is None:
            if self.killed_after_grace:
                return "cancelled", _tr("the process did not stop in time and was killed; "
                                        "no checkpoint was written")
            return "cancelled", ""
        if status == "failed":
            told = str(end.get("reason") or "")
            return "failed", self._with_oom_hint(told or self._exit_description(exit_code, crashed), told)
        if status == "completed" and not crashed and exit_code == 0:
            return "completed", str(end.get("reason") or "")
        if status == "completed":
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

    def _finish(self, status: str, reason: str, exit_code: Optional[int]) -> None:
        if self._done:
            return
        self._done = True
        self.kill_timer.stop()
        info = dict(self.end_event or {})
        info.update(exit_code=exit_code, stderr_tail="\n".join(self.stderr_tail))
        if self.last_checkpoint and not info.get("checkpoint"):
            info["checkpoint"] = self.last_checkpoint.get("path")
            info["checkpoint_step"] = self.last_checkpoint.get("step")
        log.info("training ended: %s %s", status, reason)
        self.ended.emit(status, reason, info)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

