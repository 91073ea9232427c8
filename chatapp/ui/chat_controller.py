"""The chat's state machine: conversations, sending, streaming, stop, regenerate, continue, edit.

Regenerate and edit-and-resend keep every version: the new reply or message is a sibling of the
old one in the conversation's message tree (storage/tree.py), the view shows `< 2/3 >` on a
message with versions, and the model's context is always the path shown.

Lives in the GUI thread. It asks the generation worker for replies by queued signals,
coalesces the deltas with a timer, writes replies to the database as they stream, and shows
them through a `ChatViewPort`, a small interface that `ChatView` implements and tests
replace with a plain recorder, so the whole machine runs without widgets. The window follows
its signals (state, status messages, context and speed) and keeps only layout and menus.

Long because the chat's states (streaming, stop, continue, edit with undo, delete with undo)
are one machine, and its transitions are easiest to check side by side.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Sequence

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal, Slot

from ..engine.backend import CONTINUABLE_REASONS, DocumentsChoice, ReplyFinished, ReplyRequest
from ..sampling_settings import merged_with_recommended
from ..storage.attachments import Attachment
from ..storage.db import AT_END, INTERRUPTED, ConversationStore, Message, NotFoundError
from ..storage.settings import AppSettings
from .model_controller import ModelController
from .worker import WorkerThread

log = logging.getLogger(__name__)

FLUSH_INTERVAL_MS = 33  # ~30 Hz: smooth to the eye, cheap for the GUI thread
SAVE_INTERVAL_S = 1.0  # how often a streaming reply is written to the database
CONTEXT_INTERVAL_S = 0.5  # how often the context counter follows a streaming reply (a status bar relayout)
# A reply that ended for one of these reasons stopped before its end, and can be continued
# (a stream the app did not see to its end, too).
CONTINUABLE = CONTINUABLE_REASONS + (INTERRUPTED,)
# Alternatives recorded per token for the token view (the engine's cost: benchmarks/logprobs_cost.py).
TOKEN_ALTERNATIVES = 5


def _tr(text: str) -> str:
    return QCoreApplication.translate("ChatController", text)


class ChatViewPort(Protocol):
    """What the chat controller needs of a conversation view; messages are addressed by index."""

    def clear(self) -> None: ...

    def append(self, role: str, text: str) -> int:
        """Add a message at the end; returns its index."""

    def truncate(self, count: int) -> None:
        """Remove the messages from index `count` on; those before it stay as they are."""

    def show_text(self, index: int, text: str) -> None:
        """Replace a message's text (while it streams); follows the bottom if the view was there."""

    def show_status(self, index: int, text: str) -> None: ...

    def allow_continue(self, index: int, allowed: bool) -> None: ...

    def update_actions(self, idle: bool) -> None:
        """Offer regenerate / continue / edit only while no reply streams and a model is ready."""

    def show_sources(self, index: int, sources: list, query: str) -> None:
        """The numbered passages a reply was given (objects with number, path, heading, start,
        end, text); `query` is the question, whose words a passage opened from here highlights."""

    def show_prompt(self, index: int, prompt: str) -> None:
        """Offer "What the model saw" on a reply: `prompt` exactly as the model read it."""

    def show_branches(self, index: int, number: int, total: int) -> None:
        """Message `index` is version `number` (from 1) of `total`: `< number/total >` when total > 1."""

    def show_tokens(self, index: int, tokens: list) -> None:
        """A reply's tokens with their probabilities (engine.backend.logprob_entry dicts), for the
        token view; called again as more arrive while it streams."""


def reply_note(state: str, finish_reason: str, stats: dict) -> str:
    """A finished reply's status line: how it ended, its length and speed (also after reopening)."""
    parts = []
    if state == "cancelled":
        parts.append(_tr("stopped"))
    elif state == "failed":
        parts.append(_tr("failed"))
    elif finish_reason == "length":
        parts.append(_tr("cut at the token limit"))
    if stats.get("new_tokens"):
        parts.append(_tr("{n} tokens · {speed:.1f} tok/s").format(n=stats["new_tokens"],
                                                                   speed=stats.get("decode_tok_s", 0.0)))
    if stats.get("left_out"):
        parts.append(_tr("{n} passages left out (context full)").format(n=stats["left_out"]))
    return " · ".join(parts)


@dataclass
class _Stream:
    """The reply in progress."""

    request_id: int
    conv_id: int
    message_id: int
    prefix: str = ""  # a continued reply's text before this stream
    text: str = ""
    index: Optional[int] = None  # its place in the view, None while another conversation is shown
    dirty: bool = False
    last_save: float = 0.0
    context_used: int = 0
    last_context: float = 0.0  # when the counter was last shown
    question: str = ""  # the user message it answers
    tokens: list = None  # the reply's tokens with their probabilities (a continued reply's earlier ones first)
    tokens_dirty: bool = False
    earlier_tokens: int = 0  # how many of `tokens` a continued reply had before this stream


@dataclass(frozen=True)
class _EditUndo:
    """An edit-and-resend to take back: the new version goes, the edited one is shown again."""

    conv_id: int
    original_id: int  # the message that was edited (kept, with everything after it)
    new_id: int  # its new version, with the reply to it


class ChatController(QObject):
    request_generate = Signal(object)  # ReplyRequest (to the worker)

    state_changed = Signal()  # streaming started or ended, or the conversation changed
    conversations_changed = Signal()  # the list of conversations (titles, order) changed
    conversation_opened = Signal(object)  # the open conversation's id, None for none
    status_message = Signal(str, int)  # text, milliseconds
    context_changed = Signal(int)  # context positions the open conversation uses
    speed_changed = Signal(float)  # tok/s of the last reply
    undo_available = Signal(str)  # "delete", "edit", or "" when nothing can be undone
    library_changed = Signal(str)  # the open conversation's document library, "" for none

    def __init__(self, store: ConversationStore, settings: AppSettings, worker_thread: WorkerThread,
                 model: ModelController, view: ChatViewPort, parent: QObject | None = None,
                 library_db: Optional[Path] = None) -> None:
        super().__init__(parent)
        self.store = store
        # the Documents tab's libraries: beside the conversations file unless told otherwise
        self.library_db = Path(library_db) if library_db else Path(store.path).parent / "library.sqlite3"
        self.pending_library = ""  # chosen while no conversation is open: the next one gets it
        self.settings = settings
        self.worker_thread = worker_thread
        self.model = model
        self.view = view
        self.current_id: Optional[int] = None
        # (message id, text) of each message in the view, in order: a change of the message tree
        # (regenerate, edit, `< >`) replaces only the messages after the first that differs
        self._shown: list[tuple[int, str]] = []
        self.stream: Optional[_Stream] = None
        self.deleted_id: Optional[int] = None
        self.edit_undo: Optional[_EditUndo] = None
        self.paused = False  # the worker serves someone else (a comparison): no replies meanwhile
        self._context = 0  # context positions the open conversation uses
        self.flush_timer = QTimer(self, interval=FLUSH_INTERVAL_MS)
        self.flush_timer.timeout.connect(self._flush)
        worker = worker_thread.worker
        self.request_generate.connect(worker.generate)
        worker.delta.connect(self._on_delta)
        worker.token_logprobs.connect(self._on_token_logprobs)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        model.busy = lambda: self.streaming

    # -- state ----------------------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        return self.stream is not None

    @property
    def stream_text(self) -> str:
        return self.stream.text if self.stream else ""

    def can_chat(self) -> bool:
        return not self.streaming and not self.paused and self.model.ready

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._update()

    def context_used(self) -> int:
        return self._context

    def _set_context(self, used: int) -> None:
        self._context = used
        self.context_changed.emit(used)

    def sampling(self) -> dict:
        """The reply's sampling: the user's settings, with the loaded model's recommended value
        in each field the user left at the app default (sampling_settings.merged_with_recommended)."""
        s = self.settings
        chosen = dict(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, min_p=s.min_p,
                      repetition_penalty=s.repetition_penalty, max_new_tokens=s.max_new_tokens,
                      seed=None if s.seed < 0 else s.seed)
        info = self.model.info
        return merged_with_recommended(chosen, info.sampling_defaults if info else {})

    def enable_thinking(self) -> Optional[bool]:
        """The thinking setting for a model whose template has the switch (Qwen3); None otherwise."""
        info = self.model.info
        return bool(self.settings.enable_thinking) if info is not None and info.thinking_switch else None

    def system_prompt(self) -> str:
        """The open conversation's own system prompt (new chats start with the settings' one)."""
        if self.current_id is None:
            return self.settings.system_prompt
        return self.store.get_conversation(self.current_id).system_prompt

    def set_system_prompt(self, text: str) -> None:
        """The prompt edited by the user: the open conversation's, and the one new chats start with."""
        self.settings.system_prompt = text
        if self.current_id is not None:
            self.store.set_system_prompt(self.current_id, text)

    def _update(self) -> None:
        self.view.update_actions(self.can_chat())
        self.state_changed.emit()

    # -- documents --------------------------------------------------------------------------
    def library(self) -> str:
        """The document library replies in the open conversation retrieve from ("" for none)."""
        if self.current_id is None:
            return self.pending_library
        return self.store.get_conversation(self.current_id).library

    @Slot(str)
    def set_library(self, name: str) -> None:
        """Chosen by the user: kept with the open conversation (or the next new one)."""
        if self.current_id is None:
            self.pending_library = name
        else:
            self.store.set_library(self.current_id, name)
        self.library_changed.emit(name)

    def libraries(self) -> list[str]:
        """The names of the document libraries (a few small queries; no file, no libraries)."""
        if not self.library_db.exists():
            return []
        from ..documents.library import LibraryStore

        try:
            with LibraryStore(self.library_db) as libraries:
                return libraries.names()
        except Exception as exc:  # the chat still works without documents; say why they are missing
            log.warning("could not read the document libraries in %s: %s", self.library_db, exc)
            self.status_message.emit(_tr("Could not read the document libraries: {message}").format(
                message=exc), 10000)
            return []

    # -- conversations --------------------------------------------------------------------
    def _show(self, conv_id: Optional[int]) -> None:
        """Make `conv_id` (None: none) current with an empty view."""
        self.current_id = conv_id
        self.view.clear()
        self._shown = []
        if self.stream is not None:
            self.stream.index = None
        self.conversation_opened.emit(conv_id)
        self.library_changed.emit(self.library())
        self._set_context(0)
        self.conversations_changed.emit()
        self._update()

    @Slot(int)
    def open(self, conv_id: int) -> None:
        """Show conversation `conv_id` from scratch (every message widget made anew)."""
        self._show(conv_id)
        self._render(conv_id)

    def _refresh(self, conv_id: int) -> None:
        """The open conversation's message tree changed (a new version, another version shown, one
        deleted): only the messages from the first that differs from the view on are replaced."""
        if conv_id != self.current_id:
            self.open(conv_id)
        else:
            self._render(conv_id)

    def _append(self, message_id: int, role: str, text: str) -> int:
        index = self.view.append(role, text)
        self._shown.append((message_id, text))
        return index

    def _render(self, conv_id: int) -> None:
        """Bring the view to the conversation's active path. The messages already shown in the
        same order with the same text keep their widgets (their `< n/m >` is updated); the view
        is cut at the first that differs and the rest of the path appended."""
        messages = self.store.messages(conv_id)
        stream_id = self.stream.message_id if self.stream is not None else None
        keep = 0
        for (shown_id, shown_text), m in zip(self._shown, messages):
            # the reply streaming is shown ahead of what was saved of it
            if shown_id != m.id or (shown_text != m.content and m.id != stream_id):
                break
            keep += 1
        if keep < len(self._shown):
            self.view.truncate(keep)
            del self._shown[keep:]
        if self.stream is not None:
            self.stream.index = None
        context = 0
        question = ""  # the user message a reply answers: its words are highlighted in a source
        versions = self.store.branch_numbers(conv_id)
        images = self.store.conversation_attachments(conv_id)
        for position, m in enumerate(messages):
            shown = position < keep
            if m.id == stream_id:
                self.stream.index = position if shown else self._append(m.id, "assistant", self.stream.text)
                if not shown:
                    self.view.show_status(self.stream.index, _tr("writing…"))
                    self.view.show_tokens(self.stream.index, self.stream.tokens or [])
                self.view.show_branches(self.stream.index, *versions.get(m.id, (1, 1)))
                context = self.stream.context_used
                continue
            if m.role == "user":
                question = m.content
            elif m.role == "assistant":
                context = m.stats.get("context_used", context)
            if shown:
                self.view.show_branches(position, *versions.get(m.id, (1, 1)))
                continue
            index = self._append(m.id, m.role, m.content)
            self._show_images(index, images.get(m.id, []))
            self.view.show_branches(index, *versions.get(m.id, (1, 1)))
            if m.role == "assistant":
                self.view.allow_continue(index, bool(m.content) and m.finish_reason in CONTINUABLE)
                self.view.show_status(index, reply_note(m.state, m.finish_reason, m.stats))
                self._show_details(index, m.id, m.stats, question)
                if m.stats.get("tokens"):
                    self.view.show_tokens(index, m.stats["tokens"])
        self._set_context(context)
        self._update()

    def _show_details(self, index: int, message_id: int, stats: dict, question: str) -> None:
        sources = self.store.sources(message_id)
        if sources:
            self.view.show_sources(index, sources, question)
        if stats.get("prompt"):
            self.view.show_prompt(index, stats["prompt"])

    def _create_conversation(self, title: str) -> int:
        """A new conversation with the settings' system prompt and the library chosen meanwhile."""
        conv = self.store.create_conversation(title, system_prompt=self.settings.system_prompt)
        if self.pending_library:
            self.store.set_library(conv.id, self.pending_library)
        return conv.id

    @Slot()
    def new_conversation(self) -> None:
        self.pending_library = self.library()  # a new chat keeps the documents of the one open
        self._show(self._create_conversation(_tr("New chat")))

    @Slot(int, str)
    def rename(self, conv_id: int, title: str) -> None:
        if title:
            self.store.rename(conv_id, title)
        self.conversations_changed.emit()

    @Slot(int)
    def delete(self, conv_id: int) -> None:
        if self.stream is not None and conv_id == self.stream.conv_id:
            self.stop()
        self.store.delete_conversation(conv_id)
        self.deleted_id = conv_id
        self.edit_undo = None
        if conv_id == self.current_id:
            self._show(None)
        self.conversations_changed.emit()
        self.undo_available.emit("delete")
        self.status_message.emit(_tr("Conversation deleted."), 15000)

    @Slot()
    def undo_delete(self) -> None:
        if self.deleted_id is None:
            return
        self.store.restore(self.deleted_id)
        conv_id, self.deleted_id = self.deleted_id, None
        self.undo_available.emit("")
        self.status_message.emit("", 0)
        self.open(conv_id)

    def export_to(self, conv_id: int, fmt: str, path: Path) -> None:
        """Write `conv_id` as "markdown" or "json" to `path`; raises StorageError."""
        from ..storage.export import export_json, export_markdown
        (export_markdown if fmt == "markdown" else export_json)(self.store, conv_id, path)
        self.status_message.emit(_tr("Exported to {path}").format(path=path), 5000)

    def import_from(self, path: Path) -> int:
        """A new conversation from a JSON export, titled as imported, and opened; raises StorageError."""
        from ..storage.export import import_json
        conv = import_json(self.store, path)
        title = _tr("{title} (imported)").format(title=conv.title)
        self.store.rename(conv.id, title)
        self.open(conv.id)
        self.status_message.emit(_tr("Imported “{title}” from {path}").format(title=title, path=path), 8000)
        return conv.id

    # -- chatting -------------------------------------------------------------------------
    def _history(self, conv_id: int) -> list[dict]:
        images = self.store.conversation_attachments(conv_id)  # a user message's images go with it
        return [{"role": m.role, "content": m.content, **({"images": images[m.id]} if m.id in images else {})}
                for m in self.store.messages(conv_id) if m.role in ("user", "assistant") and m.state != "failed"]

    def _show_images(self, index: int, images: list) -> None:
        if images:
            self.view.show_images(index, images)

    def send(self, text: str, images: Sequence = ()) -> bool:
        """Send `text` with `images` (objects with data and name: ui.images.ReadyImage) in the open
        conversation (a new one if none); False if it was not sent (nothing is lost: the caller
        keeps the text and the images)."""
        text = text.strip()
        if (not text and not images) or self.streaming:
            return False
        info = self.model.info
        if images and not (info and getattr(info, "vision", False)):
            self.status_message.emit(_tr("This model cannot see images ({model}); your message is kept.").format(
                model=info.name if info else ""), 8000)
            return False
        if self.paused:
            self.status_message.emit(_tr("Wait for the comparison to finish; your message is kept."), 5000)
            return False
        if not self.model.ready:
            self.status_message.emit(_tr("The model is not loaded yet; your message is kept."), 5000)
            return False
        title = text[:48] or _tr("Image")
        if self.current_id is None:
            self._show(self._create_conversation(title))
        elif not self.store.messages(self.current_id):
            self.store.rename(self.current_id, title)
        attached = [Attachment(bytes(image.data), image.name) for image in images]
        message = self.store.add_message(self.current_id, "user", text, images=attached)
        self._show_images(self._append(message.id, "user", message.content), attached)
        self._start_reply()
        return True

    def _start_reply(self, continued: Optional[Message] = None, parent_id=AT_END, forced: tuple = ()) -> None:
        """Stream a new reply, or with `continued` (the last stored reply) more of that one.
        `parent_id`: the reply is a new version of the replies to that message (regenerate);
        `forced`: its first token ids, as given (continue from an alternative)."""
        conv_id = self.current_id
        history = self._history(conv_id)
        if parent_id is not AT_END:  # the context is the path up to the message it answers
            path = [m.id for m in self.store.messages(conv_id) if m.role in ("user", "assistant")
                    and m.state != "failed"]
            history = history[:path.index(parent_id) + 1] if parent_id in path else []
        sampling = self.sampling()
        system_prompt = self.system_prompt()
        request_id = self.worker_thread.next_request_id()
        if continued is not None:
            stream = _Stream(request_id, conv_id, continued.id, prefix=continued.content, text=continued.content,
                             tokens=list(continued.stats.get("tokens", [])))
            stream.earlier_tokens = len(stream.tokens)
            stream.index = len(self.store.messages(conv_id)) - 1
            self.view.allow_continue(stream.index, False)
        else:
            model = self.model.info.name if self.model.info else ""
            # the system prompt is kept with the sampling settings: exports say what was used
            message_id = self.store.begin_reply(conv_id, model=model, parent_id=parent_id,
                                                settings=dict(sampling, system_prompt=system_prompt))
            stream = _Stream(request_id, conv_id, message_id, tokens=[])
            if parent_id is AT_END:
                stream.index = self._append(message_id, "assistant", "")
        self.stream = stream
        if stream.index is None:  # a new version: shown in place of the old one (and after), numbered
            self._render(conv_id)
        self.view.show_status(stream.index, _tr("writing…"))
        stream.last_save = time.monotonic()
        self.flush_timer.start()
        self._update()
        self.conversations_changed.emit()
        library = self.library() if continued is None else ""  # a continuation keeps its passages
        documents = DocumentsChoice(str(self.library_db), library) if library else None
        stream.question = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        self.request_generate.emit(ReplyRequest(request_id, history, system_prompt, sampling,
                                                continue_last=continued is not None, documents=documents,
                                                enable_thinking=self.enable_thinking(),
                                                logprobs=TOKEN_ALTERNATIVES, forced=tuple(forced)))

    @Slot()
    def stop(self) -> None:
        if self.streaming:
            self.worker_thread.stop_reply()

    def _last_messages(self) -> list[Message]:
        if not self.can_chat() or self.current_id is None:
            return []
        return self.store.messages(self.current_id)

    @Slot()
    def regenerate(self) -> None:
        """A new version of the last reply, beside the old one (`< 2/2 >`)."""
        messages = self._last_messages()
        if not messages or messages[-1].role != "assistant":
            return
        self._start_reply(parent_id=messages[-1].parent_id)

    @Slot()
    def continue_reply(self) -> None:
        """Write on from where the last reply stopped (the token limit, or Stop)."""
        messages = self._last_messages()
        if not messages or messages[-1].role != "assistant" or not messages[-1].content:
            return
        if messages[-1].finish_reason not in CONTINUABLE:
            return
        self._start_reply(continued=messages[-1])

    @Slot(int, str, object)
    def edit_and_resend_with_images(self, index: int, text: str, images: list) -> None:
        """edit_and_resend with `images` (objects with data and name) instead of the message's own:
        the user removed some or added others while editing."""
        self.edit_and_resend(index, text, images)

    @Slot(int, str)
    def edit_and_resend(self, index: int, text: str, images: Optional[Sequence] = None) -> None:
        """A new version of user message `index` with `text`, and a reply to it. The old version
        and everything after it stay in the tree (`<` on the message shows them; Undo too). Its
        images go with the new version, or `images` (objects with data and name) when given."""
        messages = self._last_messages()
        if not 0 <= index < len(messages) or messages[index].role != "user":
            return
        if images is None:
            images = self.store.attachments(messages[index].id)
        else:
            images = [Attachment(bytes(image.data), image.name) for image in images]
        if not text.strip() and not images:
            return
        info = self.model.info
        if images and not (info and getattr(info, "vision", False)):  # nothing is made: the old version stays
            self.status_message.emit(_tr("This model cannot see images ({model}); Edit again and remove the "
                                         "message's images, or load a vision model.").format(
                                             model=info.name if info else ""), 8000)
            return
        later_turns = sum(m.role == "user" for m in messages[index + 1:])
        new = self.store.add_message(self.current_id, "user", text, parent_id=messages[index].parent_id,
                                     images=images)
        self.edit_undo = _EditUndo(self.current_id, messages[index].id, new.id)
        self.deleted_id = None
        self._render(self.current_id)
        self._start_reply()
        self.undo_available.emit("edit")
        if later_turns:
            self.status_message.emit(
                _tr("The earlier version and its {n} later messages are kept: ‹ on the message shows them.").format(
                    n=len(messages) - index - 2), 15000)

    @Slot()
    def undo_edit(self) -> None:
        """Take back the last edit-and-resend: its new version goes, the edited message is shown again."""
        undo, self.edit_undo = self.edit_undo, None
        if undo is None:
            return
        if self.stream is not None and self.stream.conv_id == undo.conv_id:
            self.worker_thread.stop_reply()
            self._end_stream()  # what it wrote goes with the edit; its late signals are ignored
        try:
            self.store.delete_branch(undo.new_id)
            self.store.select_branch(undo.original_id)
        except NotFoundError:  # a version deleted by hand meanwhile
            log.info("undo edit: a version is gone already")
        self.undo_available.emit("")
        self.status_message.emit(_tr("The edit was undone."), 5000)
        self._refresh(undo.conv_id)

    @Slot(int, int, int)
    def continue_from_alternative(self, index: int, position: int, token_id: int) -> None:
        """A new version of reply `index`: its tokens before `position`, then `token_id` instead
        of the token the model chose there, and what the model writes after that."""
        messages = self._last_messages()
        if not 0 <= index < len(messages) or messages[index].role != "assistant":
            return
        tokens = messages[index].stats.get("tokens", [])
        if not 0 <= position < len(tokens):
            return
        forced = tuple(int(t["id"]) for t in tokens[:position]) + (int(token_id),)
        self._start_reply(parent_id=messages[index].parent_id, forced=forced)

    # -- versions (the message tree) ---------------------------------------------------------
    @Slot(int, int)
    def switch_branch(self, index: int, step: int) -> None:
        """Show the version `step` (-1 or +1) away from the one of message `index` (and what follows it)."""
        messages = self._last_messages()
        if not 0 <= index < len(messages):
            return
        versions = self.store.siblings(messages[index].id)
        at = next(i for i, m in enumerate(versions) if m.id == messages[index].id) + step
        if 0 <= at < len(versions):
            self.store.select_branch(versions[at].id)
            self._render(self.current_id)

    @Slot(int)
    def delete_branch(self, index: int) -> None:
        """Delete the version of message `index` shown, with what follows it; another version
        takes its place. The only version of a message is not deleted this way."""
        messages = self._last_messages()
        if not 0 <= index < len(messages) or len(self.store.siblings(messages[index].id)) < 2:
            return
        removed = self.store.delete_branch(messages[index].id)
        if self.edit_undo is not None:  # its versions may be gone
            self.edit_undo = None
            self.undo_available.emit("")
        self._render(self.current_id)
        text = _tr("Version deleted (1 message).") if removed == 1 else _tr("Version deleted ({n} messages).")
        self.status_message.emit(text.format(n=removed), 5000)

    # -- the stream -----------------------------------------------------------------------
    def _mine(self, request_id: int) -> bool:
        return self.stream is not None and request_id == self.stream.request_id

    @Slot(int, str, int)
    def _on_delta(self, request_id: int, text: str, context_used: int) -> None:
        if not self._mine(request_id):
            return
        self.stream.text += text
        self.stream.context_used = context_used
        self.stream.dirty = True

    @Slot(int, object)
    def _on_token_logprobs(self, request_id: int, entries: list) -> None:
        if not self._mine(request_id):
            return
        self.stream.tokens.extend(entries)
        self.stream.tokens_dirty = True

    def _flush(self) -> None:
        """Timer tick: show what arrived since the last tick; save to the database now and then."""
        stream = self.stream
        if stream is not None and stream.tokens_dirty and stream.index is not None \
                and self.current_id == stream.conv_id:
            stream.tokens_dirty = False
            self.view.show_tokens(stream.index, stream.tokens)
        if stream is None or not stream.dirty:
            return
        stream.dirty = False
        now = time.monotonic()
        if stream.index is not None and self.current_id == stream.conv_id:
            self.view.show_text(stream.index, stream.text)
            if now - stream.last_context >= CONTEXT_INTERVAL_S:
                self._set_context(stream.context_used)
                stream.last_context = now
        if now - stream.last_save >= SAVE_INTERVAL_S:
            self.store.update_reply(stream.message_id, stream.text)
            stream.last_save = now

    def _end_stream(self) -> Optional[_Stream]:
        """The stream is over: show all of its text; returns it with its view index (None if not shown)."""
        self.flush_timer.stop()
        stream, self.stream = self.stream, None
        if stream is not None and (stream.index is None or self.current_id != stream.conv_id):
            stream.index = None
        if stream is not None and stream.index is not None:
            self.view.show_text(stream.index, stream.text)
            self._shown[stream.index] = (stream.message_id, stream.text)
        self._update()
        return stream

    @Slot(int, object)
    def _on_finished(self, request_id: int, result: ReplyFinished) -> None:
        if not self._mine(request_id):
            return
        self.stream.text = self.stream.prefix + result.text  # a continued reply keeps its start
        state = "cancelled" if result.finish_reason == "cancelled" else "complete"
        # the prompt is kept with the reply, so "What the model saw" works after reopening too
        stats = dict(result.stats, context_used=result.context_used)
        if result.prompt:
            stats["prompt"] = result.prompt
        if result.left_out:
            stats["left_out"] = result.left_out
        if result.logprobs:  # kept with the reply: the token view works after reopening too
            stats["tokens"] = self.stream.tokens[:self.stream.earlier_tokens] + list(result.logprobs)
        self.store.finish_reply(self.stream.message_id, self.stream.text, state=state,
                                finish_reason=result.finish_reason, stats=stats)
        if result.library:  # a reply with documents (a continuation keeps the sources it had)
            self.store.save_sources(self.stream.message_id, result.sources, library=result.library)
        stream = self._end_stream()
        if stream.index is not None:
            self.view.show_status(stream.index, reply_note(state, result.finish_reason, stats))
            self._show_details(stream.index, stream.message_id, stats, stream.question)
            self.view.show_tokens(stream.index, stats.get("tokens", stream.tokens or []))
            self.view.allow_continue(stream.index, bool(stream.text) and result.finish_reason in CONTINUABLE)
            self._update()
            self._set_context(result.context_used)
        self.speed_changed.emit(float(stats.get("decode_tok_s", 0.0)))
        if result.contained_markers:
            self.status_message.emit(
                _tr("Your messages contain chat-control markers (such as <|im_end|>); the model read them "
                    "as plain text, so they could not open or close a turn."), 10000)
        if result.folded_system:
            self.status_message.emit(
                _tr("This model's chat template has no system turn: the system prompt was put at the start "
                    "of the first message."), 10000)
        if result.dropped_messages:
            self.status_message.emit(
                _tr("{n} earlier messages did not fit the context and were left out of this reply.").format(
                    n=result.dropped_messages), 10000)
        self.conversations_changed.emit()

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        if not self._mine(request_id):
            return
        continued = bool(self.stream.prefix)
        # a continued reply keeps what it had, and can be continued again
        self.store.finish_reply(self.stream.message_id, self.stream.text,
                                state="cancelled" if continued else "failed",
                                finish_reason="cancelled" if continued else "error", stats={})
        stream = self._end_stream()
        if stream.index is not None:
            self.view.allow_continue(stream.index, continued)
            self.view.show_status(stream.index, _tr("failed: {message}").format(message=message))
            self._update()
        self.status_message.emit(_tr("The reply failed: {message}").format(message=message), 15000)

    def shutdown(self) -> None:
        """Stop any reply and keep what it wrote (the app is closing)."""
        if self.stream is not None:
            self.worker_thread.stop_reply()
            self.store.finish_reply(self.stream.message_id, self.stream.text, state="cancelled",
                                    finish_reason="cancelled", stats={})
            self.stream = None
        self.flush_timer.stop()
