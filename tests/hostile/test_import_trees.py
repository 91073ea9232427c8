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


GOOD_TOKEN = {"id": 5, "token": "Hi", "logprob": -0.1, "sampled_prob": 0.9,
              "top": [{"id": 5, "token": "Hi", "logprob": -0.1}, {"id": 7, "token": "Yo", "logprob": -2.5}]}


@pytest.mark.parametrize("stats, words", [
    ({"new_tokens": 5, "decode_tok_s": "fast"}, "stats.decode_tok_s must be a number of at least 0, not 'fast'"),
    ({"new_tokens": "5"}, "stats.new_tokens must be a whole number of at least 0, not '5'"),
    ({"context_used": -1}, "stats.context_used must be a whole number"),
    ({"context_used": 2**70 + 0.5}, "stats.context_used must be a whole number"),
    ({"left_out": True}, "stats.left_out must be a whole number"),
    ({"prompt": ["<|im_start|>"]}, "stats.prompt must be str"),
    ({"tokens": "abc"}, "stats.tokens must be list"),
    ({"tokens": [GOOD_TOKEN, 7]}, "stats.tokens[1] must be an object"),
    ({"tokens": [dict(GOOD_TOKEN, logprob=1000)]}, "stats.tokens[0].logprob must be a log-probability"),
    ({"tokens": [dict(GOOD_TOKEN, logprob="x")]}, "stats.tokens[0].logprob must be a log-probability"),
    ({"tokens": [dict(GOOD_TOKEN, id="5")]}, "stats.tokens[0].id must be a token id"),
    ({"tokens": [dict(GOOD_TOKEN, id=-1)]}, "stats.tokens[0].id must be a token id"),
    ({"tokens": [dict(GOOD_TOKEN, token=None)]}, "stats.tokens[0].token must be str"),
    ({"tokens": [dict(GOOD_TOKEN, sampled_prob=7)]}, "stats.tokens[0].sampled_prob must be a probability"),
    ({"tokens": [dict(GOOD_TOKEN, top={"a": 1})]}, "stats.tokens[0].top must be list"),
    ({"tokens": [dict(GOOD_TOKEN, top=[{"id": 1, "token": "a"}])]}, "stats.tokens[0].top[0].logprob must be"),
])
def test_stats_the_window_reads_back_are_checked_on_import(store, tmp_path, stats, words):
    """Before, these imported fine; a wrong type then broke the opening of the conversation or
    its token view (reply_note's "{speed:.1f}" on a string, context_changed(int) on a string,
    math.exp(1000) or t["logprob"] on a number in the token view)."""
    data = tree_export([None, 0])
    data["messages"][1]["stats"] = stats
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StorageError) as info:
        import_json(store, path)
    assert str(path) in str(info.value) and f"field messages[1].{words}" in str(info.value)
    assert store.list_conversations() == []


def test_stats_as_the_app_writes_them_import(store, tmp_path):
    data = tree_export([None, 0])
    data["messages"][1]["stats"] = {"prompt_tokens": 12, "prefilled_tokens": 12, "new_tokens": 1, "ttft_s": 0.05,
                                    "prefill_tok_s": 240.0, "decode_tok_s": 0, "context_used": 13,
                                    "prompt": "<|im_start|>user\nm0<|im_end|>", "left_out": 2,
                                    "tokens": [GOOD_TOKEN, dict(GOOD_TOKEN, sampled_prob=None, top=[])],
                                    "something_newer": {"any": "thing"}}
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(data))
    conv = import_json(store, path)
    assert store.messages(conv.id)[1].stats == data["messages"][1]["stats"]
