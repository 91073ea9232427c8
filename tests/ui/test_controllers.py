"""The chat and model controllers without a single widget: a recording view, the fake backend."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from fake_backend import FakeBackend


class RecordingView:
    """A ChatViewPort that keeps what it is told, as plain data."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.idle = None

    def clear(self) -> None:
        self.messages = []

    def append(self, role: str, text: str) -> int:
        self.messages.append({"role": role, "text": text, "status": "", "continue": False})
        return len(self.messages) - 1

    def truncate(self, count: int) -> None:
        del self.messages[count:]

    def show_images(self, index: int, images: list) -> None:
        self.messages[index]["images"] = list(images)

    def show_text(self, index: int, text: str) -> None:
        self.messages[index]["text"] = text

    def show_status(self, index: int, text: str) -> None:
        self.messages[index]["status"] = text

    def allow_continue(self, index: int, allowed: bool) -> None:
        self.messages[index]["continue"] = allowed

    def update_actions(self, idle: bool) -> None:
        self.idle = idle

    def show_sources(self, index: int, sources: list, query: str) -> None:
        self.messages[index]["sources"] = [(s.number, s.path, s.heading, s.text) for s in sources]
        self.messages[index]["query"] = query

    def show_prompt(self, index: int, prompt: str) -> None:
        self.messages[index]["prompt"] = prompt

    def show_branches(self, index: int, number: int, total: int) -> None:
        self.messages[index]["version"] = (number, total)

    def show_tokens(self, index: int, tokens: list) -> None:
        self.messages[index]["tokens"] = list(tokens)


@pytest.fixture
def controllers(qapp, tmp_path):
    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    from chatapp.ui.chat_controller import ChatController
    from chatapp.ui.model_controller import ModelController
    from chatapp.ui.worker import WorkerThread

    made = []

    def make(backend=None):
        backend = backend or FakeBackend()
        store = ConversationStore(tmp_path / "conversations.sqlite3")
        settings_store = SettingsStore(tmp_path / "settings.json")
        settings = settings_store.load()
        worker = WorkerThread(backend)
        model = ModelController(worker, settings, settings_store, display_name=lambda spec: f"Name of {spec}")
        view = RecordingView()
        chat = ChatController(store, settings, worker, model, view)
        made.append((worker, store))
        return chat, model, view, backend

    yield make
    for worker, store in made:
        worker.shutdown()
        store.close()


def _load(qtbot, model, spec="default", adapter=None):
    with qtbot.waitSignal(model.loaded, timeout=5000) as blocker:
        assert model.load(spec, adapter=adapter)
    return blocker.args[0]


def test_no_widget_is_made(qtbot, controllers):
    chat, model, view, _ = controllers()
    _load(qtbot, model)
    assert chat.send("hi")
    qtbot.waitUntil(lambda: not chat.streaming, timeout=10000)
    assert QApplication.topLevelWidgets() == []


def test_send_streams_saves_and_notes_the_stats(qtbot, controllers):
    from chatapp.engine.backend import ModelInfo

    chat, model, view, backend = controllers()
    info = _load(qtbot, model)
    assert isinstance(info, ModelInfo) and info.name == "Fake-default" and model.ready
    contexts = []
    chat.context_changed.connect(contexts.append)
    assert not chat.send("   ")  # nothing to send
    assert chat.send("hello")
    assert chat.streaming and view.messages[-1]["status"] == "writing…" and view.idle is False
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    expected = "Reply1 to 'hello' w0 w1 w2 w3 w4 w5"
    assert [(m["role"], m["text"]) for m in view.messages] == [("user", "hello"), ("assistant", expected)]
    assert view.messages[-1]["status"] == "9 tokens · 42.0 tok/s" and view.idle is True
    stored = chat.store.messages(chat.current_id)[-1]
    assert (stored.content, stored.state, stored.stats["context_used"]) == (expected, "complete", 19)
    assert contexts[-1] == 19 and any(0 < n < 19 for n in contexts)  # counted while streaming too
    assert stored.settings["system_prompt"] == chat.settings.system_prompt  # what the reply used


def test_the_conversation_keeps_its_own_system_prompt(qtbot, controllers):
    chat, model, view, backend = controllers()
    _load(qtbot, model)
    terse = chat.store.create_conversation("old", system_prompt="Be terse.")
    chat.new_conversation()
    chat.set_system_prompt("Answer in French.")
    chat.send("bonjour")
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    chat.open(terse.id)
    chat.send("hello")
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    assert [call["system"] for call in backend.calls] == ["Answer in French.", "Be terse."]
    chat.new_conversation()  # a new chat starts with the last prompt the user wrote
    assert chat.system_prompt() == "Answer in French."


def test_a_failed_comparison_id_is_never_a_chat_id(qtbot, controllers):
    chat, model, view, _ = controllers()
    _load(qtbot, model)
    chat.send("hello")
    request_id = chat.stream.request_id
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    assert chat.worker_thread.next_request_id() > request_id  # one sequence for every request
    chat.worker_thread.worker.compare_failed.emit(request_id, "a comparison broke")  # another signal
    chat.worker_thread.worker.failed.emit(request_id, "a late failure of a finished reply")
    qtbot.wait(50)
    assert chat.store.messages(chat.current_id)[-1].state == "complete"


def test_stop_regenerate_continue_and_reopen_keep_stats(qtbot, controllers):
    chat, model, view, backend = controllers(FakeBackend(words=200, delay=0.01))
    _load(qtbot, model)
    chat.send("long")
    qtbot.waitUntil(lambda: "w2" in chat.stream_text, timeout=5000)
    chat.stop()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    assert view.messages[-1]["status"].startswith("stopped · ") and view.messages[-1]["continue"]
    chat.continue_reply()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    assert backend.calls[-1]["continue_last"] and view.messages[-1]["text"].endswith(" and more")
    chat.settings.max_new_tokens = 3
    chat.regenerate()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    assert view.messages[-1]["status"] == "cut at the token limit · 3 tokens · 42.0 tok/s"
    chat.new_conversation()
    assert view.messages == []
    chat.open(chat.store.list_conversations()[-1].id)
    assert view.messages[-1]["status"] == "cut at the token limit · 3 tokens · 42.0 tok/s"
    assert view.messages[-1]["continue"]


def test_edit_and_resend_can_be_undone(qtbot, controllers):
    chat, model, view, backend = controllers()
    _load(qtbot, model)
    offers = []
    chat.undo_available.connect(offers.append)
    for text in ("first", "second", "third"):
        chat.send(text)
        qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    before = [(m.role, m.content, m.stats) for m in chat.store.messages(chat.current_id)]
    chat.edit_and_resend(0, "first, edited")
    assert offers[-1] == "edit"
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)
    assert [m.content[:13] for m in chat.store.messages(chat.current_id)] == ["first, edited", "Reply4 to 'fi"]
    chat.undo_edit()
    assert [(m.role, m.content, m.stats) for m in chat.store.messages(chat.current_id)] == before
    assert [m["text"] for m in view.messages][::2] == ["first", "second", "third"] and offers[-1] == ""


def test_undo_while_the_new_reply_streams(qtbot, controllers):
    chat, model, view, backend = controllers(FakeBackend(words=100, delay=0.01))
    _load(qtbot, model)
    chat.send("one")
    qtbot.waitUntil(lambda: not chat.streaming, timeout=10000)
    chat.edit_and_resend(0, "uno")
    qtbot.waitUntil(lambda: "w1" in chat.stream_text, timeout=5000)
    chat.undo_edit()
    assert not chat.streaming
    qtbot.wait(300)  # the stopped reply's late signals change nothing
    stored = chat.store.messages(chat.current_id)
    assert [m.content for m in stored][0] == "one" and stored[-1].content.endswith("w99")
    assert chat.send("next")  # and the chat goes on
    qtbot.waitUntil(lambda: not chat.streaming, timeout=10000)
    assert chat.store.messages(chat.current_id)[-1].state == "complete"


def test_model_controller_progress_cancel_estimate_and_busy(qtbot, controllers):
    from chatapp.engine.backend import ModelEstimate

    chat, model, view, backend = controllers()
    fractions, names = [], []
    model.progress.connect(lambda stage, fraction: fractions.append(fraction))
    model.loading.connect(lambda spec, name: names.append(name))
    _load(qtbot, model)
    with qtbot.waitSignal(model.estimated, timeout=5000) as blocker:
        model.estimate("huge")
    assert isinstance(blocker.args[1], ModelEstimate) and not blocker.args[1].fits
    with qtbot.waitSignal(model.load_cancelled, timeout=10000):
        model.load("slow")
        qtbot.waitUntil(lambda: len(fractions) > 60, timeout=10000)
        model.cancel()
    assert names == ["Name of default", "Name of slow"]
    slow = fractions[2:]  # the fake's "weights" stage, the one the loader measures
    assert slow == sorted(slow) and slow[0] == 0.0 and 0.1 < slow[-1] < 1.0
    assert model.info.path == "default" and model.ready
    chat.send("hi")
    messages = []
    model.status_message.connect(lambda text, ms: messages.append(text))
    assert not model.load("default")  # not while a reply streams
    assert messages == ["Stop the reply before switching models."]
    qtbot.waitUntil(lambda: not chat.streaming, timeout=15000)


def test_the_adapter_is_remembered_and_a_missing_one_is_said(qtbot, controllers, tmp_path):
    chat, model, view, backend = controllers()
    adapter = tmp_path / "adapters" / "notes-lora"
    adapter.mkdir(parents=True)
    info = _load(qtbot, model, adapter=str(adapter))
    assert info.adapter == str(adapter) and model.adapter == str(adapter)
    assert model.settings_store.load().adapter == str(adapter)
    _load(qtbot, model)  # the same model again keeps its adapter
    assert backend.adapter == str(adapter)
    _load(qtbot, model, "other")  # another base model does not wear an adapter trained for this one
    assert backend.adapter == "" and model.settings.adapter == ""
    _load(qtbot, model, "default", adapter=str(adapter))
    adapter.rmdir()
    messages = []
    model.status_message.connect(lambda text, ms: messages.append(text))
    with qtbot.waitSignal(model.loaded, timeout=5000):
        model.load_saved()
    assert backend.adapter == "" and "no longer there" in messages[0]


def test_fakes_and_the_real_backend_satisfy_the_protocol():
    import inspect

    from chatapp.engine.backend import Backend, ChatBackend

    assert isinstance(ChatBackend(), Backend) and isinstance(FakeBackend(), Backend)
    for name in ("load", "estimate", "set_adapter_enabled", "stream", "finished", "context_used",
                 "streamed_logprobs", "compare", "compared", "image_cost"):
        wanted = list(inspect.signature(getattr(Backend, name)).parameters)
        for backend in (ChatBackend, FakeBackend):
            assert list(inspect.signature(getattr(backend, name)).parameters) == wanted, (backend, name)


def _reply_sampling(qtbot, chat, backend, text="hi"):
    """The sampling settings the backend was asked to reply to `text` with."""
    before = len(backend.calls)
    assert chat.send(text)
    qtbot.waitUntil(lambda: not chat.streaming and len(backend.calls) > before, timeout=10000)
    return backend.calls[-1]["settings"].to_dict()  # the SamplingSettings the worker made


def test_a_reply_takes_the_models_recommendation_for_settings_left_at_the_default(qtbot, controllers):
    from chatapp.sampling_settings import default

    chat, model, view, backend = controllers(FakeBackend(recommended={"temperature": 0.2, "top_p": 0.9}))
    _load(qtbot, model)
    assert chat.settings.temperature == default("temperature")
    sampling = _reply_sampling(qtbot, chat, backend)
    assert sampling["temperature"] == 0.2 and sampling["top_p"] == 0.9
    assert sampling["top_k"] == default("top_k")  # not recommended: the app's default

    chat.settings.temperature = 0.9  # the user's own choice beats the model's
    sampling = _reply_sampling(qtbot, chat, backend, "again")
    assert sampling["temperature"] == 0.9 and sampling["top_p"] == 0.9


def test_a_model_without_a_recommendation_replies_with_the_defaults(qtbot, controllers):
    from chatapp.sampling_settings import default

    chat, model, view, backend = controllers()
    _load(qtbot, model)
    sampling = _reply_sampling(qtbot, chat, backend)
    assert {k: sampling[k] for k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")} == \
        {k: default(k) for k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")}
