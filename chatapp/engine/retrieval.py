"""Chat with documents: the best passages of a library put into the user's turn, as text.

For a user turn: a query from the message and the recent turns; the library's best chunks
(documents.library); as many as fit the context (counted with the model's tokenizer, through
the chat session's own rendering) put between the question and its repetition (the sources,
numbered [1], [2], ..., go with the reply). Passages are message content: the chat template renders them like anything the user
typed, so a document cannot open a turn of its own. The result carries the sources (file,
heading, span) and the exact prompt the model saw.

    retriever = LibraryRetriever(store, "notes")
    stream = send_with_documents(session, "Who founded the guild?", settings, retriever)
    for delta in stream: ...
    stream.result.sources, stream.result.prompt, stream.result.left_out

No torch here: the session (engine/session.py) is used only through `render_ids`, `fit`,
`messages`, `send` and `engine.context_len` / `engine.tokenizer`.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence

from ..documents.library import LibraryStore, SearchHit, index_paths_into_temporary
from ..documents.search import reciprocal_rank_fusion

log = logging.getLogger(__name__)

RECENT_MESSAGES = 2  # earlier messages that join the query (a follow-up "and when?" needs them)
QUERY_CHARS = 2000
# Passages offered (of at most 300 characters each, documents.chunking): measured with the
# default 135M model on benchmarks/knowledge_docs, three short passages answered 7/10, one or
# two whole sections (1,000 characters) 4-5/10.
SEARCH_LIMIT = 3

# The instruction measured best with the default model; asking it to cite passages by number
# made it copy the numbers and labels instead of answering. Sources are shown with the reply.
INSTRUCTION = "Answer the question using the text below."
_HEADING_LINE = re.compile(r"^ {0,3}#{1,6}(?:[ \t].*)?$", re.M)


class Retriever(Protocol):
    def search(self, query: str, limit: int) -> list[SearchHit]: ...


@dataclass
class LibraryRetriever:
    """A library of a LibraryStore as a Retriever. `owned_folder`: a temporary folder the
    store lives in (for `--docs PATH`), removed by `close`."""

    store: LibraryStore
    name: str
    owned_folder: Optional[tempfile.TemporaryDirectory] = None

    def search(self, query: str, limit: int) -> list[SearchHit]:
        return self.store.search(self.name, query, limit=limit)

    def close(self) -> None:
        self.store.close()
        if self.owned_folder is not None:
            self.owned_folder.cleanup()


@dataclass(frozen=True)
class Source:
    number: int  # as shown with the reply: [number] (the prompt gives passages in this order)
    path: str
    heading: str
    start: int  # span in the file's cleaned text
    end: int
    text: str

    @property
    def label(self) -> str:
        return Path(self.path).name + (f" > {self.heading}" if self.heading else "")

    def to_dict(self) -> dict:
        return {"number": self.number, "path": self.path, "heading": self.heading, "start": self.start,
                "end": self.end, "text": self.text}


@dataclass
class RetrievalResult:
    query: str
    sources: list[Source] = field(default_factory=list)
    left_out: int = 0  # passages found but not put in the prompt: the context had no room
    prompt: str = ""  # exactly what the model saw, its template markers included
    prompt_tokens: int = 0

    @property
    def notice(self) -> str:
        """A sentence for the user when passages were left out, else ''."""
        if not self.left_out:
            return ""
        noun = "passage" if self.left_out == 1 else "passages"
        return (f"{self.left_out} matching {noun} did not fit the context and "
                f"{'was' if self.left_out == 1 else 'were'} left out")

    def to_dict(self) -> dict:
        return {"query": self.query, "sources": [s.to_dict() for s in self.sources],
                "left_out": self.left_out, "notice": self.notice, "prompt": self.prompt,
                "prompt_tokens": self.prompt_tokens}


def build_query(messages: Sequence[dict], recent: int = RECENT_MESSAGES, max_chars: int = QUERY_CHARS) -> str:
    """The last user message, then up to `recent` messages before it (newest first), cut to
    `max_chars`: the search ranks by all of it, the newest words first when it is cut."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise ValueError("retrieval needs a user message")
    last = users[-1]
    parts = [messages[last]["content"]]
    parts += [m["content"] for m in reversed(messages[max(0, last - recent):last])]
    return "\n".join(parts)[:max_chars]


def search_turn(retriever: Retriever, messages: Sequence[dict], limit: int) -> tuple[str, list[SearchHit]]:
    """(query, hits) for the conversation's last user turn: the message alone and the message
    with the recent turns (build_query) are searched apart and fused by reciprocal rank, ties
    going to the message's own ranking, so a follow-up ("and the dog?") finds its own subject
    while the recent turns still fill in what it leaves unsaid ("it", "they")."""
    query = build_query(messages)
    question = [m for m in messages if m["role"] == "user"][-1]["content"][:QUERY_CHARS]
    own = retriever.search(question, limit)
    if query == question:
        return query, own
    with_context = retriever.search(query, limit)
    by_id = {hit.chunk_id: hit for hit in with_context + own}
    fused = reciprocal_rank_fusion([[h.chunk_id for h in own], [h.chunk_id for h in with_context]])
    return query, [by_id[chunk_id] for chunk_id, _score in fused[:limit]]


def passage_text(text: str) -> str:
    """A passage as the prompt shows it: without Markdown heading lines (the default model
    answered with the heading it saw first, "# The founding of ..."), on one line (line breaks
    of hard-wrapped files made it stop or repeat a line), else as it is."""
    stripped = _HEADING_LINE.sub("", text).strip()
    return " ".join(stripped.split()) if stripped else text


def prompt_with_passages(question: str, passages: Sequence[str]) -> str:
    """The user's turn with these passage texts, as chat with documents asks (the knowledge
    recipe trains with the same wording: training/knowledge.py): the question, the instruction,
    the passages as plain paragraphs, the question again.

    Measured with the default 135M model (benchmarks/knowledge_docs + demo_docs, 10 + 10
    questions, greedy; README "Teaching the model your documents"): the question both before
    and after the passages 6 + 7, after them only 4 + 8; numbered passages each followed by its
    file's name 5 + 7, without the names 4 + 6 (the names go with the reply as sources); the
    passages in a system turn 5 + 5; a "Context: ... Answer:" layout 4 + 8."""
    if not passages:
        return question
    return (f"Question: {question}\n\n{INSTRUCTION}\n\n" + "\n\n".join(passages)
            + f"\n\nQuestion: {question}")


def with_passages(question: str, sources: Sequence[Source]) -> str:
    """The user's turn with the sources' passages (prompt_with_passages); their numbers and
    files are shown with the reply, not given to the model."""
    return prompt_with_passages(question, [passage_text(s.text) for s in sources])


def fit_passages(messages: Sequence[dict], hits: Sequence[SearchHit], budget: int,
                 count_tokens: Callable[[list[dict]], int], drop_history: bool = False,
                 ) -> tuple[list[dict], list[Source]]:
    """(the messages with the chosen passages before the last message's question, the chosen
    sources): the one place passages are fitted to a prompt, for the chat session and the API.

    Passages are taken best first while `count_tokens(messages)` (the prompt as the caller renders
    it, generation prompt included) stays within `budget`; one that does not fit is left out and a
    shorter one after it may still go in. The messages keep every turn where it was (system turns
    included: a template renders them as it would without documents). With `drop_history`, when
    the conversation so far leaves no room for any passage, the room is counted against the last
    turn alone: the chat session then drops the oldest turns, as it does for any long conversation.
    """
    messages = [dict(m) for m in messages]
    question = messages[-1]["content"]

    def with_chosen(history: list[dict], chosen: list[Source]) -> list[dict]:
        # the last turn keeps its other parts (its images) with the passages before its question
        return history[:-1] + [{**messages[-1], "role": "user", "content": with_passages(question, chosen)}]

    chosen: list[Source] = []
    for history in (messages, messages[-1:]) if drop_history else (messages,):
        chosen = []
        for hit in hits:
            candidate = Source(len(chosen) + 1, hit.path, hit.heading, hit.start, hit.end, hit.text)
            if count_tokens(with_chosen(history, chosen + [candidate])) <= budget:
                chosen.append(candidate)
        if chosen or len(history) == 1:
            break
    return with_chosen(messages, chosen), chosen


def retrieve(session, retriever: Retriever, reserve: int, limit: int = SEARCH_LIMIT) -> tuple[list[dict], RetrievalResult]:
    """(messages with passages in the last user turn, result) for the session's conversation:
    `fit_passages` within the context minus `reserve` tokens for the reply, counted as the
    session renders the prompt, dropping the history when it leaves no room."""
    messages = [dict(m) for m in session.messages]
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("retrieval needs the conversation to end with a user message")
    query, hits = search_turn(retriever, messages, limit)
    result = RetrievalResult(query=query)
    budget = session.engine.context_len - reserve
    messages, result.sources = fit_passages(messages, hits, budget, lambda m: len(session.render_ids(m)),
                                            drop_history=True)
    result.left_out = len(hits) - len(result.sources)
    if result.left_out:
        log.info("retrieval: %s", result.notice)
    return messages, result


class DocumentReply:
    """Iterates the reply's text deltas; `.result` (RetrievalResult) is ready before the first."""

    def __init__(self, deltas: Iterator[str], result: RetrievalResult) -> None:
        self._deltas = deltas
        self.result = result

    def __iter__(self) -> Iterator[str]:
        return self._deltas


def send_with_documents(session, text: str, settings, retriever: Retriever, cancel=None,
                        limit: int = SEARCH_LIMIT, logprobs: Optional[int] = None,
                        forced: Sequence[int] = (), images: Sequence = ()) -> DocumentReply:
    """Like `session.send(text, ...)` with the library's passages in the prompt (`logprobs`,
    `forced` and `images` as there: the token view and "continue from this alternative" work
    grounded too, and a message's images stay in its turn beside the passages). The history keeps
    the message as the user wrote it (the next turn retrieves afresh)."""
    if not text.strip():
        if not images:
            raise ValueError("the message is empty")
        retriever = _NothingToSearch()  # images alone: no words to search the library for
    reserve = min(settings.max_new_tokens, session.engine.context_len // 4)
    message = {"role": "user", "content": text, **({"images": list(images)} if images else {})}
    session.messages.append(message)
    try:
        augmented, result = retrieve(session, retriever, reserve, limit)
        ids, _dropped = _fit(session, augmented, reserve)  # the ids session.send will use
    finally:
        session.messages.pop()
    result.prompt = session.engine.tokenizer.decode(ids, skip_special_tokens=False)
    result.prompt_tokens = len(ids)
    return DocumentReply(_reply(session, message, augmented[-1]["content"], settings, cancel, logprobs, forced),
                         result)


class _NothingToSearch:
    def search(self, query: str, limit: int) -> list[SearchHit]:
        return []


def _fit(session, messages: list[dict], reserve: int) -> tuple[list[int], int]:
    """The session's own fit (dropping the oldest turns) applied to `messages`."""
    saved = session.messages
    session.messages = messages
    try:
        return session.fit(reserve)
    finally:
        session.messages = saved


def _reply(session, message: dict, augmented: str, settings, cancel, logprobs, forced) -> Iterator[str]:
    user_index = len(session.messages)
    try:
        yield from session.send(augmented, settings, cancel, logprobs, forced, images=message.get("images", ()))
    finally:
        if len(session.messages) > user_index and session.messages[user_index]["role"] == "user":
            session.messages[user_index] = dict(message)


def open_documents(spec: str, store_path: Optional[os.PathLike] = None) -> LibraryRetriever:
    """`--docs NAME|PATH`: a library by name, or else a file or folder indexed now into a
    temporary library. LookupError naming both possibilities when it is neither."""
    store = LibraryStore(store_path)
    if spec in store.names():
        return LibraryRetriever(store, spec)
    store.close()
    path = Path(spec).expanduser()
    if not path.exists():
        raise LookupError(f"--docs {spec!r}: no library of that name and no such file or folder")
    folder = tempfile.TemporaryDirectory(prefix="chatapp-docs-")
    temp_store, name, report = index_paths_into_temporary([path], folder.name)
    log.info("indexed %s: %s", path, report.summary())
    return LibraryRetriever(temp_store, name, owned_folder=folder)
