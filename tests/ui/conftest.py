"""Window fixtures: a fake chat backend injected through MainWindow's constructor."""

from __future__ import annotations

import os
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from chatapp.engine.backend import ModelInfo  # noqa: E402
from chatapp.engine.generate import GenerationStats, Reply  # noqa: E402


class FakeBackend:
    """Streams a scripted reply word by word from the worker thread; no model, no torch.

    The reply names the last user message and counts replies, so a regenerated reply
    differs. `delay` is seconds per word; `words` how many words a reply has.
    """

    def __init__(self, words: int = 6, delay: float = 0.01) -> None:
        self.words = words
        self.delay = delay
        self.calls: list[dict] = []
        self.loads: list[str] = []
        self.reply = None
        self.dropped_messages = 0
        self.loaded_name = None
        self.adapter = ""
        self.adapter_enabled = True
        self.thread_names: set[str] = set()

    def load(self, spec, options, progress=None):
        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        self.loads.append(spec)
        if progress:
            progress("weights", 0.5)
        if spec == "broken":
            raise ValueError("broken: not a model file (a test stand-in)")
        time.sleep(0.02)
        self.loaded_name = f"Fake-{spec}"
        self.adapter = options.adapter or ""
        return ModelInfo(name=self.loaded_name, path=spec, kind="gguf", device="cpu", dtype="float32",
                         context_len=options.context_len, n_params=1_000_000, load_s=0.02, memory="1 MB",
                         adapter=self.adapter)

    @property
    def has_adapter(self) -> bool:
        return bool(self.adapter)

    def set_adapter_enabled(self, enabled: bool) -> None:
        if not self.adapter:
            raise RuntimeError("no LoRA adapter is loaded")
        self.adapter_enabled = enabled

    def stream(self, messages, system_prompt, settings, cancel=None):
        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        self.calls.append({"messages": [dict(m) for m in messages], "system": system_prompt,
                           "settings": settings})
        last_user = messages[-1]["content"]
        tag = " (tuned)" if self.adapter and self.adapter_enabled else ""
        pieces = [f"Reply{len(self.calls)}{tag}", " to", f" '{last_user}'"] + [f" w{i}" for i in range(self.words)]
        shown = []
        reason = "eos"
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(self.delay)
            shown.append(piece)
            yield piece
        stats = GenerationStats(prompt_tokens=10, new_tokens=len(shown), decode_tok_s=42.0)
        self.reply = Reply(text="".join(shown), token_ids=list(range(len(shown))), finish_reason=reason,
                           stats=stats)

    def context_used(self) -> int:
        return 10 + (self.reply.stats.new_tokens if self.reply else 0)


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def make_window(qtbot, tmp_path):
    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    from chatapp.ui.main_window import MainWindow

    made = []

    def make(backend, load=True):
        store = ConversationStore(tmp_path / "conversations.sqlite3")
        settings = SettingsStore(tmp_path / "settings.json")
        window = MainWindow(store, settings, backend, list_models=lambda: [("Default", "default")],
                            autoload=load, adapters_dir=tmp_path / "adapters")
        qtbot.addWidget(window)
        made.append(window)
        if load:
            qtbot.waitUntil(lambda: window.model_info is not None, timeout=5000)
        return window

    yield make
    for window in made:
        if window.worker_thread.thread.isRunning():
            window.close()
        window.store.close()
