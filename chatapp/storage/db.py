"""Conversation history: one SQLite file, never silently lost.

Durability: WAL journal with `synchronous=NORMAL`. In WAL mode a commit is complete once its
frames are written to the -wal file, and the OS keeps written data across a killed process, so
a crash or `kill -9` of the app loses nothing it committed and never corrupts the file. Only a
power cut or OS crash can drop the last few commits (never corrupt either); FULL would fsync on
every streaming save to guard against that, which this app does not need.

Threading: one connection opened with check_same_thread=False, every public method holds one
re-entrant lock, so the GUI thread and short calls from other threads may share a store. Every
write runs in its own `BEGIN IMMEDIATE ... COMMIT` transaction.

At open: a file that is not a usable database raises CorruptDatabaseError (the caller moves it
aside with `move_aside`, never deletes it); a schema newer than this code raises
DatabaseTooNewError and leaves the file untouched; older schemas are migrated in one
transaction; replies left "streaming" by a killed app become "cancelled", their text kept.

Long because every table of the one conversations file (conversations, messages, the sources
of a reply) is written through the same lock and transaction helpers here.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

from .. import paths
from ..sqlite_wal import use_wal
from . import attachments, tree
from .migrations import (FTS_TABLE, OUR_TABLES, SCHEMA_VERSION, apply_migrations,
                         fts5_trigram_available, sync_search_index)

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
ROLES = ("user", "assistant", "system")
STATES = ("complete", "streaming", "cancelled", "failed")
FINAL_STATES = ("complete", "cancelled", "failed")
INTERRUPTED = "interrupted"  # finish_reason of a reply recovered at open
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


class StorageError(Exception):
    """The conversation history could not be read or written; the message names the file."""

    def __init__(self, problem: str, path: Optional[PathLike] = None, hint: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}" if self.path is not None else problem
        super().__init__(f"{message} ({hint})" if hint else message)


class CorruptDatabaseError(StorageError):
    """Not a usable conversation database: move it aside (`move_aside`) and start a new one."""


class DatabaseTooNewError(StorageError):
    """Written by a newer version of the app; the file is left untouched."""


class NotFoundError(StorageError, LookupError):
    """No conversation or message with that id."""


def now_us() -> int:
    return time.time_ns() // 1000


def us_to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def datetime_to_us(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive times are taken as UTC, as they are written here
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: datetime
    updated_at: datetime  # last message activity: the sidebar's order
    system_prompt: str = ""
    model: str = ""  # the model of the latest reply
    deleted_at: Optional[datetime] = None
    library: str = ""  # the document library its replies retrieve from, '' for none


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    position: int  # 0, 1, 2... within the conversation, in order of creation (over all branches)
    role: str
    content: str
    created_at: datetime
    state: str = "complete"
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # sampling settings of a reply
    stats: dict[str, Any] = field(default_factory=dict)  # prompt_tokens, new_tokens, ttft_s...
    finish_reason: str = ""
    parent_id: Optional[int] = None  # the message it follows in the tree (None: a first message)
    active: bool = True  # the version shown among its siblings (storage/tree.py)


# `parent` of a NewMessage to import: the message before it in the list (a conversation without
# branches, as version 1 exports are).
PREVIOUS = -1


@dataclass(frozen=True)
class NewMessage:
    """A message to insert (add_message, import); validates itself."""

    role: str
    content: str
    created_at: Optional[datetime] = None  # None: now
    state: str = "complete"
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = ""
    parent: Optional[int] = PREVIOUS  # for import: the index of its parent in the list, None: a root
    active: bool = True  # for import: the version shown among its siblings
    images: tuple = ()  # attachments.Attachment (or bytes): images stored with the message

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {self.state!r}")
        if not isinstance(self.content, str):
            raise TypeError(f"content must be a str, not {type(self.content).__name__}")


_CONV_COLS = "id, title, created_at, updated_at, system_prompt, model, deleted_at, library"
_MSG_COLS = ("id, conversation_id, position, role, content, created_at, state, model, "
             "settings_json, stats_json, finish_reason, parent_id, active")
# `parent_id` of add_message / begin_reply: after the last message of the path shown.
AT_END = object()


@dataclass(frozen=True)
class MessageSource:
    """A passage a reply was given: cited as [number]; span [start, end) of the file's cleaned text."""

    number: int
    path: str
    heading: str
    start: int
    end: int
    text: str
    library: str = ""


def _conversation(row: tuple) -> Conversation:
    return Conversation(row[0], row[1], us_to_datetime(row[2]), us_to_datetime(row[3]), row[4], row[5],
                        None if row[6] is None else us_to_datetime(row[6]), row[7])


def _message(row: tuple) -> Message:
    return Message(row[0], row[1], row[2], row[3], row[4], us_to_datetime(row[5]), row[6], row[7],
                   json.loads(row[8]), json.loads(row[9]), row[10], row[11], bool(row[12]))


def _json(value: Optional[dict]) -> str:
    return json.dumps(value or {}, ensure_ascii=False, sort_keys=True)


def _is_corruption(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)
    return "not a database" in text or "malformed" in text


def snippet(content: str, query: str, width: int = 80) -> str:
    """One line of `content` around the first match of `query`, for the search results list."""
    flat, needle = " ".join(content.split()), " ".join(query.split()).casefold()
    at = max(flat.casefold().find(needle), 0)  # -1 when FTS matched with a different case folding
    start = max(0, min(at - width // 4, len(flat) - width))
    end = min(len(flat), start + width)
    return ("…" if start > 0 else "") + flat[start:end] + ("…" if end < len(flat) else "")


def move_aside(path: PathLike) -> Path:
    """Rename an unusable database aside with its -wal/-shm/-journal (paths.move_aside); never delete."""
    return paths.move_aside(path, sidecars=("-wal", "-shm", "-journal"))


class ConversationStore:
    """Conversations and their messages in the SQLite file at `path` (created if missing).

    `use_fts`: None uses FTS5 when this SQLite has it; False forces the LIKE fallback.
    """

    def __init__(self, path: PathLike, *, use_fts: Optional[bool] = None, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self.recovered_replies = 0  # replies found "streaming" at open (the app had been killed)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so DDL is transactional too.
            self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                         check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the conversation database ({exc})", self.path) from exc
        try:
            self._prepare(use_fts, timeout_s)
        except BaseException:
            self._conn.close()
            raise

    # -- opening --------------------------------------------------------------------------
    def _prepare(self, use_fts: Optional[bool], timeout_s: float) -> None:
        conn = self._conn
        try:
            version = self._check_version()
            if version == 0:
                tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables - OUR_TABLES:
                    raise CorruptDatabaseError("is an SQLite database, but not a chatapp conversation history",
                                               self.path)
            problems = [r for (r,) in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise CorruptDatabaseError(f"is damaged ({'; '.join(problems[:3])})", self.path)
            mode = use_wal(conn, timeout_s)
            if mode != "wal":
                log.warning("%s: journal mode is %s, not wal", self.path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")  # see the module docstring
            conn.execute("PRAGMA foreign_keys = ON")
            self._fts = use_fts is not False and fts5_trigram_available(conn)
            with self._write():
                version = self._check_version()  # again, under the write lock: another process may have migrated
                try:
                    apply_migrations(conn, version)
                except sqlite3.Error as exc:
                    raise StorageError(f"could not upgrade the history from schema {version} to {SCHEMA_VERSION} "
                                       f"({exc}); the file was not changed", self.path) from exc
                sync_search_index(conn, self._fts)
                self.recovered_replies = conn.execute(
                    "UPDATE messages SET state = 'cancelled', finish_reason = ? WHERE state = 'streaming'",
                    (INTERRUPTED,)).rowcount
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                raise CorruptDatabaseError(f"is not a readable conversation database ({exc})", self.path) from exc
            raise StorageError(f"cannot open the conversation database ({exc})", self.path) from exc
        if self.recovered_replies:
            log.warning("%d interrupted replies marked cancelled (partial text kept)", self.recovered_replies)

    def _check_version(self) -> int:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseTooNewError(
                f"was written by a newer version of chatapp (schema {version}; this version knows up to "
                f"{SCHEMA_VERSION})", self.path, "update the app to open it; the file was not changed")
        return version

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # also when COMMIT itself failed (disk full, I/O error)
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _saving(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction whose SQLite failures (disk full, locked...) become StorageError."""
        try:
            with self._write() as conn:
                yield conn
        except sqlite3.Error as exc:
            full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            raise StorageError(f"could not {what} ({exc})", self.path,
                               paths.DISK_FULL_HINT + "; nothing saved before was changed" if full else "") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ConversationStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @property
    def search_backend(self) -> str:
        return "fts5" if self._fts else "like"

    def check_integrity(self) -> str:
        """`PRAGMA integrity_check`: "ok", or the problems found, one a line."""
        with self._lock:
            return "\n".join(r for (r,) in self._conn.execute("PRAGMA integrity_check"))

    # -- conversations --------------------------------------------------------------------
    def _require(self, conversation_id: int) -> None:
        if self._conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
            raise NotFoundError(f"no conversation with id {conversation_id}", self.path)

    def create_conversation(self, title: str, system_prompt: str = "", model: str = "") -> Conversation:
        now = now_us()
        with self._saving("create a conversation") as conn:
            cur = conn.execute("INSERT INTO conversations (title, created_at, updated_at, system_prompt, model) "
                               "VALUES (?, ?, ?, ?, ?)", (title, now, now, system_prompt, model))
        return Conversation(cur.lastrowid, title, us_to_datetime(now), us_to_datetime(now), system_prompt, model)

    def get_conversation(self, conversation_id: int) -> Conversation:
        """Also finds a soft-deleted conversation (its `deleted_at` is set)."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?",
                                     (conversation_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no conversation with id {conversation_id}", self.path)
        return _conversation(row)

    def list_conversations(self) -> list[Conversation]:
        """Conversations not deleted, most recent activity first."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_CONV_COLS} FROM conversations WHERE deleted_at IS NULL "
                                      "ORDER BY updated_at DESC, id DESC").fetchall()
        return [_conversation(r) for r in rows]

    def list_deleted(self) -> list[Conversation]:
        """Soft-deleted conversations, most recently deleted first (a trash view)."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_CONV_COLS} FROM conversations WHERE deleted_at IS NOT NULL "
                                      "ORDER BY deleted_at DESC, id DESC").fetchall()
        return [_conversation(r) for r in rows]

    def _set(self, conversation_id: int, column: str, value: Any, what: str) -> None:
        with self._saving(what) as conn:
            if conn.execute(f"UPDATE conversations SET {column} = ? WHERE id = ?",
                            (value, conversation_id)).rowcount == 0:
                raise NotFoundError(f"no conversation with id {conversation_id}", self.path)

    def rename(self, conversation_id: int, title: str) -> None:
        """Does not change the conversation's place in the list (updated_at is activity)."""
        self._set(conversation_id, "title", title, "rename the conversation")

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> None:
        self._set(conversation_id, "system_prompt", system_prompt, "save the system prompt")

    def set_library(self, conversation_id: int, library: str) -> None:
        """The document library the conversation's replies retrieve from ('' for none)."""
        if not isinstance(library, str):
            raise TypeError(f"library must be a str, not {type(library).__name__}")
        self._set(conversation_id, "library", library, "save the conversation's documents")

    def delete_conversation(self, conversation_id: int) -> None:
        """Soft delete: hidden from lists and search until `restore` or `purge_deleted`."""
        self._set(conversation_id, "deleted_at", now_us(), "delete the conversation")

    def restore(self, conversation_id: int) -> None:
        self._set(conversation_id, "deleted_at", None, "restore the conversation")

    def purge_deleted(self, older_than: timedelta = timedelta(days=30)) -> int:
        """Remove for good the conversations deleted more than `older_than` ago; returns how many."""
        cutoff = now_us() - older_than // timedelta(microseconds=1)
        with self._saving("purge deleted conversations") as conn:
            return conn.execute("DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                                (cutoff,)).rowcount

    def search(self, text: str, limit: int = 200) -> list[tuple[Conversation, str]]:
        """Conversations whose title or messages contain `text`, each with a one-line snippet.

        Substring semantics either way: FTS5 trigram for queries of 3+ characters (Chinese has
        no spaces, so word tokenizers would not find 天气 inside 今天天气很好), LIKE otherwise.
        """
        query = text.strip()
        if not query:
            return []
        with self._lock:
            rows = None
            if self._fts and len(query) >= 3:
                phrase = '"' + query.replace('"', '""') + '"'
                try:
                    rows = self._conn.execute(
                        f"SELECT m.conversation_id, m.content FROM {FTS_TABLE} JOIN messages m "
                        f"ON m.id = {FTS_TABLE}.rowid WHERE {FTS_TABLE} MATCH ? "
                        "ORDER BY m.conversation_id, m.position", (phrase,)).fetchall()
                except sqlite3.OperationalError as exc:
                    log.warning("full-text search failed (%s); falling back to LIKE", exc)
            if rows is None:
                pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                rows = self._conn.execute(
                    "SELECT conversation_id, content FROM messages WHERE content LIKE ? ESCAPE '\\' "
                    "ORDER BY conversation_id, position", (pattern,)).fetchall()
            conversations = self.list_conversations()
        first_hit: dict[int, str] = {}
        for conversation_id, content in rows:
            first_hit.setdefault(conversation_id, content)
        folded, results = query.casefold(), []
        for conv in conversations:
            if conv.id in first_hit:
                results.append((conv, snippet(first_hit[conv.id], query)))
            elif folded in conv.title.casefold():
                results.append((conv, conv.title))
            if len(results) >= limit:
                break
        return results

    # -- messages -------------------------------------------------------------------------
    def messages(self, conversation_id: int) -> list[Message]:
        """The conversation's path shown, first to last: the context of its next reply ([] for an
        unknown id). Other branches: `tree`, `siblings`."""
        return tree.active_path(self.tree(conversation_id))

    def tree(self, conversation_id: int) -> list[Message]:
        """Every message of the conversation, all branches, in order of creation."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_MSG_COLS} FROM messages WHERE conversation_id = ? "
                                      "ORDER BY position", (conversation_id,)).fetchall()
        return [_message(r) for r in rows]

    def branch_numbers(self, conversation_id: int) -> dict[int, tuple[int, int]]:
        """Message id -> (its number among its versions from 1, how many), for the path shown."""
        return tree.branch_numbers(self.tree(conversation_id))

    def siblings(self, message_id: int) -> list[Message]:
        """The versions of a message (itself included): the children of its parent, oldest first."""
        with self._lock:
            message = self._get_message(message_id)
            return tree.children_of(self.tree(message.conversation_id)).get(message.parent_id, [message])

    def select_branch(self, message_id: int) -> None:
        """Show version `message_id` of its message (and below it, the versions last shown there)."""
        with self._saving("switch the branch") as conn:
            message = self._get_message(message_id)
            self._activate(conn, message)

    def _activate(self, conn: sqlite3.Connection, message: Message) -> None:
        conn.execute("UPDATE messages SET active = (id = ?) WHERE conversation_id = ? AND parent_id IS ?",
                     (message.id, message.conversation_id, message.parent_id))

    def delete_branch(self, message_id: int) -> int:
        """Delete a version of a message with everything below it; another version (the one before,
        else the next) is shown in its place. Returns how many messages were deleted."""
        with self._saving("delete the branch") as conn:
            message = self._get_message(message_id)
            messages = self.tree(message.conversation_id)
            doomed = tree.descendants(messages, message_id)
            others = [m for m in tree.children_of(messages).get(message.parent_id, []) if m.id != message_id]
            conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in reversed(doomed)])
            if message.active and others:
                before = [m for m in others if m.position < message.position]
                self._activate(conn, before[-1] if before else others[0])
            return len(doomed)

    def _insert(self, conn: sqlite3.Connection, conversation_id: int, new: NewMessage,
                parent_id: Optional[int] = None, active: bool = True) -> int:
        created = now_us() if new.created_at is None else datetime_to_us(new.created_at)
        cur = conn.execute(
            "INSERT INTO messages (conversation_id, position, role, content, created_at, state, model, "
            "settings_json, stats_json, finish_reason, parent_id, active) VALUES (?, (SELECT "
            "COALESCE(MAX(position), -1) + 1 FROM messages WHERE conversation_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, conversation_id, new.role, new.content, created, new.state, new.model,
             _json(new.settings), _json(new.stats), new.finish_reason, parent_id, int(active)))
        if new.images:
            attachments.save(conn, cur.lastrowid, new.images)
        return cur.lastrowid

    def _add_version(self, conn: sqlite3.Connection, conversation_id: int, new: NewMessage, parent_id: Any) -> int:
        """Insert `new` under `parent_id` (AT_END: after the path shown) as the version shown."""
        self._require(conversation_id)
        if parent_id is AT_END:
            path = self.messages(conversation_id)
            parent_id = path[-1].id if path else None
        elif parent_id is not None:
            parent = self._get_message(parent_id)
            if parent.conversation_id != conversation_id:
                raise ValueError(f"message {parent_id} is not in conversation {conversation_id}")
        message_id = self._insert(conn, conversation_id, new, parent_id)
        self._activate(conn, self._get_message(message_id))
        return message_id

    def _touch(self, conn: sqlite3.Connection, conversation_id: int, model: str = "") -> None:
        conn.execute("UPDATE conversations SET updated_at = MAX(updated_at, ?), "
                     "model = CASE WHEN ? = '' THEN model ELSE ? END WHERE id = ?",
                     (now_us(), model, model, conversation_id))

    def _get_message(self, message_id: int) -> Message:
        row = self._conn.execute(f"SELECT {_MSG_COLS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no message with id {message_id}", self.path)
        return _message(row)

    def add_message(self, conversation_id: int, role: str, content: str, *, state: str = "complete",
                    model: str = "", settings: Optional[dict] = None, stats: Optional[dict] = None,
                    finish_reason: str = "", created_at: Optional[datetime] = None,
                    parent_id: Any = AT_END, images: Sequence[Any] = ()) -> Message:
        """A message after the path shown, or a new version of a message: under `parent_id`
        (None: a first message) beside the children already there. It becomes the version shown.
        `images`: attachments.Attachment (or objects with data and name) stored with it, in order."""
        new = NewMessage(role, content, created_at, state, model, settings or {}, stats or {}, finish_reason,
                         images=tuple(attachments.as_attachment(image) for image in images))
        with self._saving("save the message") as conn:
            message_id = self._add_version(conn, conversation_id, new, parent_id)
            self._touch(conn, conversation_id)
            return self._get_message(message_id)

    def begin_reply(self, conversation_id: int, model: str = "", settings: Optional[dict] = None,
                    parent_id: Any = AT_END) -> int:
        """An empty assistant message in state "streaming", shown (a new version of a reply when
        `parent_id` already has children: regenerate); returns its id."""
        with self._saving("start the reply") as conn:
            message_id = self._add_version(conn, conversation_id, NewMessage(
                "assistant", "", state="streaming", model=model, settings=settings or {}), parent_id)
            self._touch(conn, conversation_id, model)
        return message_id

    def update_reply(self, message_id: int, content: str) -> bool:
        """Periodic save of a streaming reply (cheap: one row). False if it is no longer streaming."""
        with self._saving("save the reply") as conn:
            return conn.execute("UPDATE messages SET content = ? WHERE id = ? AND state = 'streaming'",
                                (content, message_id)).rowcount == 1

    def finish_reply(self, message_id: int, content: str, state: str = "complete", finish_reason: str = "",
                     stats: Optional[dict] = None) -> bool:
        """Final text, state and stats of a reply. False (logged) if the message no longer exists."""
        if state not in FINAL_STATES:
            raise ValueError(f"state must be one of {FINAL_STATES}, not {state!r}")
        with self._saving("save the reply") as conn:
            row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                log.warning("finish_reply: message %d no longer exists (conversation truncated or purged)",
                            message_id)
                return False
            conn.execute("UPDATE messages SET content = ?, state = ?, finish_reason = ?, stats_json = ? "
                         "WHERE id = ?", (content, state, finish_reason, _json(stats), message_id))
            self._touch(conn, row[0])
        return True

    # -- sources (chat with documents) ------------------------------------------------------
    def save_sources(self, message_id: int, sources: Sequence[Any], library: str = "") -> None:
        """Store the passages a reply was given (replacing any stored before). Each source is a
        mapping or an object with number, path, heading, start, end and text."""
        rows = []
        for source in sources:
            get = source.get if isinstance(source, dict) else lambda key, s=source: getattr(s, key, None)
            row = (message_id, get("number"), get("path"), get("heading") or "", get("start"), get("end"),
                   get("text"), library)
            if not isinstance(row[1], int) or row[1] < 1 or not isinstance(row[2], str) \
                    or not isinstance(row[4], int) or not isinstance(row[5], int) or not isinstance(row[6], str):
                raise ValueError(f"a source needs number >= 1, path, start, end and text; got {source!r}"[:300])
            rows.append(row)
        with self._saving("save the sources") as conn:
            self._get_message(message_id)  # NotFoundError for a message that is gone
            conn.execute("DELETE FROM message_sources WHERE message_id = ?", (message_id,))
            conn.executemany('INSERT INTO message_sources (message_id, number, path, heading, start, "end", '
                             'text, library) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', rows)

    def sources(self, message_id: int) -> list[MessageSource]:
        """The passages stored with a message, by number ([] when none)."""
        with self._lock:
            rows = self._conn.execute('SELECT number, path, heading, start, "end", text, library FROM '
                                      'message_sources WHERE message_id = ? ORDER BY number',
                                      (message_id,)).fetchall()
        return [MessageSource(*row) for row in rows]

    # -- images (attachments.py) -------------------------------------------------------------
    def attachments(self, message_id: int) -> list[attachments.Attachment]:
        """The images stored with a message, in order ([] when none)."""
        with self._lock:
            return attachments.load(self._conn, [message_id]).get(message_id, [])

    def conversation_attachments(self, conversation_id: int) -> dict[int, list[attachments.Attachment]]:
        """{message id: its images} for the messages of a conversation (every branch) that have any."""
        with self._lock:
            ids = [i for (i,) in self._conn.execute("SELECT id FROM messages WHERE conversation_id = ?",
                                                    (conversation_id,))]
            return attachments.load(self._conn, ids)

    def attachment_bytes(self) -> int:
        """Bytes of image data the database holds (each distinct image once)."""
        with self._lock:
            return attachments.stored_bytes(self._conn)

    def truncate_after(self, conversation_id: int, position: int) -> int:
        """Delete the messages created after `position` (-1: all), in every branch."""
        with self._saving("remove the later messages") as conn:
            self._require(conversation_id)
            # counted first: the rows below a deleted message go with it (ON DELETE CASCADE) uncounted
            doomed = conn.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND position > ?",
                                  (conversation_id, position)).fetchone()[0]
            conn.execute("DELETE FROM messages WHERE conversation_id = ? AND position > ?", (conversation_id, position))
            return doomed

    def import_conversation(self, title: str, messages: Sequence[NewMessage], system_prompt: str = "",
                            model: str = "", created_at: Optional[datetime] = None) -> Conversation:
        """A new conversation with all its messages, in one transaction (all or nothing).

        Each message's `parent` is an index into `messages` before its own (PREVIOUS: the one just
        before, None: a first message), so a tree comes back as it was exported. It sorts first in
        the list (updated_at is now): the user just brought it in.
        """
        now = now_us()
        created = now if created_at is None else datetime_to_us(created_at)
        with self._saving("import the conversation") as conn:
            conversation_id = conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at, system_prompt, model) "
                "VALUES (?, ?, ?, ?, ?)", (title, created, max(now, created), system_prompt, model)).lastrowid
            ids: list[int] = []
            for index, new in enumerate(messages):
                if new.state == "streaming":  # nothing will ever finish it
                    new = replace(new, state="cancelled")
                parent = (index - 1 if index else None) if new.parent == PREVIOUS else new.parent
                if parent is not None and not 0 <= parent < index:
                    raise ValueError(f"message {index}: its parent must be a message before it, not {parent}")
                ids.append(self._insert(conn, conversation_id, new, None if parent is None else ids[parent],
                                        new.active))
            return self.get_conversation(conversation_id)
