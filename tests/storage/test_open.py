"""Opening a database: migrations from old files, newer files refused, damaged files moved aside."""

from __future__ import annotations

import sqlite3

import pytest

from chatapp.storage import migrations
from chatapp.storage.db import (ConversationStore, CorruptDatabaseError, DatabaseTooNewError, StorageError,
                                move_aside)

# The schema as version 1 of the app wrote it, frozen here on purpose: the migration code must
# keep upgrading such files even after migrations.py has moved on.
V1_SCHEMA = [
    """CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT NOT NULL, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, system_prompt TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL, role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
        content TEXT NOT NULL, created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'complete' CHECK (state IN ('complete', 'streaming', 'cancelled', 'failed')),
        model TEXT NOT NULL DEFAULT '', settings_json TEXT NOT NULL DEFAULT '{}',
        stats_json TEXT NOT NULL DEFAULT '{}', finish_reason TEXT NOT NULL DEFAULT '',
        UNIQUE (conversation_id, position))""",
    "PRAGMA user_version = 1",
]
T0 = 1_700_000_000_000_000  # microseconds


def make_v1(path):
    conn = sqlite3.connect(path)
    for sql in V1_SCHEMA:
        conn.execute(sql)
    conn.execute("INSERT INTO conversations VALUES (1, 'Old chat', ?, ?, 'Be terse.', 'smol')", (T0, T0 + 5))
    conn.execute("INSERT INTO conversations VALUES (2, 'Older chat', ?, ?, '', '')", (T0 - 10, T0 - 10))
    rows = [
        (1, 1, 0, "user", "Quelle est la capitale de la France ?", T0 + 1, "complete", "", "{}", "{}", ""),
        (2, 1, 1, "assistant", "Paris.", T0 + 2, "complete", "smol", '{"temperature": 0.7}',
         '{"new_tokens": 3}', "stop"),
        (3, 1, 2, "assistant", "half a rep", T0 + 3, "streaming", "smol", "{}", "{}", ""),
    ]
    conn.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


def test_v1_database_is_migrated_with_data_intact(tmp_path):
    path = tmp_path / "old.sqlite3"
    make_v1(path)
    with ConversationStore(path) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION == 6
        convs = store.list_conversations()
        assert [(c.id, c.title, c.system_prompt, c.model, c.deleted_at) for c in convs] == [
            (1, "Old chat", "Be terse.", "smol", None), (2, "Older chat", "", "", None)]
        assert convs[0].created_at.timestamp() == T0 / 1e6
        msgs = store.messages(1)
        assert [(m.id, m.position, m.role, m.content, m.state) for m in msgs] == [
            (1, 0, "user", "Quelle est la capitale de la France ?", "complete"),
            (2, 1, "assistant", "Paris.", "complete"),
            (3, 2, "assistant", "half a rep", "cancelled")]  # the v1 app was killed mid-reply
        assert (msgs[1].settings, msgs[1].stats, msgs[1].finish_reason) == ({"temperature": 0.7}, {"new_tokens": 3},
                                                                            "stop")
        # the new features work on the old data: soft delete (v2) and search (index built at open)
        assert [c.title for c, _ in store.search("capitale")] == ["Old chat"]
        store.delete_conversation(2)
        assert [c.id for c in store.list_conversations()] == [1]
        indexes = {n for (n,) in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"conversations_by_activity", "messages_streaming"} <= indexes
        assert store.check_integrity() == "ok"


def test_failed_migration_leaves_the_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite3"
    make_v1(path)
    before = path.read_bytes()
    broken = migrations.MIGRATIONS + (("CREATE INDEX broken ON no_such_table (x)",),)
    last = len(broken)
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", last)
    monkeypatch.setattr("chatapp.storage.db.SCHEMA_VERSION", last)
    with pytest.raises(StorageError, match=f"could not upgrade the history from schema 1 to {last} .*no_such_table"):
        ConversationStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    cols = [r[1] for r in conn.execute("PRAGMA table_info(conversations)")]
    assert "deleted_at" not in cols  # v2 was rolled back with the failing last one
    assert conn.execute("SELECT state FROM messages WHERE id = 3").fetchone()[0] == "streaming"
    conn.close()
    monkeypatch.undo()
    with ConversationStore(path) as store:  # the real code still opens it
        assert store.schema_version == migrations.SCHEMA_VERSION and len(store.messages(1)) == 3
    assert before[:16] == b"SQLite format 3\x00"


def test_newer_database_is_refused_and_not_changed(tmp_path):
    path = tmp_path / "future.sqlite3"
    with ConversationStore(path) as store:
        store.create_conversation("from the future")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseTooNewError) as info:
        ConversationStore(path)
    message = str(info.value)
    assert str(path) in message and "newer" in message and "schema 99" in message and "update the app" in message
    assert isinstance(info.value, StorageError) and not isinstance(info.value, CorruptDatabaseError)
    assert path.read_bytes() == before


def test_not_a_database_is_corrupt_and_moved_aside_intact(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    garbage = b"this is not an SQLite file\x00\xff" * 300
    path.write_bytes(garbage)
    with pytest.raises(CorruptDatabaseError) as info:
        ConversationStore(path)
    assert str(path) in str(info.value) and "not a database" in str(info.value)
    # sidecars travel with it: a stale -wal next to the new file would be replayed into it
    (tmp_path / "conversations.sqlite3-wal").write_bytes(b"stale wal")
    aside = move_aside(path)
    assert aside.parent == tmp_path and aside.name.startswith("conversations.sqlite3.corrupt-")
    assert aside.read_bytes() == garbage and not path.exists()
    assert (tmp_path / (aside.name + "-wal")).read_bytes() == b"stale wal"
    assert not (tmp_path / "conversations.sqlite3-wal").exists()
    with ConversationStore(path) as fresh:  # the app starts a new history at the same path
        assert fresh.list_conversations() == []
    path.write_bytes(b"again")
    second = move_aside(path)  # same second: a different name, nothing overwritten
    assert second != aside and aside.read_bytes() == garbage and second.read_bytes() == b"again"
    with pytest.raises(FileNotFoundError):
        move_aside(tmp_path / "missing.sqlite3")


def test_damaged_pages_are_detected(tmp_path):
    path = tmp_path / "db.sqlite3"
    with ConversationStore(path) as store:
        conv = store.create_conversation("c")
        for i in range(300):
            store.add_message(conv.id, "user", f"message {i} " + "x" * 200)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 10 * page
    data[3 * page:8 * page] = b"\xa5" * (5 * page)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabaseError, match=str(path)):
        ConversationStore(path)


def test_foreign_sqlite_file_is_not_taken_over(tmp_path):
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptDatabaseError, match="not a chatapp conversation history"):
        ConversationStore(path)


def test_missing_folder_is_created_and_unopenable_path_is_storage_error(tmp_path):
    with ConversationStore(tmp_path / "a" / "b" / "db.sqlite3") as store:
        assert store.list_conversations() == []
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StorageError) as info:
        ConversationStore(tmp_path / "dir.sqlite3")
    assert not isinstance(info.value, (CorruptDatabaseError, DatabaseTooNewError))


def test_index_survives_a_build_without_fts5(tmp_path):
    """A file used by a SQLite without FTS5 gets its index rebuilt by the next one that has it."""
    path = tmp_path / "db.sqlite3"
    with ConversationStore(path) as store:
        assert store.search_backend == "fts5"
        conv = store.create_conversation("c")
        store.add_message(conv.id, "user", "written with the index")
    with ConversationStore(path, use_fts=False) as store:  # stands in for a build without FTS5
        triggers = store._conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'messages_fts%'").fetchone()[0]
        assert triggers == 0
        store.add_message(conv.id, "user", "written without the index")
        assert [c.id for c, _ in store.search("without the")] == [conv.id]
    with ConversationStore(path) as store:
        assert store.search_backend == "fts5"
        assert [s for _, s in store.search("without the")] == ["written without the index"]
        assert [s for _, s in store.search("with the index")] == ["written with the index"]


def test_the_wal_switch_waits_out_another_process_opening_the_same_new_file(tmp_path):
    """SQLite can answer "database is locked" to the switch at once (no busy wait), as it did to a
    second process opening one new file on a loaded machine; use_wal retries within its timeout."""
    import threading

    from chatapp.sqlite_wal import use_wal

    path = tmp_path / "conversations.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # the other process, between creating the file and its first commit
    opener = sqlite3.connect(path, timeout=0, isolation_level=None)  # no busy handler: only the retry waits
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        opener.execute("PRAGMA journal_mode = WAL")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(opener, timeout_s=0.2)  # a lock held past the timeout still fails, with SQLite's error
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        assert use_wal(opener, timeout_s=5.0) == "wal"
    finally:
        release.join()
        opener.close()
        holder.close()
    store = ConversationStore(path)  # and the store opens the file the two left
    store.close()
