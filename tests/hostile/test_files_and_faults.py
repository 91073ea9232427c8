"""Files the app writes and files users import: a full disk names the file and leaves the old
one whole; an imported conversation with a lone surrogate, deep nesting or a FIFO ends in our
StorageError naming the file."""

from __future__ import annotations

import errno
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatapp.paths import WriteError, atomic_write_text, read_json
from chatapp.errors import CorruptFileError
from chatapp.storage.db import ConversationStore, StorageError
from chatapp.storage.export import FORMAT, import_json
from tests.helpers.bounded import run_bounded


@pytest.mark.parametrize("code, hint", [(errno.ENOSPC, "free some disk space"),
                                        (errno.EACCES, "check that the folder is writable")])
def test_failed_atomic_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, code, hint):
    path = tmp_path / "settings.json"
    path.write_text("old content")

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(WriteError) as info:
        atomic_write_text(path, "new content")
    message = str(info.value)
    assert str(path) in message and hint in message and "unchanged" in message
    assert info.value.errno == code and isinstance(info.value, OSError)
    assert path.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left


def test_write_into_a_missing_readonly_place_is_a_write_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="cannot write .*file/sub/a.json"):
        atomic_write_text(tmp_path / "file" / "sub" / "a.json", "{}")


@pytest.fixture
def store(tmp_path):
    with ConversationStore(tmp_path / "db.sqlite3") as s:
        yield s


def export(messages, **extra) -> dict:
    return {"format": FORMAT, "version": 1, "title": "t", "messages": messages, **extra}


@pytest.mark.parametrize("text, words", [
    (json.dumps(export([{"role": "user", "content": "hi \ud800 there"}])),
     "field messages[0].content holds an unpaired surrogate"),
    (json.dumps(export([{"role": "user", "content": "x", "settings": {"k": ["\udfff"]}}])),
     "messages[0].settings.k[0]"),
    (json.dumps(export([], title="\ud83d")), "field title"),
    ('{"format": "chatapp.conversation", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "JSON nested 100001 levels deep"),
    ("\ufeff{nope", "not valid JSON"),
])
def test_hostile_import_is_one_error_naming_the_file(store, tmp_path, text, words):
    path = tmp_path / "chat.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(StorageError) as info:
        import_json(store, path)
    assert str(path) in str(info.value) and words in str(info.value)
    assert store.list_conversations() == []


def test_import_of_a_fifo_does_not_hang(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("FIFOs are POSIX-only")
    fifo = tmp_path / "chat.json"
    os.mkfifo(fifo)
    result = run_bounded(f"""
        from chatapp.storage.db import ConversationStore, StorageError
        from chatapp.storage.export import import_json
        with ConversationStore({str(tmp_path / 'db.sqlite3')!r}) as store:
            try:
                import_json(store, {str(fifo)!r})
                report(error=None)
            except StorageError as exc:
                report(error=str(exc))
    """, timeout=30)
    assert "not a regular file" in result["error"]


texts = st.text(max_size=12)  # includes lone surrogates
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", 3]),
                                 "content": texts | st.integers()},
                                optional={"state": texts, "created_at": texts, "settings": st.dictionaries(texts, texts),
                                          "stats": st.lists(texts) | st.dictionaries(texts, st.floats())})


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({"format": st.just(FORMAT) | texts, "version": st.integers(-2, 3) | texts,
                              "title": texts, "messages": st.lists(message, max_size=4)},
                             optional={"system_prompt": texts | st.none(), "created_at": texts}))
def test_any_import_ends_in_a_conversation_or_our_error(store, tmp_path, data):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(data))
    try:
        conv = import_json(store, path)
    except StorageError as exc:
        assert str(path) in str(exc)
    else:
        assert conv.title == data["title"]


def test_read_json_refuses_large_and_nan(tmp_path):
    big = tmp_path / "big.json"
    big.write_text("[" + "1," * 1000 + "1]")
    with pytest.raises(CorruptFileError, match="more than the 100 allowed"):
        read_json(big, max_bytes=100)
    nan = tmp_path / "nan.json"
    nan.write_text('{"a": NaN}')
    with pytest.raises(CorruptFileError, match="NaN is not valid JSON"):
        read_json(nan)
