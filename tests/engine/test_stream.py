"""Streaming text from ids: DecodeStream per token, and what ours adds to it (flush, stop strings)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from tokenizers.decoders import DecodeStream

from chatapp.engine.stream import IncrementalDecoder, StopStringFilter
from chatapp.text import Tokenizer as OurTokenizer


def metaspace_tokenizer() -> OurTokenizer:
    """A SentencePiece-style vocabulary (`▁` marks a space), whose decoder drops the first space."""
    words = ["▁the", "▁cat", "▁sat", "▁on", "▁mat", ".", "▁", "<s>"]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="."))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.add_special_tokens(["<s>"])
    return OurTokenizer(backend, bos_id=vocab["<s>"])


def test_deltas_add_up_to_the_full_decode_on_byte_level_text(byte_tokenizer):
    ids = byte_tokenizer.encode("mixed 中文 text\n\n  with   spaces 🎉 and code: x = {'a': 1}")
    decoder = IncrementalDecoder(byte_tokenizer)
    deltas = [decoder.push(i) for i in ids]
    assert "".join(deltas) + decoder.flush() == byte_tokenizer.decode(ids)
    assert "🎉" in deltas  # four byte tokens, one delta


def test_deltas_add_up_to_the_full_decode_with_a_sentencepiece_style_decoder():
    tok = metaspace_tokenizer()
    ids = tok.encode("the cat sat on the mat")
    assert len(ids) == 6
    decoder = IncrementalDecoder(tok)
    deltas = [decoder.push(i) for i in ids]
    assert "".join(deltas) == tok.decode(ids) == "the cat sat on the mat"  # the first space dropped only
    assert deltas[1] == " cat" and decoder.flush() == ""


def test_decode_stream_keeps_an_incomplete_character_for_good_which_flush_returns(byte_tokenizer):
    """The difference that keeps our flush(): a reply cut inside a character (token limit, stop)."""
    ids = list("你".encode("utf-8"))[:2]
    raw = DecodeStream(skip_special_tokens=True)
    assert [raw.step(byte_tokenizer.backend, i) for i in ids] == [None, None]  # nothing, ever
    decoder = IncrementalDecoder(byte_tokenizer)
    assert [decoder.push(i) for i in ids] == ["", ""]
    assert decoder.flush() == "\ufffd" == byte_tokenizer.decode(ids)
    assert decoder.flush() == ""


@pytest.mark.parametrize("cut", [1, 2])  # of the three bytes of 好
def test_flush_after_complete_text_then_a_cut_character(byte_tokenizer, cut):
    text = "ok 好"
    ids = byte_tokenizer.encode(text)[:len("ok ") + cut]
    decoder = IncrementalDecoder(byte_tokenizer)
    streamed = "".join(decoder.push(i) for i in ids)
    assert streamed == "ok "
    assert streamed + decoder.flush() == byte_tokenizer.decode(ids)


def test_decode_stream_shows_a_partial_stop_string_which_the_filter_holds_back(byte_tokenizer):
    ids = byte_tokenizer.encode("answer </s> tail")
    raw = DecodeStream(skip_special_tokens=True)
    raw_text = "".join(c for c in (raw.step(byte_tokenizer.backend, i) for i in ids[:8]) if c)
    assert raw_text == "answer <"  # DecodeStream alone would show the start of the stop string
    decoder, stops = IncrementalDecoder(byte_tokenizer), StopStringFilter(["</s>"])
    shown = []
    for i in ids:  # as Engine.stream: generation ends at the stop string
        shown.append(stops.push(decoder.push(i)))
        if stops.stopped_on:
            break
    assert "".join(shown) == "answer " and stops.stopped_on == "</s>"
    assert shown[7] == ""  # the "<" waited
