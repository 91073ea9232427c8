"""Packing, the seeded split, chat rendering with a loss mask, and JSONL reading."""

from __future__ import annotations

import json

import pytest
import torch

from chatapp.training.dataset import (IGNORE_INDEX, DatasetError, TokenBlocks, chat_blocks, fingerprint_texts,
                                      pack_documents, pack_masked, read_chat_jsonl, render_chat_example,
                                      split_documents)

EOS = 0


# -- packing ------------------------------------------------------------------------------
def test_documents_are_separated_by_eos_and_packed_with_a_one_token_overlap():
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]  # stream: 1 2 3 0 4 5 0 6 7 8 9 0 (12 tokens)
    blocks = list(pack_documents(docs, block_size=4, eos_id=EOS))
    assert blocks == [[1, 2, 3, 0, 4], [4, 5, 0, 6, 7]]  # the tail "7 8 9 0" is shorter than 5
    assert list(pack_documents(docs, block_size=3, eos_id=EOS)) == [[1, 2, 3, 0], [0, 4, 5, 0], [0, 6, 7, 8]]


def test_packing_streams():
    def endless():
        n = 1
        while True:
            yield list(range(n, n + 5))
            n += 5

    gen = pack_documents(endless(), block_size=8, eos_id=EOS)
    first = [next(gen) for _ in range(3)]
    assert first[0] == [1, 2, 3, 4, 5, 0, 6, 7, 8]
    assert all(len(b) == 9 for b in first) and first[1][0] == first[0][-1]


def test_blocks_give_shifted_inputs_and_labels():
    blocks = TokenBlocks.from_masked(pack_masked([([5, 6, 7, 8, 9], [False, False, True, True, False])], 4))
    inputs, labels = blocks.batch(torch.tensor([0]))
    assert inputs.tolist() == [[5, 6, 7, 8]]
    assert labels.tolist() == [[IGNORE_INDEX, 7, 8, IGNORE_INDEX]]
    plain = TokenBlocks.from_blocks([[1, 2, 3], [3, 4, 5]])
    assert plain.batch(torch.tensor([1]))[1].tolist() == [[4, 5]]
    assert plain.fingerprint() != TokenBlocks.from_blocks([[1, 2, 3], [3, 4, 6]]).fingerprint()
    with pytest.raises(ValueError, match="shorter than one block"):
        TokenBlocks.from_blocks(pack_documents([[1, 2]], 8, EOS))


# -- split --------------------------------------------------------------------------------
def test_split_is_deterministic_disjoint_and_order_free():
    docs = [f"document number {i}" for i in range(50)]
    train, val = split_documents(docs, val_fraction=0.2, seed=7)
    assert len(val) == 10 and len(train) == 40
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(docs)
    assert split_documents(docs, 0.2, seed=7) == (train, val)
    shuffled = docs[::-1]
    t2, v2 = split_documents(shuffled, 0.2, seed=7)
    assert set(v2) == set(val)
    assert set(split_documents(docs, 0.2, seed=8)[1]) != set(val)
    assert train == [d for d in docs if d in set(train)]  # input order kept


def test_split_keeps_duplicates_together_and_holds_out_at_least_one():
    docs = [[1, 2, 3], [4, 5], [1, 2, 3], [6], [7, 8]]
    train, val = split_documents(docs, val_fraction=0.1, seed=0)
    assert len(val) >= 1 and len(train) >= 1
    assert not any(d in train for d in val)
    by_path = split_documents(["a.txt", "b.txt"], 0.5, seed=0, key=lambda p: p.upper())
    assert sorted(by_path[0] + by_path[1]) == ["a.txt", "b.txt"] and len(by_path[1]) == 1
    assert split_documents(["only"], 0.5) == (["only"], [])
    with pytest.raises(ValueError):
        split_documents(docs, 1.0)


def test_fingerprint_names_the_data():
    assert fingerprint_texts(["ab", "c"]) != fingerprint_texts(["a", "bc"])
    assert fingerprint_texts(["ab", "c"]) == fingerprint_texts(["ab", "c"])


# -- chat ---------------------------------------------------------------------------------
class CharTokenizer:
    """One token per character (its code point); a ChatML-like template; optional BOS 1."""

    def __init__(self, add_bos: bool = False) -> None:
        self.add_bos = add_bos
        self.bos_id = 1

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(i) for i in ids)

    def apply_chat_template(self, messages, add_generation_prompt: bool = True) -> str:
        text = "".join(f"<{m['role']}>{m['content']}</>\n" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]


@pytest.mark.parametrize("add_bos", [False, True])
def test_chat_mask_covers_exactly_the_assistant_turns(add_bos):
    tok = CharTokenizer(add_bos)
    ids, mask = render_chat_example(CONVERSATION, tok)
    text = tok.apply_chat_template(CONVERSATION, add_generation_prompt=False)
    assert ids == ([1] if add_bos else []) + tok.encode(text)
    learned = tok.decode(i for i, m in zip(ids, mask) if m)
    assert learned == "Hello!</>\n4</>\n"  # replies with their end-of-turn, nothing else
    # Each learned span starts right after the generation prompt.
    first = mask.index(True)
    assert tok.decode(ids[first - len("<assistant>"):first]) == "<assistant>"


def test_chat_template_that_rewrites_history_is_refused():
    class Rewriting(CharTokenizer):
        def apply_chat_template(self, messages, add_generation_prompt=True):
            # Like templates that drop reasoning from past turns: history depends on the end.
            last = len(messages)
            return "".join(f"<{m['role']}>{m['content'] if i == last - 1 or m['role'] != 'assistant' else '...'}</>"
                           for i, m in enumerate(messages)) + ("<assistant>" if add_generation_prompt else "")

    with pytest.raises(ValueError, match="prefix"):
        render_chat_example(CONVERSATION, Rewriting())


def test_chat_jsonl_to_blocks(tmp_path):
    path = tmp_path / "chat.jsonl"
    lines = [json.dumps({"messages": CONVERSATION})] * 3
    path.write_text("\n".join(lines[:2]) + "\n\n" + lines[2] + "\n", encoding="utf-8")
    assert [n for n, _ in read_chat_jsonl(path)] == [1, 2, 4]
    blocks = chat_blocks(path, CharTokenizer(), block_size=16)
    ids, mask = render_chat_example(CONVERSATION, CharTokenizer())
    assert blocks.tokens.shape[1] == 17
    assert blocks.tokens[0].tolist() == ids[:17] and blocks.loss_mask[0].tolist() == mask[:17]
    assert int(blocks.loss_mask.sum()) > 0


@pytest.mark.parametrize("line, message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "expected an object"),
    ('{"text": "hi"}', "expected an object"),
    ('{"messages": []}', "non-empty list"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', "role 'bot'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "no assistant message"),
    ('{"messages": [{"role": "assistant"}]}', "no text"),
])
def test_bad_jsonl_lines_are_named(tmp_path, line, message):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"messages": CONVERSATION}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=message) as err:
        list(read_chat_jsonl(path))
    assert err.value.line == 2 and err.value.path == path
    assert str(err.value).startswith(f"{path}:2: ")


def test_unreadable_jsonl(tmp_path):
    with pytest.raises(DatasetError, match="cannot be read"):
        list(read_chat_jsonl(tmp_path / "missing.jsonl"))
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps({"messages": CONVERSATION}).encode() + b"\n\xff\xfe\n")
    with pytest.raises(DatasetError, match="UTF-8"):
        list(read_chat_jsonl(bad))
