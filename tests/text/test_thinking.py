"""Qwen3's thinking: the reasoning split from the answer for display, the enable_thinking switch
reaching templates that read it, and earlier replies' reasoning kept out of the next prompt as
Qwen3's template does."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import decoders, models, pre_tokenizers, trainers

from chatapp.engine.session import ChatSession
from chatapp.text import Tokenizer
from chatapp.text.thinking import has_thinking_switch, split_thinking, thinking_variables
from tests.helpers.qwen3_template import QWEN3_STYLE_TEMPLATE

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
REPLY = "<think>\nThe user asks for 2+2. That is 4.\n</think>\n\nIt is **4**."


@pytest.mark.parametrize("text, thinking, answer, still_open", [
    (REPLY, "The user asks for 2+2. That is 4.", "It is **4**.", False),
    ("  <think>\nstill going", "still going", "", True),  # streaming: the reasoning has not ended
    ("<think>", "", "", True),
    ("<think>\n\n</think>\n\nAt once.", "", "At once.", False),  # thinking switched off
    ("reasoning the prompt opened</think>\n\nanswer", "reasoning the prompt opened", "answer", False),
    ("No reasoning here; a <think> tag in the middle stays.", "", "No reasoning here; a <think> tag in the middle stays.",
     False),
])
def test_split_thinking(text, thinking, answer, still_open):
    split = split_thinking(text)
    assert (split.thinking, split.answer, split.thinking_open) == (thinking, answer, still_open)


def test_switch_only_for_templates_that_read_it():
    assert has_thinking_switch(QWEN3_STYLE_TEMPLATE) and not has_thinking_switch(CHATML)
    assert not has_thinking_switch(None)
    assert thinking_variables(QWEN3_STYLE_TEMPLATE, False) == {"enable_thinking": False}
    assert thinking_variables(QWEN3_STYLE_TEMPLATE, None) == {}
    assert thinking_variables(CHATML, False) == {}  # a template without the switch renders as written


@pytest.fixture(scope="module")
def qwen3_tokenizer(tmp_path_factory) -> Tokenizer:
    folder = tmp_path_factory.mktemp("qwen3-style")
    backend = HFBackend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(["think about the answer", "system user assistant"] * 3, trainer)
    backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "<|im_end|>", "chat_template": QWEN3_STYLE_TEMPLATE, "add_bos_token": False}))
    return Tokenizer.from_hf_folder(folder)


def _session(tokenizer, messages, enable_thinking=None):
    engine = SimpleNamespace(tokenizer=tokenizer)
    return ChatSession(engine, system_prompt="Be brief.", messages=messages,
                       template_variables=thinking_variables(tokenizer.chat_template, enable_thinking))


def test_enable_thinking_reaches_the_template(qwen3_tokenizer):
    messages = [{"role": "user", "content": "What is 2+2?"}]
    off = _session(qwen3_tokenizer, messages, enable_thinking=False).render(messages).text
    on = _session(qwen3_tokenizer, messages, enable_thinking=True).render(messages).text
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.endswith("<|im_start|>assistant\n") and "<think>" not in on


def test_earlier_reasoning_is_kept_out_of_the_next_turn(qwen3_tokenizer):
    messages = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": REPLY},
                {"role": "user", "content": "And 3+3?"}]
    prompt = _session(qwen3_tokenizer, messages, enable_thinking=True).render(messages).text
    assert "It is **4**." in prompt and "That is 4." not in prompt and "<think>" not in prompt
    assert prompt.endswith("<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")


def test_a_continued_reply_keeps_its_own_reasoning(qwen3_tokenizer):
    """The reply being continued is after the last user message: its reasoning stays, so the
    model writes on from where it stopped."""
    messages = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": REPLY}]
    prompt = _session(qwen3_tokenizer, messages).render(messages, continue_final=True).text
    assert prompt.endswith("<think>\nThe user asks for 2+2. That is 4.\n</think>\n\nIt is **4**.")
