"""Markdown and JSON export; JSON import round trip; bad import files named and explained."""

from __future__ import annotations

import json
import os

import pytest

from chatapp.storage.db import ConversationStore, StorageError
from chatapp.storage.export import (FORMAT, conversation_dict, export_json, export_markdown, import_json,
                                    parse_conversation)

CODE_REPLY = (
    "Here is the function:\n\n"
    "```python\n"
    "def add(a, b):\n"
    "    # keep    the spacing\n"
    "    return a + b\n"
    "```\n\n"
    "Tabs\tand trailing spaces   stay."
)
STATS = {"prompt_tokens": 31, "new_tokens": 27, "ttft_s": 0.182, "decode_tok_s": 17.3}
SETTINGS = {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "seed": 7}


@pytest.fixture
def store(tmp_path):
    with ConversationStore(tmp_path / "db.sqlite3") as s:
        yield s


@pytest.fixture
def conv(store):
    c = store.create_conversation("Adding numbers 加法", system_prompt="You write Python.\nBe brief.")
    store.add_message(c.id, "user", "Write add() in Python, 请。")
    reply = store.begin_reply(c.id, "SmolLM2-135M", SETTINGS)
    store.finish_reply(reply, CODE_REPLY, state="complete", finish_reason="stop", stats=STATS)
    store.add_message(c.id, "user", "And in Rust?")
    stopped = store.begin_reply(c.id, "SmolLM2-135M", SETTINGS)
    store.finish_reply(stopped, "```rust\nfn add(a: i32", state="cancelled", finish_reason="cancelled", stats={})
    return store.get_conversation(c.id)


def test_markdown(store, conv, tmp_path):
    path = tmp_path / "out" / "chat.md"
    export_markdown(store, conv.id, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Adding numbers 加法\n\n*")
    assert "## System prompt\n\nYou write Python.\nBe brief.\n\n## User\n\nWrite add() in Python, 请。\n\n" in text
    assert "## Assistant (SmolLM2-135M)\n\n" + CODE_REPLY + "\n\n## User\n\nAnd in Rust?\n\n" in text
    # a reply stopped inside a code block gets its fence closed so the rest still renders
    assert text.endswith("## Assistant (SmolLM2-135M)\n\n```rust\nfn add(a: i32\n```\n\n*(stopped)*\n")
    assert [p.name for p in path.parent.iterdir()] == ["chat.md"]  # no temp file left behind


def test_json_shape(store, conv, tmp_path):
    path = tmp_path / "chat.json"
    export_json(store, conv.id, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"], data["title"]) == ("chatapp.conversation", 3, "Adding numbers 加法")
    assert data["system_prompt"] == "You write Python.\nBe brief."
    assert data["created_at"] == conv.created_at.isoformat()
    assert [m["role"] for m in data["messages"]] == ["user", "assistant", "user", "assistant"]
    reply = data["messages"][1]
    assert reply == {"role": "assistant", "content": CODE_REPLY, "created_at": reply["created_at"],
                     "state": "complete", "model": "SmolLM2-135M", "settings": SETTINGS, "stats": STATS,
                     "finish_reason": "stop", "parent": 0, "active": True}
    assert "加法" in path.read_text(encoding="utf-8")  # readable, not \u escapes


def test_json_round_trip_field_by_field(store, conv, tmp_path):
    path = tmp_path / "chat.json"
    export_json(store, conv.id, path)
    imported = import_json(store, path)
    assert imported.id != conv.id
    for name in ("title", "system_prompt", "model", "created_at"):
        assert getattr(imported, name) == getattr(conv, name), name
    assert store.list_conversations()[0].id == imported.id  # the import shows first
    original, copy = store.messages(conv.id), store.messages(imported.id)
    assert len(copy) == len(original) == 4
    for a, b in zip(original, copy):
        for name in ("position", "role", "content", "created_at", "state", "model", "settings", "stats",
                     "finish_reason"):
            assert getattr(b, name) == getattr(a, name), name
        assert b.conversation_id == imported.id
    # and exporting the copy gives the same document
    again = tmp_path / "again.json"
    export_json(store, imported.id, again)
    assert json.loads(again.read_text()) == json.loads(path.read_text())


def test_minimal_hand_written_file_imports(store, tmp_path):
    path = tmp_path / "hand.json"
    path.write_text(json.dumps({"format": FORMAT, "version": 1, "title": "Hand made", "messages": [
        {"role": "user", "content": "hi", "created_at": "2024-05-01T12:00:00Z"},
        {"role": "assistant", "content": "hello", "settings": None}]}), encoding="utf-8")
    conv = import_json(store, path)
    assert (conv.title, conv.system_prompt, conv.model) == ("Hand made", "", "")
    msgs = store.messages(conv.id)
    assert [(m.role, m.content, m.state, m.settings) for m in msgs] == [
        ("user", "hi", "complete", {}), ("assistant", "hello", "complete", {})]
    assert msgs[0].created_at.isoformat() == "2024-05-01T12:00:00+00:00"


VALID = {"format": FORMAT, "version": 1, "title": "t", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize("content, problem", [
    (b"{ not json", "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 3)"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({**VALID, "format": "gpt4all"}).encode(), "not a chatapp conversation export (format is 'gpt4all'"),
    (json.dumps({**VALID, "version": 4}).encode(), "format version 4 is newer than this app reads (3); update the app"),
    (json.dumps({**VALID, "version": 2, "messages": [{"role": "user", "content": "a", "parent": 0}]}).encode(),
     "field messages[0].parent must be the index of an earlier message or null, not 0"),
    (json.dumps({**VALID, "version": 2, "messages": [{"role": "user", "content": "a"},
                                                     {"role": "user", "content": "b", "parent": True}]}).encode(),
     "field messages[1].parent must be the index of an earlier message or null, not True"),
    (json.dumps({**VALID, "version": 2, "messages": [{"role": "user", "content": "a", "active": "yes"}]}).encode(),
     "field messages[0].active must be bool, not str"),
    (json.dumps({**VALID, "version": "1"}).encode(), "field version must be int, not str"),
    (json.dumps({k: v for k, v in VALID.items() if k != "title"}).encode(), "missing field title"),
    (json.dumps({k: v for k, v in VALID.items() if k != "messages"}).encode(), "missing field messages"),
    (json.dumps({**VALID, "messages": [{"role": "user"}]}).encode(), "missing field messages[0].content"),
    (json.dumps({**VALID, "messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}).encode(),
     "field messages[1].role must be one of user, assistant, system, not 'robot'"),
    (json.dumps({**VALID, "messages": ["hi"]}).encode(), "messages[0] must be an object"),
    (json.dumps({**VALID, "messages": [{"role": "user", "content": "a", "created_at": "yesterday"}]}).encode(),
     "field messages[0].created_at is not an ISO 8601 time: 'yesterday'"),
    (json.dumps({**VALID, "messages": [{"role": "user", "content": "a", "stats": [1]}]}).encode(),
     "field messages[0].stats must be dict, not list"),
])
def test_bad_import_files_are_explained(store, tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(StorageError) as info:
        import_json(store, path)
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)
    assert info.value.path == path
    assert store.list_conversations() == []  # nothing half-imported


def test_missing_import_file(store, tmp_path):
    with pytest.raises(StorageError, match="missing.json: cannot read the file"):
        import_json(store, tmp_path / "missing.json")


def test_export_write_failure_is_storage_error_and_keeps_old_file(store, conv, tmp_path, monkeypatch):
    path = tmp_path / "chat.json"
    path.write_text("previous export")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StorageError, match="chat.json: could not write the export .No space left on device"):
        export_json(store, conv.id, path)
    monkeypatch.undo()
    assert path.read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("chat", ".chat"))) == ["chat.json"]
    (tmp_path / "a_file").write_text("")
    with pytest.raises(StorageError, match="could not write the export"):
        export_markdown(store, conv.id, tmp_path / "a_file" / "chat.md")


def test_parse_conversation_accepts_its_own_output(store, conv):
    header, messages = parse_conversation(conversation_dict(conv, store.messages(conv.id)))
    assert header["title"] == conv.title and len(messages) == 4
    assert messages[1].stats == STATS


def test_markdown_names_a_system_prompt_that_changed_after_a_reply(store, tmp_path):
    c = store.create_conversation("Prompts", system_prompt="Be terse.")
    store.add_message(c.id, "user", "hi")
    old = store.begin_reply(c.id, "M", dict(SETTINGS, system_prompt="Answer in French."))
    store.finish_reply(old, "Bonjour", stats=STATS)
    store.add_message(c.id, "user", "again")
    new = store.begin_reply(c.id, "M", dict(SETTINGS, system_prompt="Be terse."))
    store.finish_reply(new, "Hi.", stats=STATS)
    path = tmp_path / "p.md"
    export_markdown(store, c.id, path)
    text = path.read_text(encoding="utf-8")
    assert "## System prompt\n\nBe terse.\n\n" in text
    assert "## Assistant (M)\n\n*System prompt for this reply:*\n\n> Answer in French.\n\nBonjour" in text
    assert "## Assistant (M)\n\nHi.\n" in text  # the current prompt is not repeated
    export_json(store, c.id, tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert [m["settings"].get("system_prompt") for m in data["messages"][1::2]] == ["Answer in French.", "Be terse."]
