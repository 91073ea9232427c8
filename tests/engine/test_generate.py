"""The generation loop and text streaming, driven by mock models (no weights)."""

from __future__ import annotations

import threading

import pytest
import torch

from chatapp.engine.generate import ContextOverflowError, Engine
from chatapp.engine.sampling import SamplingSettings
from chatapp.engine.stream import IncrementalDecoder, StopStringFilter

from mock_models import EOS, ContextModel, ScriptedModel

GREEDY = dict(temperature=0.0, repetition_penalty=1.0)


def _engine(script_text, tokenizer, prompt="hi", **model_kwargs):
    script = list(script_text.encode("utf-8"))
    model = ScriptedModel(script, **model_kwargs)
    model.prompt_len = len(tokenizer.encode(prompt))
    return Engine(model, tokenizer), tokenizer.encode(prompt)


def test_stops_on_eos_and_hides_it(byte_tokenizer):
    engine, prompt = _engine("Paris.", byte_tokenizer)
    deltas = list(engine.stream(prompt, SamplingSettings(**GREEDY)))
    reply = engine.reply
    assert "".join(deltas) == reply.text == "Paris."
    assert reply.finish_reason == "eos"
    assert reply.token_ids == list(b"Paris.") + [EOS]
    assert reply.stats.new_tokens == 7 and reply.stats.prompt_tokens == 2


def test_max_new_tokens(byte_tokenizer):
    engine, prompt = _engine("abcdefghij", byte_tokenizer)
    reply = engine.generate(prompt, SamplingSettings(**GREEDY, max_new_tokens=4))
    assert (reply.text, reply.finish_reason, reply.stats.new_tokens) == ("abcd", "length", 4)


def test_stop_string_is_cut_and_never_shown_in_part(byte_tokenizer):
    engine, prompt = _engine("Hello STOP world", byte_tokenizer)
    deltas = list(engine.stream(prompt, SamplingSettings(**GREEDY, stop=["STOP"])))
    assert "".join(deltas) == "Hello "
    assert not any("S" in d for d in deltas)
    assert engine.reply.finish_reason == "stop"
    assert engine.reply.stats.new_tokens == len("Hello STOP")  # nothing generated past the stop


def test_partial_stop_string_is_released_when_it_turns_out_not_to_be_one(byte_tokenizer):
    engine, prompt = _engine("a STx b ST", byte_tokenizer)
    deltas = list(engine.stream(prompt, SamplingSettings(**GREEDY, stop=["STOP"])))
    assert "".join(deltas) == "a STx b ST"
    assert engine.reply.finish_reason == "eos"
    # "S" and "ST" were held back until the "x" showed they were not a stop string
    assert "STx" in deltas and "S" not in deltas


def test_cancel_lands_within_one_token(byte_tokenizer):
    engine, prompt = _engine("abcdefghijklmnop", byte_tokenizer)
    cancel = threading.Event()
    seen = []
    for token in engine.generate_ids(prompt, SamplingSettings(**GREEDY), cancel):
        seen.append(token)
        if len(seen) == 3:
            cancel.set()
    assert engine.reply.finish_reason == "cancelled"
    assert len(seen) == 3


def test_multibyte_text_streams_whole_characters(byte_tokenizer):
    text = "Hi 你好, 世界 🙂👍🏽 café"
    engine, prompt = _engine(text, byte_tokenizer)
    deltas = [d for d in engine.stream(prompt, SamplingSettings(**GREEDY, max_new_tokens=200))]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    assert "你" in deltas and "🙂" in deltas  # each arrived whole, as one delta


def test_incremental_decoder_concatenation_equals_full_decode(byte_tokenizer):
    ids = byte_tokenizer.encode("mixed 中文 text\n\n  with   spaces 🎉 and code: x = {'a': 1}")
    decoder = IncrementalDecoder(byte_tokenizer)
    text = "".join(decoder.push(i) for i in ids) + decoder.flush()
    assert text == byte_tokenizer.decode(ids)


def test_incomplete_character_at_the_end_is_flushed_as_replacement(byte_tokenizer):
    decoder = IncrementalDecoder(byte_tokenizer)
    ids = list("你".encode("utf-8"))[:2]
    assert [decoder.push(i) for i in ids] == ["", ""]
    assert decoder.flush() == "\ufffd"


def test_stop_filter_handles_stop_split_across_deltas():
    f = StopStringFilter(["</s>", "###"])
    assert f.push("answer <") == "answer "
    assert f.push("/") == ""
    assert f.push("s> tail") == ""
    assert f.stopped_on == "</s>"


def test_same_seed_same_reply_different_seed_differs(byte_tokenizer):
    class NoisyModel(ScriptedModel):
        def forward(self, tokens, input_pos, last_only=False):
            g = torch.Generator().manual_seed(int(input_pos[-1]))
            logits = torch.randn(257, generator=g)
            logits[EOS] = -1e9
            return logits.view(1, 1, -1)

    def reply(seed):
        engine = Engine(NoisyModel([]), byte_tokenizer)
        settings = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=seed, max_new_tokens=20)
        return engine.generate([1, 2], settings).token_ids

    assert reply(5) == reply(5)
    assert reply(5) != reply(6)


def test_prompt_that_fills_the_context_is_refused(byte_tokenizer):
    engine = Engine(ScriptedModel([], max_seq_len=8), byte_tokenizer)
    with pytest.raises(ContextOverflowError, match="8"):
        engine.generate(list(range(8)), SamplingSettings(**GREEDY))


def test_generation_stops_at_the_context_limit(byte_tokenizer):
    model = ScriptedModel(list(b"abcdefghijkl"), max_seq_len=8)
    model.prompt_len = 3
    engine = Engine(model, byte_tokenizer)
    reply = engine.generate([1, 2, 3], SamplingSettings(**GREEDY))
    assert reply.finish_reason == "length"
    assert reply.stats.new_tokens == 6  # positions 3..7 are fed, and the token after the last one
    assert max(model.fed) == 7


def test_extended_prompt_prefills_only_new_tokens(byte_tokenizer):
    model = ContextModel()
    engine = Engine(model, byte_tokenizer)
    first = byte_tokenizer.encode("[user]hi\n[assistant]")
    reply = engine.generate(first, SamplingSettings(**GREEDY))
    second = first + reply.token_ids[:-1] + byte_tokenizer.encode("\n[user]more\n[assistant]")
    model.calls.clear()
    again = engine.generate(second, SamplingSettings(**GREEDY))
    new_turn = byte_tokenizer.encode("\n[user]more\n[assistant]")
    assert model.calls[0] == len(new_turn)  # the first turn and the reply were already cached
    assert again.stats.prefilled_tokens == len(new_turn)
    fresh = Engine(ContextModel(), byte_tokenizer).generate(second, SamplingSettings(**GREEDY))
    assert again.token_ids == fresh.token_ids
