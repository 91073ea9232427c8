"""ConversationStore: CRUD, ordering, search, soft delete, streaming replies and their recovery."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest

from chatapp.storage.db import (ConversationStore, Message, NewMessage, NotFoundError, StorageError,
                                snippet)


@pytest.fixture
def store(tmp_path):
    with ConversationStore(tmp_path / "conversations.sqlite3") as s:
        yield s


def test_pragmas_and_schema(store, tmp_path):
    assert store.schema_version == 6
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.check_integrity() == "ok"
    assert (tmp_path / "conversations.sqlite3").is_file()


def test_create_get_rename_system_prompt(store):
    conv = store.create_conversation("First", system_prompt="Be brief.", model="smol")
    got = store.get_conversation(conv.id)
    assert got == conv
    assert (got.title, got.system_prompt, got.model, got.deleted_at) == ("First", "Be brief.", "smol", None)
    assert got.created_at == got.updated_at and got.created_at.tzinfo is not None
    store.rename(conv.id, "Renamed")
    store.set_system_prompt(conv.id, "Answer in French.")
    got = store.get_conversation(conv.id)
    assert (got.title, got.system_prompt) == ("Renamed", "Answer in French.")
    assert got.updated_at == conv.updated_at  # a rename is not activity
    with pytest.raises(NotFoundError, match="no conversation with id 999"):
        store.get_conversation(999)
    with pytest.raises(NotFoundError):
        store.rename(999, "x")


def test_messages_positions_and_metadata(store):
    conv = store.create_conversation("c")
    u = store.add_message(conv.id, "user", "Hi there")
    a = store.add_message(conv.id, "assistant", "Hello!", model="smol", settings={"temperature": 0.7},
                          stats={"new_tokens": 2, "decode_tok_s": 12.5}, finish_reason="stop")
    assert isinstance(u, Message)
    assert (u.position, u.role, u.content, u.state, u.settings) == (0, "user", "Hi there", "complete", {})
    assert (a.position, a.model, a.settings, a.stats, a.finish_reason) == (
        1, "smol", {"temperature": 0.7}, {"new_tokens": 2, "decode_tok_s": 12.5}, "stop")
    assert store.messages(conv.id) == [u, a]
    assert store.messages(12345) == []
    with pytest.raises(ValueError, match="role must be one of"):
        store.add_message(conv.id, "robot", "x")
    with pytest.raises(NotFoundError):
        store.add_message(999, "user", "orphan")
    assert [m.content for m in store.messages(conv.id)] == ["Hi there", "Hello!"]


def test_list_is_newest_activity_first(store):
    a = store.create_conversation("a")
    b = store.create_conversation("b")
    c = store.create_conversation("c")
    assert [x.title for x in store.list_conversations()] == ["c", "b", "a"]
    store.add_message(a.id, "user", "bump")
    assert [x.title for x in store.list_conversations()] == ["a", "c", "b"]
    reply = store.begin_reply(b.id, "other-model", {})
    assert [x.title for x in store.list_conversations()] == ["b", "a", "c"]
    assert store.get_conversation(b.id).model == "other-model"
    store.finish_reply(reply, "done")
    store.rename(c.id, "c2")
    assert [x.title for x in store.list_conversations()] == ["b", "a", "c2"]


def test_soft_delete_restore_purge(store):
    keep = store.create_conversation("keep")
    gone = store.create_conversation("gone")
    store.add_message(gone.id, "user", "unique needle text")
    store.delete_conversation(gone.id)
    assert [c.title for c in store.list_conversations()] == ["keep"]
    assert [c.title for c in store.list_deleted()] == ["gone"]
    assert store.search("needle") == []
    assert store.get_conversation(gone.id).deleted_at is not None
    store.restore(gone.id)
    assert {c.title for c in store.list_conversations()} == {"keep", "gone"}
    assert [c.title for c, _ in store.search("needle")] == ["gone"]
    assert store.messages(gone.id)[0].content == "unique needle text"

    store.delete_conversation(gone.id)
    assert store.purge_deleted(older_than=timedelta(days=30)) == 0  # too recent
    assert store.purge_deleted(older_than=timedelta(0)) == 1
    with pytest.raises(NotFoundError):
        store.get_conversation(gone.id)
    assert store.messages(gone.id) == []  # cascaded
    assert store._conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert [c.title for c in store.list_conversations()] == [keep.title]


@pytest.mark.parametrize("use_fts", [None, False])
def test_search_titles_messages_chinese(tmp_path, use_fts):
    with ConversationStore(tmp_path / "db.sqlite3", use_fts=use_fts) as store:
        assert store.search_backend == ("fts5" if use_fts is None else "like")
        weather = store.create_conversation("天气预报")
        said = "今天天气很好，我们去公园散步吧。"
        store.add_message(weather.id, "user", said)
        code = store.create_conversation("Python help")
        store.add_message(code.id, "user", "How do I reverse a list?")
        store.add_message(code.id, "assistant", "Use `items[::-1]` or items.reverse() — 100% in place.")
        store.create_conversation("Empty one")

        assert [(c.title, s) for c, s in store.search("天气")] == [("天气预报", said)]
        assert [(c.title, s) for c, s in store.search("公园散步")] == [("天气预报", said)]
        assert [(c.title, s) for c, s in store.search("预报")] == [("天气预报", "天气预报")]
        assert [c.title for c, _ in store.search("REVERSE a")] == ["Python help"]
        assert [c.title for c, _ in store.search("  help ")] == ["Python help"]
        assert [c.title for c, _ in store.search("100%")] == ["Python help"]
        assert store.search("10_%") == []  # LIKE wildcards are literal
        assert [c.title for c, _ in store.search('"quoted')] == []
        assert [c.title for c, _ in store.search("o")] == ["Empty one", "Python help"]
        assert store.search("") == [] and store.search("absent words") == []
        # edits are indexed: a streaming reply is searchable once saved
        reply = store.begin_reply(weather.id, "m", {})
        store.update_reply(reply, "Sunny with a light breeze")
        assert [c.title for c, _ in store.search("light breeze")] == ["天气预报"]
        store.truncate_after(weather.id, 0)
        assert store.search("light breeze") == []


def test_snippet_is_one_line_around_the_match():
    text = "intro line\n" + "x " * 100 + "the needle is here\n" + "y " * 100
    s = snippet(text, "needle", width=40)
    assert "needle" in s and "\n" not in s and s.startswith("…") and s.endswith("…")
    assert len(s) == 42
    assert snippet("short text", "short") == "short text"


def test_streaming_reply_lifecycle(store):
    conv = store.create_conversation("c")
    store.add_message(conv.id, "user", "Tell me a story")
    reply = store.begin_reply(conv.id, "smol", {"temperature": 0.8, "top_p": 0.9})
    m = store.messages(conv.id)[-1]
    assert (m.id, m.role, m.state, m.content, m.settings) == (
        reply, "assistant", "streaming", "", {"temperature": 0.8, "top_p": 0.9})
    assert store.update_reply(reply, "Once upon") is True
    assert store.messages(conv.id)[-1].content == "Once upon"
    stats = {"prompt_tokens": 12, "new_tokens": 40, "ttft_s": 0.21, "decode_tok_s": 17.5}
    assert store.finish_reply(reply, "Once upon a time.", state="complete", finish_reason="stop", stats=stats)
    m = store.messages(conv.id)[-1]
    assert (m.content, m.state, m.finish_reason, m.stats, m.model) == (
        "Once upon a time.", "complete", "stop", stats, "smol")
    assert store.update_reply(reply, "late save") is False  # a finished reply is not overwritten
    assert store.messages(conv.id)[-1].content == "Once upon a time."
    with pytest.raises(ValueError):
        store.finish_reply(reply, "x", state="streaming")
    assert store.finish_reply(424242, "x") is False


def test_interrupted_reply_becomes_cancelled_at_open(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = ConversationStore(path)
    conv = store.create_conversation("c")
    store.add_message(conv.id, "user", "question")
    reply = store.begin_reply(conv.id, "smol", {"seed": 1})
    store.update_reply(reply, "partial answ")
    store.close()  # no finish_reply: the app was killed
    with ConversationStore(path) as reopened:
        assert reopened.recovered_replies == 1
        m = reopened.messages(conv.id)[-1]
        assert (m.id, m.state, m.content, m.finish_reason, m.settings) == (
            reply, "cancelled", "partial answ", "interrupted", {"seed": 1})
    with ConversationStore(path) as again:
        assert again.recovered_replies == 0


def test_truncate_after_for_regenerate_and_edit(store):
    conv = store.create_conversation("c")
    for i, role in enumerate(["user", "assistant", "user", "assistant"]):
        store.add_message(conv.id, role, f"m{i}")
    assert store.truncate_after(conv.id, 2) == 1  # regenerate the last reply
    assert [m.content for m in store.messages(conv.id)] == ["m0", "m1", "m2"]
    new = store.add_message(conv.id, "assistant", "m3b")
    assert new.position == 3
    assert store.truncate_after(conv.id, 1) == 2  # edit the second user message
    store.add_message(conv.id, "user", "edited")
    assert [(m.position, m.content) for m in store.messages(conv.id)] == [(0, "m0"), (1, "m1"), (2, "edited")]
    assert store.truncate_after(conv.id, -1) == 3
    assert store.messages(conv.id) == []
    with pytest.raises(NotFoundError):
        store.truncate_after(999, 0)


def test_import_conversation_is_all_or_nothing(store, monkeypatch):
    good = NewMessage("user", "fine")
    with pytest.raises(ValueError):
        NewMessage("user", "x", state="done")
    conv = store.import_conversation("imported", [good, NewMessage("assistant", "half", state="streaming")])
    assert [(m.content, m.state) for m in store.messages(conv.id)] == [("fine", "complete"), ("half", "cancelled")]

    real_insert, calls = ConversationStore._insert, []

    def failing_insert(self, conn, conversation_id, new, *args):
        calls.append(new.content)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real_insert(self, conn, conversation_id, new, *args)

    monkeypatch.setattr(ConversationStore, "_insert", failing_insert)
    with pytest.raises(StorageError, match="could not import the conversation .*disk I/O error"):
        store.import_conversation("broken", [good, NewMessage("assistant", "second"), good])
    assert calls == ["fine", "second"]
    assert [c.title for c in store.list_conversations()] == ["imported"]
    assert store._conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2


def test_threads_share_one_store(store):
    convs = [store.create_conversation(f"t{i}") for i in range(4)]

    def writer(conv_id):
        for i in range(25):
            store.add_message(conv_id, "user", f"{conv_id}-{i}")

    threads = [threading.Thread(target=writer, args=(c.id,)) for c in convs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in convs:
        assert [m.content for m in store.messages(c.id)] == [f"{c.id}-{i}" for i in range(25)]
        assert [m.position for m in store.messages(c.id)] == list(range(25))


def test_write_errors_become_storage_error(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = ConversationStore(path)
    conv = store.create_conversation("c")
    other = sqlite3.connect(path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store._conn.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(StorageError, match="could not save the message .*locked"):
        store.add_message(conv.id, "user", "blocked")
    other.rollback()
    other.close()
    assert store.add_message(conv.id, "user", "later").position == 0
    store.close()


# -- sources stored with a reply (chat with documents) ------------------------------------

def test_sources_are_saved_read_back_and_go_with_their_message(store):
    from types import SimpleNamespace

    from chatapp.storage.db import MessageSource

    conv = store.create_conversation("docs")
    store.add_message(conv.id, "user", "Who founded the guild?")
    reply = store.begin_reply(conv.id)
    store.finish_reply(reply, "Orla Membrane [1].")
    store.save_sources(reply, [
        {"number": 1, "path": "/docs/guild.md", "heading": "Guild > Founding", "start": 10, "end": 64,
         "text": "The guild was founded by Orla Membrane."},
        SimpleNamespace(number=2, path="/docs/boats.txt", heading="", start=0, end=20, text="Boats are blue."),
    ], library="notes")
    assert store.sources(reply) == [
        MessageSource(1, "/docs/guild.md", "Guild > Founding", 10, 64, "The guild was founded by Orla Membrane.",
                      "notes"),
        MessageSource(2, "/docs/boats.txt", "", 0, 20, "Boats are blue.", "notes")]
    # Saving again replaces (a regenerated reply cites other passages).
    store.save_sources(reply, [{"number": 1, "path": "/p", "start": 0, "end": 1, "text": "x"}])
    assert [(s.number, s.path, s.heading) for s in store.sources(reply)] == [(1, "/p", "")]
    assert store.sources(reply + 100) == []
    # Regenerate / edit removes the reply, and its sources with it.
    store.truncate_after(conv.id, 0)
    assert store._conn.execute("SELECT count(*) FROM message_sources").fetchone()[0] == 0


def test_bad_sources_are_refused(store):
    conv = store.create_conversation("docs")
    reply = store.add_message(conv.id, "assistant", "hi").id
    with pytest.raises(ValueError, match="number >= 1"):
        store.save_sources(reply, [{"number": 0, "path": "/p", "start": 0, "end": 1, "text": "x"}])
    with pytest.raises(ValueError, match="path, start, end and text"):
        store.save_sources(reply, [{"number": 1, "path": "/p"}])
    with pytest.raises(NotFoundError):
        store.save_sources(reply + 1, [{"number": 1, "path": "/p", "start": 0, "end": 1, "text": "x"}])
    assert store.sources(reply) == []


def test_a_migration_step_may_be_a_function(tmp_path, monkeypatch):
    """The one chain takes data-moving steps too."""
    from chatapp.storage import migrations

    path = tmp_path / "c.sqlite3"
    with ConversationStore(path) as s:
        conv = s.create_conversation("c")
        s.add_message(conv.id, "user", "a")
        s.add_message(conv.id, "assistant", "b")

    def add_previous(conn):
        conn.execute("ALTER TABLE messages ADD COLUMN previous_id INTEGER")
        conn.execute("UPDATE messages SET previous_id = (SELECT p.id FROM messages p WHERE p.conversation_id = "
                     "messages.conversation_id AND p.position = messages.position - 1)")

    chain = migrations.MIGRATIONS + ((add_previous,),)
    monkeypatch.setattr(migrations, "MIGRATIONS", chain)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(chain))
    monkeypatch.setattr("chatapp.storage.db.SCHEMA_VERSION", len(chain))
    with ConversationStore(path) as s:
        assert s.schema_version == len(chain)
        rows = s._conn.execute("SELECT content, previous_id FROM messages ORDER BY position").fetchall()
        assert rows == [("a", None), ("b", 1)]
