"""Chat sessions over a mock model: cache reuse across turns, overflow, regenerate, edit."""

from __future__ import annotations

import pytest

from chatapp.engine.generate import ContextOverflowError, Engine
from chatapp.engine.sampling import SamplingSettings
from chatapp.engine.session import ChatSession

from mock_models import ContextModel

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=20)


def _session(tokenizer, max_seq_len=256, system="be brief"):
    model = ContextModel(max_seq_len=max_seq_len)
    return model, ChatSession(Engine(model, tokenizer), system_prompt=system)


def test_second_turn_prefills_only_the_new_turn_and_matches_a_fresh_session(byte_tokenizer):
    model, session = _session(byte_tokenizer)
    first = "".join(session.send("hello", GREEDY))
    assert first and session.messages[-1] == {"role": "assistant", "content": first}
    before = len(session.render_ids(session.messages[:-1])) + len(session.reply.token_ids) - 1
    model.calls.clear()
    second = "".join(session.send("and then?", GREEDY))
    total = len(session.render_ids(session.messages[:-1]))
    assert model.calls[0] == total - before  # only the new turn ran through the model
    assert session.reply.stats.prefilled_tokens < total / 2

    _, fresh = _session(byte_tokenizer)
    fresh.messages = [dict(m) for m in session.messages[:-1]]
    assert "".join(fresh.respond(GREEDY, None)) == second


def test_overflow_drops_oldest_turns_and_keeps_system_prompt(byte_tokenizer):
    model, session = _session(byte_tokenizer, max_seq_len=160)
    for i in range(6):
        "".join(session.send(f"message number {i}", GREEDY))
    assert session.dropped_messages > 0
    ids, dropped = session.fit(reserve=20)
    text = byte_tokenizer.decode(ids)
    assert text.startswith("[system]be brief")
    assert "message number 5" in text and "message number 0" not in text
    assert len(ids) + 20 <= 160
    assert len(session.messages) == 12  # the stored history keeps everything


def test_message_too_long_for_context_is_refused_not_truncated(byte_tokenizer):
    _, session = _session(byte_tokenizer, max_seq_len=64)
    with pytest.raises(ContextOverflowError, match="shorten the message"):
        list(session.send("x" * 200, GREEDY))
    assert session.messages == []


def test_regenerate_replaces_last_reply(byte_tokenizer):
    _, session = _session(byte_tokenizer)
    first = "".join(session.send("hi", GREEDY))
    again = "".join(session.regenerate(GREEDY))
    assert again == first  # greedy: same history, same reply
    assert [m["role"] for m in session.messages] == ["user", "assistant"]


def test_edit_truncates_and_resends(byte_tokenizer):
    _, session = _session(byte_tokenizer)
    "".join(session.send("one", GREEDY))
    "".join(session.send("two", GREEDY))
    reply = "".join(session.edit(0, "uno", GREEDY))
    assert [m["content"] for m in session.messages] == ["uno", reply]


def test_empty_message_refused(byte_tokenizer):
    _, session = _session(byte_tokenizer)
    with pytest.raises(ValueError, match="empty"):
        list(session.send("   ", GREEDY))


def test_continue_writes_on_from_where_the_reply_stopped(byte_tokenizer):
    short = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6)
    model, session = _session(byte_tokenizer)
    start = "".join(session.send("tell me more", short))
    assert session.reply.finish_reason == "length" and len(start) == 6
    ids = session.render_ids(session.messages, continue_final=True)
    assert byte_tokenizer.decode(ids).endswith("[assistant]" + start)  # the turn left open, not closed
    model.calls.clear()
    more = "".join(session.continue_reply(short))
    assert model.calls[0] == 1  # the reply's tokens were in the cache: only the last one ran again
    assert session.messages[-1] == {"role": "assistant", "content": start + more}

    # The same as one reply twice as long.
    long = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=12)
    _, fresh = _session(byte_tokenizer)
    assert "".join(fresh.send("tell me more", long)) == start + more


def test_continue_needs_a_reply(byte_tokenizer):
    _, session = _session(byte_tokenizer)
    with pytest.raises(ValueError, match="no reply to continue"):
        list(session.continue_reply(GREEDY))
    session.messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]
    with pytest.raises(ValueError, match="no reply to continue"):
        list(session.continue_reply(GREEDY))
