"""Chat with documents: the best passages of a library put into the user's turn, as text.

For a user turn: a query from the message and the recent turns; the library's best chunks
(documents.library; `rank_turn`, with RetrievalOptions for the model's draft or reranking:
rerank.py); as many as fit the context (counted with the model's tokenizer, through the chat
session's own rendering) put between the question and its repetition, the best last (the
sources, numbered [1] the best, go with the reply), with the passages' sentence that shares most of
the question's words shown again just before the repetition (relevant.py). Passages are message content: the chat
template renders them like anything the user typed, so a document cannot open a turn of its
own. The result carries the sources (file, heading, span) and the exact prompt the model saw.

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
from .relevant import most_relevant_sentence

log = logging.getLogger(__name__)

RECENT_MESSAGES = 2  # earlier messages that join the query (a follow-up "and when?" needs them)
QUERY_CHARS = 2000
# Passages offered (of at most 300 characters each, documents.chunking): measured with the
# default 135M model on benchmarks/knowledge_docs, three short passages answered 7/10, one or
# two whole sections (1,000 characters) 4-5/10.
SEARCH_LIMIT = 3

# The instruction measured best with the default model; asking it to cite passages by number
# made it copy the numbers and labels instead of answering. Sources are shown with the reply.
# The best passage last, nearest the repeated question: measured 7/10 on knowledge_docs and 6/10
# on demo_docs against 6 and 6 best first (README "Chat with documents: retrieval variants"); the
# only variant that gained on one folder and lost nothing on the other, at no cost.
BEST_LAST = True
MAX_DRAFT_TOKENS = 128
MAX_RERANK_CANDIDATES = 32

INSTRUCTION = "Answer the question using the text below."
_HEADING_LINE = re.compile(r"^ {0,3}#{1,6}(?:[ \t].*)?$", re.M)


class Retriever(Protocol):
    def search(self, query: str, limit: int) -> list[SearchHit]: ...


@dataclass(frozen=True)
class RetrievalOptions:
    """How a turn's passages are found and laid out (defaults: see the constants above).

    passages: how many go into the prompt (those that fit the context).
    draft_tokens: HyDE; > 0: the model first answers closed-book in at most that many tokens,
        and the draft's words are searched too, fused with the plain search by reciprocal rank
        (so a wrong draft cannot push out the words' own best hits); 0: off.
    rerank_candidates: UPR; > passages: that many candidates are ranked by how likely the model
        finds the question after each (engine.rerank), the best `passages` kept; 0: off.
    best_last: the best passage is put last, nearest the repeated question.
    min_score_ratio: in (0, 1]: a passage whose BM25 score is below this fraction of the best
        one's is left out (the first passage always stays): fewer distractors when one passage
        stands far above the rest; 0: off."""

    passages: int = SEARCH_LIMIT
    draft_tokens: int = 0
    rerank_candidates: int = 0
    best_last: bool = BEST_LAST
    min_score_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.passages < 1:
            raise ValueError(f"passages must be at least 1, got {self.passages}")
        if not 0 <= self.draft_tokens <= MAX_DRAFT_TOKENS:
            raise ValueError(f"draft_tokens must be in [0, {MAX_DRAFT_TOKENS}], got {self.draft_tokens}")
        if not 0.0 <= self.min_score_ratio <= 1.0:
            raise ValueError(f"min_score_ratio must be in [0, 1], got {self.min_score_ratio}")
        if not 0 <= self.rerank_candidates <= MAX_RERANK_CANDIDATES:
            raise ValueError(f"rerank_candidates must be in [0, {MAX_RERANK_CANDIDATES}], "
                             f"got {self.rerank_candidates}")

    @property
    def candidates(self) -> int:
        """How many hits the search is asked for."""
        return max(self.passages, self.rerank_candidates)

    def replace(self, **changes) -> "RetrievalOptions":
        from dataclasses import replace
        return replace(self, **changes)


@dataclass
class TurnRanking:
    """What `rank_turn` found: the query searched, the hits best first, and what the model's
    help cost (the draft's text and seconds, the reranking's seconds)."""

    query: str
    hits: list[SearchHit]
    draft: str = ""
    draft_seconds: float = 0.0
    rerank_seconds: float = 0.0


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
    number: int  # as shown with the reply: [number], 1 the best (the prompt puts the best last: BEST_LAST)
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
    draft: str = ""  # the closed-book draft whose words were searched too ('' without one)
    draft_seconds: float = 0.0
    rerank_seconds: float = 0.0

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
                "prompt_tokens": self.prompt_tokens, "draft": self.draft,
                "draft_seconds": round(self.draft_seconds, 3), "rerank_seconds": round(self.rerank_seconds, 3)}


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


def rank_turn(engine, retriever: Retriever, messages: Sequence[dict],
              options: Optional[RetrievalOptions] = None, system_prompt: str = "") -> TurnRanking:
    """The turn's passages best first (at most `options.passages`), for chat, the API and the
    quiz alike: `search_turn`, then with `options.draft_tokens` the draft's words searched and
    fused in (HyDE), then with `options.rerank_candidates` the candidates ranked by the model
    (UPR). `engine` is used only for those two (None: words only)."""
    options = options or RetrievalOptions()
    query, hits = search_turn(retriever, messages, options.candidates)
    ranking = TurnRanking(query, hits)
    question = [m for m in messages if m["role"] == "user"][-1]["content"][:QUERY_CHARS]
    if engine is not None and options.draft_tokens and question.strip():
        from .rerank import write_draft
        ranking.draft, ranking.draft_seconds = write_draft(engine, question, options.draft_tokens, system_prompt)
        if ranking.draft:
            drafted = retriever.search(f"{question}\n{ranking.draft}"[:QUERY_CHARS], options.candidates)
            ranking.hits = fuse_hits([hits, drafted])[:options.candidates]
    if engine is not None and options.rerank_candidates > options.passages and len(ranking.hits) > 1 \
            and question.strip():
        from .rerank import question_scores, rerank_order
        scores, cost = question_scores(engine, question, [passage_text(h.text) for h in ranking.hits])
        # the model's order fused with the search's by reciprocal rank, ties to the search: alone,
        # the 135M model's order put the answer's passage first for 4 of 10 questions on
        # knowledge_docs (the words: 9), fused 7, and within the first three 10 of 10 (words: 9)
        ranking.hits = fuse_hits([ranking.hits, [ranking.hits[i] for i in rerank_order(scores)]])
        ranking.rerank_seconds = cost.seconds
    ranking.hits = ranking.hits[:options.passages]
    if options.min_score_ratio and ranking.hits:
        floor = options.min_score_ratio * max(h.bm25 for h in ranking.hits)
        ranking.hits = ranking.hits[:1] + [h for h in ranking.hits[1:] if h.bm25 >= floor]
    return ranking


def fuse_hits(rankings: Sequence[Sequence[SearchHit]]) -> list[SearchHit]:
    """Hits of several rankings fused by reciprocal rank, ties to the earlier ranking."""
    by_id = {}
    for ranking in reversed(rankings):
        by_id.update({hit.chunk_id: hit for hit in ranking})
    fused = reciprocal_rank_fusion([[h.chunk_id for h in ranking] for ranking in rankings])
    return [by_id[chunk_id] for chunk_id, _score in fused]


def passage_text(text: str) -> str:
    """A passage as the prompt shows it: without Markdown heading lines (the default model
    answered with the heading it saw first, "# The founding of ..."), on one line (line breaks
    of hard-wrapped files made it stop or repeat a line), else as it is."""
    stripped = _HEADING_LINE.sub("", text).strip()
    return " ".join(stripped.split()) if stripped else text


def prompt_with_passages(question: str, passages: Sequence[str], relevant: str = "") -> str:
    """The user's turn with these passage texts, as chat with documents asks (the knowledge
    recipe trains with the same wording: training/knowledge.py): the question, the instruction,
    the passages as plain paragraphs, the question again.

    Measured with the default 135M model (benchmarks/knowledge_docs + demo_docs, 10 + 10
    questions, greedy; README "Teaching the model your documents"): the question both before
    and after the passages 6 + 7, after them only 4 + 8; numbered passages each followed by its
    file's name 5 + 7, without the names 4 + 6 (the names go with the reply as sources); the
    passages in a system turn 5 + 5; a "Context: ... Answer:" layout 4 + 8.

    `relevant`: a sentence of the passages shown again before the repeated question, after
    "Most relevant: " (chat with documents gives the best-matching one: with_passages; the
    knowledge recipe trains without it)."""
    if not passages:
        return question
    line = f"\n\nMost relevant: {relevant}" if relevant else ""
    return (f"Question: {question}\n\n{INSTRUCTION}\n\n" + "\n\n".join(passages)
            + f"{line}\n\nQuestion: {question}")


def with_passages(question: str, sources: Sequence[Source]) -> str:
    """The user's turn with the sources' passages (prompt_with_passages) and the sentence of them
    that shares most of the question's words (relevant.most_relevant_sentence) shown again before
    the repeated question; their numbers and files are shown with the reply, not given to the model."""
    passages = [passage_text(s.text) for s in sources]
    return prompt_with_passages(question, passages, most_relevant_sentence(question, passages))


def fit_passages(messages: Sequence[dict], hits: Sequence[SearchHit], budget: int,
                 count_tokens: Callable[[list[dict]], int], drop_history: bool = False,
                 best_last: bool = False) -> tuple[list[dict], list[Source]]:
    """(the messages with the chosen passages before the last message's question, the chosen
    sources): the one place passages are fitted to a prompt, for the chat session and the API.

    Passages are taken best first while `count_tokens(messages)` (the prompt as the caller renders
    it, generation prompt included) stays within `budget`; one that does not fit is left out and a
    shorter one after it may still go in. The messages keep every turn where it was (system turns
    included: a template renders them as it would without documents). With `drop_history`, when
    the conversation so far leaves no room for any passage, the room is counted against the last
    turn alone: the chat session then drops the oldest turns, as it does for any long conversation.
    With `best_last` the chosen passages go into the prompt worst first, the best nearest the
    question after them; the sources stay numbered best first ([1] the best), as the reply shows them.
    """
    messages = [dict(m) for m in messages]
    question = messages[-1]["content"]

    def with_chosen(history: list[dict], chosen: list[Source]) -> list[dict]:
        # the last turn keeps its other parts (its images) with the passages before its question
        shown = chosen[::-1] if best_last else chosen
        return history[:-1] + [{**messages[-1], "role": "user", "content": with_passages(question, shown)}]

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


def retrieve(session, retriever: Retriever, reserve: int, limit: Optional[int] = None,
             options: Optional[RetrievalOptions] = None) -> tuple[list[dict], RetrievalResult]:
    """(messages with passages in the last user turn, result) for the session's conversation:
    `rank_turn` (with the session's engine for a draft or reranking), then `fit_passages` within
    the context minus `reserve` tokens for the reply, counted as the session renders the prompt,
    dropping the history when it leaves no room. `limit` overrides `options.passages`."""
    options = options or RetrievalOptions()
    if limit is not None:
        options = options.replace(passages=limit)
    messages = [dict(m) for m in session.messages]
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("retrieval needs the conversation to end with a user message")
    ranking = rank_turn(session.engine, retriever, messages, options, getattr(session, "system_prompt", ""))
    result = RetrievalResult(query=ranking.query, draft=ranking.draft,
                             draft_seconds=ranking.draft_seconds, rerank_seconds=ranking.rerank_seconds)
    budget = session.engine.context_len - reserve
    messages, result.sources = fit_passages(messages, ranking.hits, budget, lambda m: len(session.render_ids(m)),
                                            drop_history=True, best_last=options.best_last)
    result.left_out = len(ranking.hits) - len(result.sources)
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
                        limit: Optional[int] = None, logprobs: Optional[int] = None,
                        forced: Sequence[int] = (), images: Sequence = (),
                        options: Optional[RetrievalOptions] = None) -> DocumentReply:
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
        augmented, result = retrieve(session, retriever, reserve, limit, options)
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
