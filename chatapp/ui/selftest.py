"""`chatapp self-test`: open the real window, load the default model, send one message and
wait for a streamed reply; the CLI prints the summary as one JSON line."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot

from .app import create_window


class Recorder(QObject):
    """Lives in the GUI thread, so the worker's signals reach it queued (see DESIGN.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[str] = []
        self.failure = ""

    @Slot(int, str, int)
    def on_delta(self, _request_id: int, text: str, _context_used: int) -> None:
        self.deltas.append(text)

    @Slot(str, str)
    def on_model_failed(self, _spec: str, message: str) -> None:
        self.failure = message


def run_self_test(timeout_s: float = 120.0, prompt: str = "Say hello in three words.") -> dict:
    """Open the window, load the default model, stream one reply; a summary with "ok".

    It runs in a throw-away profile, so the user's history and settings are not touched.
    """
    with tempfile.TemporaryDirectory(prefix="chatapp-self-test-") as profile:
        return _self_test(Path(profile), timeout_s, prompt)


def _self_test(profile: Path, timeout_s: float, prompt: str) -> dict:
    started = time.perf_counter()
    summary: dict = {"ok": False}
    app, window = create_window(autoload=False, profile_dir=profile)
    window.settings.model = "default"
    window.show()
    app.processEvents()
    summary["window_s"] = round(time.perf_counter() - started, 3)
    # Pygments finds its lexers by importing them by name: a bundle that lacks them shows no colours.
    from .highlight import lex
    if not lex("def f(): return 1  # one", "python"):
        return _finish(window, summary, "code blocks get no colours (Pygments' lexers are missing)")

    loop = QEventLoop()

    def wait_until(predicate, limit: float) -> bool:
        deadline = time.perf_counter() + limit
        while not predicate() and time.perf_counter() < deadline:
            QTimer.singleShot(50, loop.quit)
            loop.exec()
        return predicate()

    recorder = Recorder()
    worker = window.worker_thread.worker
    worker.model_failed.connect(recorder.on_model_failed)
    worker.delta.connect(recorder.on_delta)
    window.model.load("default")
    if not wait_until(lambda: window.model_info is not None or recorder.failure, timeout_s):
        return _finish(window, summary, "the default model did not load in time")
    if recorder.failure:
        return _finish(window, summary, f"model load failed: {recorder.failure}")
    summary["model"] = window.model_info.name
    summary["load_s"] = round(window.model_info.load_s, 3)
    window.new_conversation()
    window.settings.max_new_tokens = 16
    window.settings.temperature = 0.0
    window.composer.setPlainText(prompt)
    window.send()
    if not wait_until(lambda: not window.streaming, timeout_s):
        return _finish(window, summary, "no reply finished in time")
    messages = window.store.messages(window.current_id)
    reply = messages[-1].content if messages else ""
    summary.update(reply=reply, deltas=len(recorder.deltas),
                   total_s=round(time.perf_counter() - started, 3))
    if messages[-1].state == "failed" or len(recorder.deltas) < 2 or not reply.strip():
        return _finish(window, summary, f"the reply did not stream (state {messages[-1].state})")
    summary["ok"] = True
    return _finish(window, summary, None)


def _finish(window, summary: dict, problem: Optional[str]) -> dict:
    if problem:
        summary["error"] = problem
    window.close()
    window.store.close()
    return summary
