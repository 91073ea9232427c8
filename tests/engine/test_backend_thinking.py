"""ChatBackend with a Qwen3-style template: a real tiny model, as the window's worker runs it."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from helpers.qwen3_template import QWEN3_STYLE_TEMPLATE  # noqa: E402
from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=4)
QUESTION = [{"role": "user", "content": "the cat?"}]


def _backend(folder, template=None):
    if template is not None:
        config_path = folder / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config_path.write_text(json.dumps({**config, "chat_template": template}), encoding="utf-8")
    backend = ChatBackend()
    info = backend.load(str(folder), LoadOptions(device="cpu", context_len=256, threads=1))
    return backend, info


@pytest.fixture(scope="module")
def qwen3_style(tmp_path_factory):
    return _backend(tiny_llama_folder(tmp_path_factory.mktemp("thinking") / "model", max_len=256),
                    QWEN3_STYLE_TEMPLATE)


def _prompt(backend, messages, **kwargs):
    "".join(backend.stream(messages, "be brief", GREEDY, **kwargs))
    return backend.finished().prompt


def test_the_switch_is_seen_and_reaches_the_prompt(qwen3_style):
    backend, info = qwen3_style
    assert info.thinking_switch
    assert _prompt(backend, QUESTION, enable_thinking=False).endswith("assistant\n<think>\n\n</think>\n\n")
    assert _prompt(backend, QUESTION, enable_thinking=True).endswith("assistant\n")
    assert _prompt(backend, QUESTION).endswith("assistant\n")  # None: the template's default


def test_the_next_turn_does_not_see_the_last_replys_reasoning(qwen3_style):
    backend, _ = qwen3_style
    history = QUESTION + [{"role": "assistant", "content": "<think>\nsecret musing\n</think>\n\non the mat."},
                          {"role": "user", "content": "and the dog?"}]
    prompt = _prompt(backend, history, enable_thinking=True)
    assert "on the mat." in prompt and "secret musing" not in prompt


def test_a_template_without_the_switch_is_rendered_as_before(tmp_path):
    backend, info = _backend(tiny_llama_folder(tmp_path / "model", max_len=256))
    assert not info.thinking_switch
    assert "<think>" not in _prompt(backend, QUESTION, enable_thinking=False)
