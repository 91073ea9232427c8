"""Schema v4: the document library a conversation chats with, kept and migrated."""

from __future__ import annotations

import sqlite3

import pytest

from chatapp.storage import migrations
from chatapp.storage.db import ConversationStore, NotFoundError


def test_library_is_stored_per_conversation_and_survives_reopening(tmp_path):
    path = tmp_path / "c.sqlite3"
    with ConversationStore(path) as store:
        a = store.create_conversation("a")
        b = store.create_conversation("b")
        assert store.get_conversation(a.id).library == ""
        store.set_library(a.id, "notes")
        with pytest.raises(NotFoundError):
            store.set_library(999, "notes")
        with pytest.raises(TypeError):
            store.set_library(a.id, None)
    with ConversationStore(path) as store:
        assert store.get_conversation(a.id).library == "notes"
        assert store.get_conversation(b.id).library == ""
        assert {c.id: c.library for c in store.list_conversations()} == {a.id: "notes", b.id: ""}
        store.set_library(a.id, "")
        assert store.get_conversation(a.id).library == ""


def test_a_v3_database_gains_the_library_column_with_its_sources_intact(tmp_path):
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path)
    for version in range(1, 4):  # the chain as it stood at v3
        for step in migrations.MIGRATIONS[version - 1]:
            conn.execute(step)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 'old', 1, 2)")
    conn.execute("INSERT INTO messages (id, conversation_id, position, role, content, created_at) "
                 "VALUES (7, 1, 0, 'assistant', 'It was Ada [1].', 3)")
    conn.execute("INSERT INTO message_sources VALUES (7, 1, '/d/a.md', 'H', 0, 5, 'Ada..', 'notes')")
    conn.commit()
    conn.close()
    with ConversationStore(path) as store:
        assert store.schema_version == 6
        assert store.get_conversation(1).library == ""
        assert [(s.number, s.path, s.library) for s in store.sources(7)] == [(1, "/d/a.md", "notes")]
        store.set_library(1, "notes")
        assert store.get_conversation(1).library == "notes"
