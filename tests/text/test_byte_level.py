"""GPT-2's byte-level alphabet, checked against the `tokenizers` ByteLevel pre-tokenizer itself."""

from __future__ import annotations

import pytest
from tokenizers import pre_tokenizers

from chatapp.text.byte_level import byte_to_char, char_to_byte


def test_every_byte_has_its_own_character_of_the_alphabet():
    table = byte_to_char()
    assert sorted(table) == list(range(256))
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert table[ord("a")] == "a" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert dict(char_to_byte()) == {ch: b for b, ch in table.items()}


@pytest.mark.parametrize("text", ["hello world", " naïve\tcafé\n", "日本語 🙂", "\x00\x7f\xad"])
def test_pieces_read_back_to_the_utf8_bytes(text):
    pieces = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    assert bytes(char_to_byte()[ch] for piece, _ in pieces for ch in piece) == text.encode("utf-8")
    assert "".join(byte_to_char()[b] for b in text.encode("utf-8")) == "".join(p for p, _ in pieces)


def test_the_tables_are_read_only():
    with pytest.raises(TypeError):
        byte_to_char()[0] = "x"
