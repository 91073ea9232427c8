"""Phi-3 / Phi-4-mini and SmolLM3 chat templates and stop tokens on tiny tokenizer.json files
made here: our rendering and ids equal transformers' apply_chat_template, and a reply stops at
the family's end-of-turn token (Phi-3's <|end|> comes from generation_config.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import decoders, models, pre_tokenizers, trainers

from chatapp.text import Tokenizer
from chatapp.text.prompt import render_and_encode

transformers = pytest.importorskip("transformers")

# Phi-3-mini-4k/128k-instruct and Phi-3.5-mini-instruct's template, as in their tokenizer_config.json.
PHI3 = ("{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
        "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}"
        "{% endif %}")
# Phi-4-mini-instruct's.
PHI4_MINI = ("{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
             "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + "
             "message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + "
             "message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
             "{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}")
# SmolLM3-3B's, with its two tool sections (xml_tools, python_tools) left out: never rendered here.
SMOLLM3 = """{%- if enable_thinking is not defined -%}{%- set enable_thinking = true -%}{%- endif -%}
{%- if enable_thinking -%}{%- set reasoning_mode = "/think" -%}{%- else -%}{%- set reasoning_mode = "/no_think" -%}{%- endif -%}
{{- "<|im_start|>system\\n" -}}
{%- if messages[0].role == "system" -%}
{%- set system_message = messages[0].content -%}
{%- if "/no_think" in system_message -%}{%- set reasoning_mode = "/no_think" -%}
{%- elif "/think" in system_message -%}{%- set reasoning_mode = "/think" -%}{%- endif -%}
{%- set custom_instructions = system_message.replace("/no_think", "").replace("/think", "").rstrip() -%}
{%- endif -%}
{%- if "/system_override" in system_message -%}
{{- custom_instructions.replace("/system_override", "").rstrip() -}}{{- "<|im_end|>\\n" -}}
{%- else -%}
{{- "## Metadata\\n\\n" -}}{{- "Knowledge Cutoff Date: June 2025\\n" -}}
{%- set today = strftime_now("%d %B %Y") -%}{{- "Today Date: " ~ today ~ "\\n" -}}
{{- "Reasoning Mode: " + reasoning_mode + "\\n\\n" -}}{{- "## Custom Instructions\\n\\n" -}}
{%- if custom_instructions -%}{{- custom_instructions + "\\n\\n" -}}
{%- elif reasoning_mode == "/think" -%}{{- "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Think first.\\n\\n" -}}
{%- else -%}{{- "You are a helpful AI assistant named SmolLM, trained by Hugging Face.\\n\\n" -}}{%- endif -%}
{{- "<|im_end|>\\n" -}}
{%- endif -%}
{%- for message in messages -%}
{%- set content = message.content if message.content is string else "" -%}
{%- if message.role == "user" -%}{{ "<|im_start|>" + message.role + "\\n"  + content + "<|im_end|>\\n" }}
{%- elif message.role == "assistant" -%}
{% generation %}
{%- if reasoning_mode == "/think" -%}{{ "<|im_start|>assistant\\n" + content.lstrip("\\n") + "<|im_end|>\\n" }}
{%- else -%}{{ "<|im_start|>assistant\\n" + "<think>\\n\\n</think>\\n" + content.lstrip("\\n") + "<|im_end|>\\n" }}
{%- endif -%}
{% endgeneration %}
{%- elif message.role == "tool" -%}{{ "<|im_start|>" + "user\\n"  + content + "<|im_end|>\\n" }}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{%- if reasoning_mode == "/think" -%}{{ "<|im_start|>assistant\\n" }}
{%- else -%}{{ "<|im_start|>assistant\\n" + "<think>\\n\\n</think>\\n"  }}{%- endif -%}
{%- endif -%}"""

FAMILIES = {
    "phi3": (PHI3, ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"], "<|endoftext|>",
             ["<|endoftext|>", "<|end|>"], "<|end|>"),
    "phi4-mini": (PHI4_MINI, ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|tool|>",
                              "<|/tool|>"], "<|endoftext|>", ["<|endoftext|>", "<|end|>"], "<|end|>"),
    "smollm3": (SMOLLM3, ["<|end_of_text|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", ["<|im_end|>"],
                "<|im_end|>"),
}
CONVERSATIONS = [
    [{"role": "user", "content": "No system turn here."}],
    [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "What is 2+2? 中文 🙂"}],
    [{"role": "system", "content": "Answer in French. /no_think"}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Bonjour !"}, {"role": "user", "content": "x = {'a': 1}\n\n  end"}],
]


def _folder(root: Path, family: str) -> Path:
    template, specials, eos, stops, _ = FAMILIES[family]
    folder = root / family
    folder.mkdir()
    backend = HFBackend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(["you are brief, answer in french", "system user assistant think"] * 3, trainer)
    backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": eos, "chat_template": template, "add_bos_token": False,
         "tokenizer_class": "PreTrainedTokenizerFast"}), encoding="utf-8")
    ids = [backend.token_to_id(t) for t in stops]
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": ids if len(ids) > 1 else ids[0]}))
    return folder


@pytest.fixture(scope="module", params=list(FAMILIES))
def pair(request, tmp_path_factory):
    folder = _folder(tmp_path_factory.mktemp("templates"), request.param)
    ours = Tokenizer.from_hf_folder(folder)
    ref = transformers.AutoTokenizer.from_pretrained(folder)
    return request.param, ours, ref


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("thinking", [None, False])
def test_prompt_ids_equal_transformers(pair, messages, thinking):
    family, ours, ref = pair
    extra = {} if thinking is None else {"enable_thinking": thinking}
    prompt = render_and_encode(ours, messages, **extra)
    expected_text = ref.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **extra)
    expected = ref.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, **extra)
    expected = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
    assert prompt.text == expected_text
    assert prompt.ids == list(expected)
    if family == "smollm3":
        mode = "/no_think" if thinking is False or "/no_think" in messages[0]["content"] else "/think"
        assert f"Reasoning Mode: {mode}" in prompt.text


def test_replies_stop_at_the_end_of_turn_token(pair):
    family, ours, _ = pair
    end_of_turn = FAMILIES[family][4]
    assert ours.token_to_id(end_of_turn) in ours.eos_ids
