"""Gemma's SentencePiece vocabulary in a GGUF (tokenizer.ggml.model "llama", architecture gemma2 /
gemma3): space-only pieces stored with real spaces, merge order given by file order rather than the
scores, no space prefix, turn markers the file may call user-defined. Checked against transformers'
GGUF tokenizer on a tiny vocabulary trained here."""

from __future__ import annotations

import json
import random

import gguf
import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import models, pre_tokenizers, trainers

from chatapp.text import Tokenizer
from chatapp.text.gguf_vocab import BYTE, CONTROL, NORMAL, UNKNOWN, USER_DEFINED

CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world, hello there", "  spaced   out    text",
          "def f(x):\n    return x  # code", "numbers 12345 and 678", "café naïve façade"] * 5
TEXTS = ["hello world", "  spaced   out", "<start_of_turn>user\nhello there<end_of_turn>\n<start_of_turn>model\n",
         "def f(x):\n    return x", "unseen 漢字 🙂", " leading space", "the lazy   dog\n\n"]


def _write(path, tokens, types, scores):
    """A metadata-only gemma2 GGUF, with the tokenizer keys llama.cpp's Gemma converter writes."""
    writer = gguf.GGUFWriter(str(path), "gemma2")
    for add, value in ((writer.add_context_length, 64), (writer.add_embedding_length, 8), (writer.add_block_count, 1),
                       (writer.add_feed_forward_length, 16), (writer.add_head_count, 2),
                       (writer.add_head_count_kv, 2), (writer.add_layer_norm_rms_eps, 1e-6),
                       (writer.add_tokenizer_model, "llama"), (writer.add_token_list, tokens),
                       (writer.add_token_types, types), (writer.add_token_scores, scores),
                       (writer.add_bos_token_id, 2), (writer.add_eos_token_id, 1), (writer.add_unk_token_id, 3),
                       (writer.add_add_bos_token, True), (writer.add_add_space_prefix, False)):
        add(value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def gemma_gguf(tmp_path_factory):
    trained = HFBackend(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=False)
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=260, show_progress=False))
    model = json.loads(trained.to_str())["model"]
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    types = [CONTROL, CONTROL, CONTROL, UNKNOWN, USER_DEFINED, USER_DEFINED]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [BYTE] * 256
    for token, _ in sorted(model["vocab"].items(), key=lambda item: item[1]):  # learned order
        spaces = set(token) == {"\u2581"} and len(token) > 1
        tokens.append(token.replace("\u2581", " ") if spaces else token)  # as Gemma's files store them
        types.append(USER_DEFINED if spaces else NORMAL)
    rng = random.Random(0)
    scores = [rng.uniform(-100, 0) for _ in tokens]  # scores that do not follow the merge order
    path = tmp_path_factory.mktemp("gemma-vocab") / "gemma.gguf"
    return _write(path, tokens, types, scores)


@pytest.fixture(scope="module")
def reference(gemma_gguf):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(gemma_gguf.parent), gguf_file=gemma_gguf.name)


@pytest.mark.parametrize("text", TEXTS)
def test_gemma_vocab_matches_transformers(gemma_gguf, reference, text):
    ours = Tokenizer.from_gguf(gemma_gguf)
    expected = reference(text)["input_ids"]
    assert ours.backend.encode(text, add_special_tokens=True).ids == expected
    assert ours.decode(expected, skip_special_tokens=False).replace("<bos>", "", 1) == text


def test_gemma_vocab_details(gemma_gguf):
    ours = Tokenizer.from_gguf(gemma_gguf)
    spaces = ours.backend.token_to_id("\u2581\u2581")
    assert spaces is not None and spaces in ours.encode("a  b")  # the respelled run is reachable
    end = ours.backend.token_to_id("<end_of_turn>")
    assert end in ours.special_ids and end in ours.eos_ids  # special though the file says user-defined
    assert "<start_of_turn>" in ours.marker_strings
    assert ours.encode("hi") == ours.encode_markup("hi")  # no space prefix on Gemma
