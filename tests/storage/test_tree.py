"""Schema v5: the message tree (versions of a message side by side), its migration and its rules."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from chatapp.storage import migrations, tree
from chatapp.storage.db import ConversationStore, NotFoundError


@pytest.fixture
def store(tmp_path):
    with ConversationStore(tmp_path / "conversations.sqlite3") as s:
        yield s


def _v4_database(path):
    """A database as the v4 app left it: the chain as it stood at v4, rows written as that code wrote them."""
    conn = sqlite3.connect(path)
    for version in range(1, 5):
        for step in migrations.MIGRATIONS[version - 1]:
            conn.execute(step)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at, library) VALUES (1, 'old', 1, 9, 'notes')")
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (2, 'other', 1, 5)")
    rows = [(10, 1, 0, "user", "Who was Ada?"), (11, 1, 1, "assistant", "It was Ada [1]."),
            (12, 1, 2, "user", "And then?"), (13, 1, 3, "assistant", "She wrote notes."),
            (20, 2, 0, "user", "hello"), (21, 2, 1, "assistant", "hi there")]
    conn.executemany("INSERT INTO messages (id, conversation_id, position, role, content, created_at) "
                     "VALUES (?, ?, ?, ?, ?, 3)", rows)
    conn.execute("INSERT INTO message_sources VALUES (11, 1, '/d/a.md', 'H', 0, 5, 'Ada..', 'notes')")
    conn.commit()
    conn.close()


def test_a_v4_database_becomes_one_path_per_conversation_intact(tmp_path):
    path = tmp_path / "v4.sqlite3"
    _v4_database(path)
    with ConversationStore(path) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION == 6
        path1 = store.messages(1)
        assert [(m.id, m.position, m.content, m.parent_id, m.active) for m in path1] == [
            (10, 0, "Who was Ada?", None, True), (11, 1, "It was Ada [1].", 10, True),
            (12, 2, "And then?", 11, True), (13, 3, "She wrote notes.", 12, True)]
        assert [(m.id, m.parent_id) for m in store.messages(2)] == [(20, None), (21, 20)]  # not across chats
        assert store.tree(1) == path1 and store.branch_numbers(1) == {i: (1, 1) for i in (10, 11, 12, 13)}
        assert [s.text for s in store.sources(11)] == ["Ada.."] and store.get_conversation(1).library == "notes"
        assert [c.title for c, _ in store.search("wrote notes")] == ["old"]
        # the old conversation grows branches like a new one
        again = store.begin_reply(1, parent_id=12)
        assert [m.id for m in store.messages(1)] == [10, 11, 12, again]
        assert store.branch_numbers(1)[again] == (2, 2)
        assert store.check_integrity() == "ok"


def test_regenerate_adds_a_sibling_and_switching_shows_either(store):
    conv = store.create_conversation("c")
    q = store.add_message(conv.id, "user", "q")
    first = store.add_message(conv.id, "assistant", "first answer")
    follow = store.add_message(conv.id, "user", "follow-up")
    second_id = store.begin_reply(conv.id, parent_id=q.id)  # regenerate the first reply
    store.finish_reply(second_id, "second answer")
    assert [m.content for m in store.messages(conv.id)] == ["q", "second answer"]
    assert store.branch_numbers(conv.id) == {q.id: (1, 1), second_id: (2, 2)}
    assert [m.id for m in store.siblings(second_id)] == [first.id, second_id]
    store.select_branch(first.id)  # the old version comes back with what followed it
    assert [m.content for m in store.messages(conv.id)] == ["q", "first answer", "follow-up"]
    assert [m.id for m in store.tree(conv.id)] == [q.id, first.id, follow.id, second_id]
    with pytest.raises(NotFoundError):
        store.select_branch(999)


def test_adding_after_the_path_follows_the_branch_shown(store):
    conv = store.create_conversation("c")
    q = store.add_message(conv.id, "user", "q")
    a = store.add_message(conv.id, "assistant", "a")
    b = store.add_message(conv.id, "assistant", "b", parent_id=q.id)
    store.select_branch(a.id)
    after_a = store.add_message(conv.id, "user", "after a")
    assert after_a.parent_id == a.id
    store.select_branch(b.id)
    assert store.add_message(conv.id, "user", "after b").parent_id == b.id
    edited = store.add_message(conv.id, "user", "q, edited", parent_id=None)  # edit the first message
    assert [m.content for m in store.messages(conv.id)] == ["q, edited"]
    assert store.branch_numbers(conv.id) == {edited.id: (2, 2)}
    other = store.create_conversation("other")
    with pytest.raises(ValueError, match="not in conversation"):
        store.add_message(other.id, "user", "x", parent_id=q.id)


def test_deleting_a_branch_takes_what_is_below_it_and_shows_a_neighbour(store):
    conv = store.create_conversation("c")
    q = store.add_message(conv.id, "user", "q")
    a = store.add_message(conv.id, "assistant", "a")
    store.add_message(conv.id, "user", "below a")
    b = store.add_message(conv.id, "assistant", "b", parent_id=q.id)
    store.save_sources(b.id, [{"number": 1, "path": "/p", "start": 0, "end": 1, "text": "x"}])
    c = store.add_message(conv.id, "assistant", "c unique words", parent_id=q.id)
    store.select_branch(b.id)
    assert store.delete_branch(b.id) == 1
    assert store.sources(b.id) == []
    assert [m.content for m in store.messages(conv.id)] == ["q", "a", "below a"]  # the version before b
    assert store.delete_branch(a.id) == 2  # a and the message below it
    assert [m.id for m in store.messages(conv.id)] == [q.id, c.id]
    assert [conv_.title for conv_, _ in store.search("unique words")] == ["c"]
    assert store.delete_branch(c.id) == 1
    assert store.search("unique words") == [] and [m.id for m in store.tree(conv.id)] == [q.id]
    assert store.check_integrity() == "ok"


def _m(id, parent, active=True):
    return SimpleNamespace(id=id, parent_id=parent, active=active)


def test_the_path_rules_hold_for_damaged_or_hand_made_trees():
    messages = [_m(1, None), _m(2, 1, False), _m(3, 1, False), _m(4, 2), _m(5, 99)]
    # no active sibling: the latest one; an orphan (parent 99 missing) counts as a first message
    assert [m.id for m in tree.active_path(messages)] == [5]
    assert [m.id for m in tree.active_path(messages[:4])] == [1, 3]
    both = [_m(1, None), _m(2, 1), _m(3, 1)]  # two claim it: the latest
    assert [m.id for m in tree.active_path(both)] == [1, 3]
    assert tree.branch_numbers(both) == {1: (1, 1), 3: (2, 2)}
    assert sorted(tree.descendants(messages, 1)) == [1, 2, 3, 4]
    assert tree.active_path([]) == []


def _shape(store, conv_id):
    """The tree as (content, parent's content, active), in order of creation."""
    by_id = {m.id: m for m in store.tree(conv_id)}
    return [(m.content, by_id[m.parent_id].content if m.parent_id else None, m.active) for m in by_id.values()]


def test_export_and_import_keep_the_tree(store, tmp_path):
    from chatapp.storage.export import export_json, export_markdown, import_json

    conv = store.create_conversation("tree")
    q = store.add_message(conv.id, "user", "q")
    store.add_message(conv.id, "assistant", "a1")
    store.add_message(conv.id, "user", "more")
    store.add_message(conv.id, "assistant", "a2", parent_id=q.id)
    store.add_message(conv.id, "user", "q edited", parent_id=None)
    store.select_branch(q.id)  # shown: q, a2
    export_json(store, conv.id, tmp_path / "t.json")
    copy = import_json(store, tmp_path / "t.json")
    assert _shape(store, copy.id) == _shape(store, conv.id) == [
        ("q", None, True), ("a1", "q", False), ("more", "a1", True), ("a2", "q", True), ("q edited", None, False)]
    assert [m.content for m in store.messages(copy.id)] == ["q", "a2"]
    export_markdown(store, conv.id, tmp_path / "t.md")  # Markdown: the path shown
    text = (tmp_path / "t.md").read_text()
    assert "a2" in text and "a1" not in text and "q edited" not in text
