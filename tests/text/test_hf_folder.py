"""Tokenizer.from_hf_folder against transformers' AutoTokenizer on folders written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from chatapp.text import Tokenizer

TEMPLATE = ("{% for m in messages %}{{ bos_token + '<|' + m['role'] + '|>' + m['content'] + eos_token }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")
SAMPLES = ["hello world", "the cat sat on the mat 123", "<|user|>hi</s>", "", "  spaced\n\nout  ", "ünï 🙂"]
CONVERSATION = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "the cat"}]


def _added_token(content: str) -> dict:
    return {"__type": "AddedToken", "content": content, "lstrip": False, "rstrip": False,
            "normalized": False, "single_word": False, "special": True}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """A small trained byte-level BPE whose tokenizer.json adds BOS (as Llama's does); the config
    names BOS/EOS in the AddedToken form and carries a chat template, but no add_bos_token."""
    folder = tmp_path_factory.mktemp("tiny-hf")
    backend = HFBackend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<|user|>", "<|assistant|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(["hello world the cat sat on the mat", "chat templates are fun 123"] * 3, trainer)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 0)])
    backend.save(str(folder / "tokenizer.json"))
    config = {"bos_token": _added_token("<s>"), "eos_token": _added_token("</s>"), "chat_template": TEMPLATE}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_reference(transformers, tiny_folder):
    return transformers.AutoTokenizer.from_pretrained(str(tiny_folder))


def test_tiny_folder_matches_transformers(tiny_folder, tiny_reference):
    ours = Tokenizer.from_hf_folder(tiny_folder)
    assert (ours.bos_id, ours.eos_id) == (tiny_reference.bos_token_id, tiny_reference.eos_token_id) == (0, 1)
    assert ours.add_bos is True  # read from tokenizer.json's post-processor
    assert ours.eos_ids == {1}
    assert ours.special_ids == {0, 1, 2, 3}
    assert ours.vocab_size == len(tiny_reference)
    for text in SAMPLES:
        split = tiny_reference(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        assert ours.encode(text, add_special_tokens=True) == [0, *split], text
        assert ours.encode(text) == split, text
        assert ours.encode_markup(text) == tiny_reference.encode(text, add_special_tokens=False), text
        assert ours.decode(ours.encode(text)) == text
    assert ours.encode_markup("<|user|>hi</s>") == [2, *ours.encode("hi"), 1]
    assert not {0, 1, 2, 3} & set(ours.encode("<|user|>hi</s>"))
    for add_generation_prompt in (True, False):
        assert ours.apply_chat_template(CONVERSATION, add_generation_prompt=add_generation_prompt) == \
            tiny_reference.apply_chat_template(CONVERSATION, tokenize=False,
                                               add_generation_prompt=add_generation_prompt)
    assert ours.apply_chat_template(CONVERSATION) == "<s><|user|>hello</s><s><|assistant|>the cat</s><|assistant|>"


def test_config_flag_overrides_post_processor(tiny_folder, tmp_path):
    for name in ("tokenizer.json",):
        (tmp_path / name).write_bytes((tiny_folder / name).read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "add_bos_token": False}))
    ours = Tokenizer.from_hf_folder(tmp_path)
    assert ours.add_bos is False and ours.bos_id == 0 and ours.eos_id is None
    assert ours.encode("hello", add_special_tokens=True) == ours.encode("hello")
    assert ours.chat_template is None


@pytest.mark.slow
def test_saved_gguf_tokenizer_matches_transformers(transformers, smollm, tmp_path):
    """SmolLM2's GGUF-built tokenizer saved as tokenizer.json, with the side files of a real
    model folder: special_tokens_map.json, chat_template.jinja, generation_config.json."""
    smollm.backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": False}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<|im_start|>",
                                                                  "eos_token": "<|im_end|>"}))
    (tmp_path / "chat_template.jinja").write_text(smollm.chat_template, encoding="utf-8")
    (tmp_path / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": [2, 0]}))
    ours = Tokenizer.from_hf_folder(tmp_path)
    reference = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert (ours.bos_id, ours.eos_id, ours.add_bos) == (1, 2, False)
    assert ours.eos_ids == {0, 2}
    assert ours.chat_template == smollm.chat_template
    samples = ["Hello, world!", "x  1 and   42", "你好 🙂", "<|im_start|>user\nHi<|im_end|>\n", "\t\n  \n"]
    for text in samples:
        assert ours.encode_markup(text) == smollm.encode_markup(text) == reference.encode(text, add_special_tokens=False)
        assert ours.encode(text) == smollm.encode(text) == reference(text, split_special_tokens=True)["input_ids"]
    assert ours.apply_chat_template(CONVERSATION) == reference.apply_chat_template(
        CONVERSATION, tokenize=False, add_generation_prompt=True)


def test_template_list_and_generation_eos(tiny_folder, tmp_path):
    (tmp_path / "tokenizer.json").write_bytes((tiny_folder / "tokenizer.json").read_bytes())
    templates = [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "DEFAULT"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": templates}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": [1, 3]}))
    ours = Tokenizer.from_hf_folder(tmp_path)
    assert ours.chat_template == "DEFAULT"
    assert (ours.bos_id, ours.eos_id) == (0, 1)
    assert ours.eos_ids == {1, 3}
