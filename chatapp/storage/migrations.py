"""Schema of the conversations database: ordered migrations plus a derived search index.

`PRAGMA user_version` holds the number of migrations applied. A migration is a tuple of steps,
each an SQL statement or a function of the connection (for a step that moves data, such as
turning the message list into a message tree); never edit one that has shipped, append a new
one instead (old databases replay the list from where they stopped). `ConversationStore`
applies the missing ones in one transaction at open, so a database is either fully at the new
version or untouched. A step that rebuilds `messages` (create new, copy, drop, rename) keeps
`message_sources` pointing at it: SQLite rewrites foreign keys on rename.

The full-text index (FTS5, trigram tokenizer) is derived data, kept outside the numbered
migrations on purpose: whether it can exist depends on how the running Python's SQLite was
built, not on the schema. `sync_search_index` creates or rebuilds it at open when FTS5 is
available, and removes its triggers when it is not (so that writes keep working on a build
without FTS5; the index is rebuilt the next time a build with FTS5 opens the file).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Callable, Union

from . import attachments

log = logging.getLogger(__name__)

# Timestamps are INTEGER microseconds since the Unix epoch, UTC: exact, sortable, and they
# convert to and from `datetime` without rounding.
_V1 = (
    """CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        system_prompt TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
        content TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'complete'
            CHECK (state IN ('complete', 'streaming', 'cancelled', 'failed')),
        model TEXT NOT NULL DEFAULT '',
        settings_json TEXT NOT NULL DEFAULT '{}',
        stats_json TEXT NOT NULL DEFAULT '{}',
        finish_reason TEXT NOT NULL DEFAULT '',
        UNIQUE (conversation_id, position)
    )""",
)

# v2: soft delete (undo in the window, purge later) and an index for the sidebar's order;
# a partial index so the open-time recovery of interrupted replies does not scan every message.
_V2 = (
    "ALTER TABLE conversations ADD COLUMN deleted_at INTEGER",
    "CREATE INDEX conversations_by_activity ON conversations (deleted_at, updated_at)",
    "CREATE INDEX messages_streaming ON messages (state) WHERE state = 'streaming'",
)

# v3: the passages a reply was given (chat with documents), numbered as cited in the reply;
# deleted with their message.
_V3 = (
    """CREATE TABLE message_sources (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        number INTEGER NOT NULL CHECK (number >= 1),
        path TEXT NOT NULL,
        heading TEXT NOT NULL DEFAULT '',
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        text TEXT NOT NULL,
        library TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (message_id, number)
    )""",
)

# v4: the document library a conversation chats with ('' for none), chosen beside the composer
# and restored when the conversation is reopened.
_V4 = (
    "ALTER TABLE conversations ADD COLUMN library TEXT NOT NULL DEFAULT ''",
)

# v5: the messages of a conversation form a tree (regenerate, edit-and-resend and "continue from
# this alternative" add siblings instead of deleting). `parent_id` is the message answered or
# followed (NULL for a first message); among the children of one parent, the one with `active`
# set is on the path shown and given to the model. `position` stays unique per conversation and
# becomes the order of creation, so a parent always comes before its children. Every existing
# conversation becomes one path: each message's parent is the message before it, all active.
_V5 = (
    "ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE",
    "ALTER TABLE messages ADD COLUMN active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))",
    """UPDATE messages SET parent_id = (SELECT p.id FROM messages p
        WHERE p.conversation_id = messages.conversation_id AND p.position < messages.position
        ORDER BY p.position DESC LIMIT 1)""",
    "CREATE INDEX messages_by_parent ON messages (parent_id)",
)

# v6: images stored with messages (storage/attachments.py): bytes once per content, freed with
# the last message that holds them.
_V6 = attachments.V6

Step = Union[str, Callable[[sqlite3.Connection], None]]
MIGRATIONS: tuple[tuple[Step, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION = len(MIGRATIONS)
OUR_TABLES = frozenset({"conversations", "messages", "message_sources"}) | attachments.TABLES

FTS_TABLE = "message_fts"
_FTS_CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "content, content='messages', content_rowid='id', tokenize='trigram')"
)
# External-content FTS table kept in step by triggers, inside the writer's own transaction.
_FTS_TRIGGERS = {
    "messages_fts_insert": f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO {FTS_TABLE} (rowid, content) VALUES (new.id, new.content);
    END""",
    "messages_fts_delete": f"""CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
    END""",
    "messages_fts_update": f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO {FTS_TABLE} (rowid, content) VALUES (new.id, new.content);
    END""",
}


def apply_migrations(conn: sqlite3.Connection, from_version: int) -> None:
    """Run migrations `from_version`+1 .. SCHEMA_VERSION; the caller owns the transaction."""
    for version in range(from_version + 1, SCHEMA_VERSION + 1):
        log.info("migrating conversations database to schema version %d", version)
        for step in MIGRATIONS[version - 1]:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
        # user_version is part of the database header, so it commits or rolls back with the rest.
        conn.execute(f"PRAGMA user_version = {version:d}")


def fts5_trigram_available(conn: sqlite3.Connection) -> bool:
    """True when this SQLite has FTS5 with the trigram tokenizer (SQLite >= 3.34)."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.fts5_probe")
    return True


def sync_search_index(conn: sqlite3.Connection, use_fts: bool) -> None:
    """Bring the derived full-text index in line with `use_fts`; the caller owns the transaction."""
    existing = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    if not use_fts:
        for trigger in _FTS_TRIGGERS:
            if trigger in existing:
                log.info("no FTS5 in this SQLite: dropping search trigger %s (index rebuilt later)", trigger)
                conn.execute(f"DROP TRIGGER {trigger}")
        return
    if FTS_TABLE in existing and all(t in existing for t in _FTS_TRIGGERS):
        return
    log.info("building the full-text search index")
    conn.execute(_FTS_CREATE)
    for trigger, sql in _FTS_TRIGGERS.items():
        if trigger not in existing:
            conn.execute(sql)
    conn.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')")
