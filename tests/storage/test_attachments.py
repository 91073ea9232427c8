"""Images stored with messages: schema v6, freed on delete, kept by export/import, and a v5
database (built by the shipped migrations v1..v5, as the old code wrote it) migrated."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from chatapp.storage import migrations
from chatapp.storage.attachments import Attachment
from chatapp.storage.db import ConversationStore, StorageError
from chatapp.storage.export import export_json, import_json

PNG_A = b"\x89PNG\r\n\x1a\n" + b"a" * 100
PNG_B = b"\x89PNG\r\n\x1a\n" + b"b" * 50


def test_images_are_stored_in_order_and_shared_by_content(tmp_path):
    with ConversationStore(tmp_path / "c.db") as store:
        conv = store.create_conversation("pics")
        m = store.add_message(conv.id, "user", "two", images=[Attachment(PNG_A, "a.png"), Attachment(PNG_B, "b.png")])
        n = store.add_message(conv.id, "user", "again", images=[Attachment(PNG_A, "copy.png")])
        assert [(i.name, i.data) for i in store.attachments(m.id)] == [("a.png", PNG_A), ("b.png", PNG_B)]
        assert store.attachments(n.id) == [Attachment(PNG_A, "copy.png")]
        assert store.conversation_attachments(conv.id).keys() == {m.id, n.id}
        assert store.attachment_bytes() == len(PNG_A) + len(PNG_B)  # A once
        assert store.attachments(store.add_message(conv.id, "assistant", "ok").id) == []


def test_deleting_frees_the_images(tmp_path):
    with ConversationStore(tmp_path / "c.db") as store:
        keep = store.create_conversation("keep")
        store.add_message(keep.id, "user", "shared", images=[Attachment(PNG_A)])
        doomed = store.create_conversation("doomed")
        store.add_message(doomed.id, "user", "x", images=[Attachment(PNG_A), Attachment(PNG_B)])
        store.delete_conversation(doomed.id)  # soft delete: undo still brings the images back
        assert store.attachment_bytes() == len(PNG_A) + len(PNG_B)
        assert store.purge_deleted(older_than=timedelta(0)) == 1
        assert store.attachment_bytes() == len(PNG_A)  # B had no other message; A is still kept's
        store.truncate_after(keep.id, -1)
        assert store.attachment_bytes() == 0


def test_export_import_keeps_images(tmp_path):
    with ConversationStore(tmp_path / "c.db") as store:
        conv = store.create_conversation("pics")
        store.add_message(conv.id, "user", "look", images=[Attachment(PNG_A, "a.png")])
        store.add_message(conv.id, "assistant", "a picture")
        export_json(store, conv.id, tmp_path / "x.json")
        data = json.loads((tmp_path / "x.json").read_text())
        assert data["version"] == 3 and data["messages"][0]["images"][0]["name"] == "a.png"
        assert "images" not in data["messages"][1]
        again = import_json(store, tmp_path / "x.json")
        first = store.messages(again.id)[0]
        assert store.attachments(first.id) == [Attachment(PNG_A, "a.png")]
        data["messages"][0]["images"][0]["data"] = data["messages"][0]["images"][0]["data"][:-8] + "AAAAAAA="
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(StorageError, match=r"messages\[0\]\.images\[0\]\.data does not match its sha256"):
            import_json(store, tmp_path / "bad.json")
        data["messages"][0]["images"][0]["data"] = "not base64!"
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(StorageError, match=r"messages\[0\]\.images\[0\]\.data is not base64"):
            import_json(store, tmp_path / "bad.json")


def test_version_2_export_imports_without_images(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "chatapp.conversation", "version": 2, "title": "old", "messages": [
        {"role": "user", "content": "hi", "parent": None}, {"role": "assistant", "content": "hello", "parent": 0},
        {"role": "user", "content": "ignored", "images": [{"data": "!!"}], "parent": 1}]}))
    with ConversationStore(tmp_path / "c.db") as store:
        conv = import_json(store, path)
        assert [m.content for m in store.messages(conv.id)] == ["hi", "hello", "ignored"]
        assert store.conversation_attachments(conv.id) == {}


def test_v5_database_migrates_to_v6(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for steps in migrations.MIGRATIONS[:5]:  # shipped migrations never change: this is the v5 code's schema
        for step in steps:
            conn.execute(step) if isinstance(step, str) else step(conn)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 'old', 1, 2)")
    conn.execute("INSERT INTO messages (id, conversation_id, position, role, content, created_at, parent_id) "
                 "VALUES (1, 1, 0, 'user', 'before images', 1, NULL)")
    conn.close()
    with ConversationStore(path) as store:
        assert store.schema_version == 6
        assert [m.content for m in store.messages(1)] == ["before images"]
        assert store.attachments(1) == []
        m = store.add_message(1, "user", "now with one", images=[Attachment(PNG_B, "b.png")])
        assert store.attachments(m.id) == [Attachment(PNG_B, "b.png")]


def test_attachment_checks_itself():
    with pytest.raises(ValueError, match="needs its bytes"):
        Attachment(b"")
    from chatapp import limits
    with pytest.raises(ValueError, match="the limit is"):
        Attachment(b"x" * (limits.IMAGE_MAX_BYTES + 1), "huge.png")
