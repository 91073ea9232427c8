"""Conversation exports of format version 2 (a message tree) with a broken tree: a message its
own parent, a parent after it (a cycle needs one), a parent that does not exist, parents of the
wrong type, versions marked shown in every way. Each ends in StorageError naming the file and
the field, with nothing imported, or in a conversation whose shown path is a real path."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chatapp.storage.db import ConversationStore, StorageError
from chatapp.storage.export import FORMAT, VERSION, export_json, import_json


@pytest.fixture
def store(tmp_path):
    with ConversationStore(tmp_path / "db.sqlite3") as s:
        yield s


def tree_export(parents: list, active: list | None = None) -> dict:
    messages = []
    for i, parent in enumerate(parents):
        message = {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}", "parent": parent}
        if active is not None:
            message["active"] = active[i]
        messages.append(message)
    return {"format": FORMAT, "version": 2, "title": "tree", "messages": messages}


@pytest.mark.parametrize("parents, bad", [
    ([None, 1], "messages[1].parent"),  # its own parent
    ([None, 0, 3, 2], "messages[2].parent"),  # a cycle: 2 -> 3 -> 2
    ([None, 0, 2], "messages[2].parent"),
    ([0], "messages[0].parent"),  # the first message under itself
    ([None, 99], "messages[1].parent"),  # no such message
    ([None, -1], "messages[1].parent"),
    ([None, 10**30], "messages[1].parent"),
    ([None, True], "messages[1].parent"),
    ([None, "0"], "messages[1].parent"),
    ([None, 0.0], "messages[1].parent"),
    ([None, [0]], "messages[1].parent"),
])
def test_a_broken_tree_is_refused_naming_the_message(store, tmp_path, parents, bad):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(tree_export(parents)))
    with pytest.raises(StorageError) as info:
        import_json(store, path)
    assert str(path) in str(info.value)
    assert f"field {bad} must be the index of an earlier message or null" in str(info.value)
    assert store.list_conversations() == []


def test_wrong_active_flags_are_refused(store, tmp_path):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(tree_export([None, 0], active=[True, "yes"])))
    with pytest.raises(StorageError, match=r"field messages\[1\]\.active must be bool, not str"):
        import_json(store, path)
    assert store.list_conversations() == []


def _is_a_path(store: ConversationStore, conv_id: int) -> None:
    """The shown path starts at a first message and each message is a child of the one before."""
    path = store.messages(conv_id)
    ids = {m.id for m in store.tree(conv_id)}
    assert all(m.id in ids for m in path)
    assert not path or path[0].parent_id is None
    assert all(b.parent_id == a.id for a, b in zip(path, path[1:]))
    numbers = store.branch_numbers(conv_id)
    assert all(1 <= numbers[m.id][0] <= numbers[m.id][1] for m in path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(0, 8))
def test_any_tree_ends_in_a_real_path_or_our_error(store, tmp_path, data, size):
    parents = [data.draw(st.none() | st.integers(-2, size + 1) | st.booleans() | st.just("1"), label=f"parent {i}")
               for i in range(size)]
    active = data.draw(st.lists(st.booleans(), min_size=size, max_size=size) | st.none(), label="active")
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(tree_export(parents, active)))
    before = len(store.list_conversations())
    try:
        conv = import_json(store, path)
    except StorageError as exc:
        assert str(path) in str(exc) and "messages[" in str(exc)
        assert len(store.list_conversations()) == before
        return
    assert len(store.tree(conv.id)) == size
    _is_a_path(store, conv.id)
    again = tmp_path / "again.json"  # what was imported exports and imports the same way
    export_json(store, conv.id, again)
    assert json.loads(again.read_text())["version"] == VERSION
    copy = import_json(store, again)
    assert [m.content for m in store.messages(copy.id)] == [m.content for m in store.messages(conv.id)]
