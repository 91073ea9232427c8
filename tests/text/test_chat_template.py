"""Chat templates: the same text as transformers renders, ChatML when a model has none, and a
sandbox that stops a template from reaching Python internals."""

from __future__ import annotations

import pytest

from chatapp.text import CHATML_TEMPLATE, ChatTemplateError, render_chat

CONVERSATIONS = {
    "user only": [{"role": "user", "content": "What is the capital of France?"}],
    "with system": [{"role": "system", "content": "You answer in one word."},
                    {"role": "user", "content": "Capital of France?"}],
    "multi turn": [{"role": "user", "content": "Hi!"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke about 日本 🙂"}],
    "system and turns": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "2+2?"},
                         {"role": "assistant", "content": "4"},
                         {"role": "user", "content": "And 3+3?\n  Explain."}],
}

# Exercises what transformers' environment offers: tojson (non-ASCII kept), loop controls,
# namespace, the generation block, raise_exception behind a condition, bos/eos variables.
FEATURE_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(count=0) %}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + message['role']) }}{% endif %}"
    "{% if message['role'] == 'system' %}{% continue %}{% endif %}"
    "{% set ns.count = ns.count + 1 %}"
    "[{{ ns.count }}] {{ message['role'] }}: "
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}{% endgeneration %}"
    "{% else %}{{ message['content'] }}{% endif %}{{ eos_token }}\n"
    "{% endfor %}"
    "meta={{ messages[0] | tojson }} "
    "{% if add_generation_prompt %}[{{ ns.count + 1 }}] assistant:{% endif %}"
)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_smollm_template_matches_transformers(smollm, hf_smollm, name, add_generation_prompt):
    messages = CONVERSATIONS[name]
    expected = hf_smollm.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert smollm.apply_chat_template(messages, add_generation_prompt=add_generation_prompt) == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_feature_template_matches_transformers(hf_smollm, name):
    messages = CONVERSATIONS[name]
    expected = hf_smollm.apply_chat_template(messages, chat_template=FEATURE_TEMPLATE, tokenize=False,
                                             add_generation_prompt=True)
    ours = render_chat(FEATURE_TEMPLATE, messages, add_generation_prompt=True,
                       bos_token=hf_smollm.bos_token, eos_token=hf_smollm.eos_token)
    assert ours == expected


@pytest.mark.slow
def test_smollm_template_text(smollm):
    text = smollm.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                    "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert smollm.encode_markup(text)[:1] == [1] and smollm.encode_markup(text)[-3:] == [520, 9531, 198]


def test_chatml_fallback():
    messages = CONVERSATIONS["with system"]
    expected = ("<|im_start|>system\nYou answer in one word.<|im_end|>\n"
                "<|im_start|>user\nCapital of France?<|im_end|>\n")
    assert render_chat(None, messages, add_generation_prompt=False) == expected
    assert render_chat("  ", messages) == expected + "<|im_start|>assistant\n"
    assert render_chat(CHATML_TEMPLATE, messages) == expected + "<|im_start|>assistant\n"


@pytest.mark.slow
def test_chatml_fallback_on_a_tokenizer_without_template(smollm):
    from chatapp.text import Tokenizer

    bare = Tokenizer(smollm.backend, bos_id=1, eos_id=2)
    assert bare.chat_template is None
    assert bare.apply_chat_template([{"role": "user", "content": "x"}]) == (
        "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n")


def test_bos_eos_and_extra_variables_reach_the_template():
    template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}|{{ tools | tojson }}"
    rendered = render_chat(template, [{"role": "user", "content": "é"}], bos_token="<s>", eos_token="</s>")
    assert rendered == "<s>é</s>|null"
    tools = [{"name": "clock", "description": "l'heure"}]
    assert render_chat(template, [], tools=tools).endswith('|[{"name": "clock", "description": "l\'heure"}]')


def test_strftime_now_is_available():
    import datetime

    text = render_chat("{{ strftime_now('%Y') }}", [])
    assert text == str(datetime.datetime.now().year)


def test_raise_exception_becomes_chat_template_error():
    with pytest.raises(ChatTemplateError) as caught:
        render_chat(FEATURE_TEMPLATE, [{"role": "tool", "content": "x"}])
    assert caught.value.reason == "unknown role tool"
    assert "unknown role tool" in str(caught.value)


@pytest.mark.parametrize("escape", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{{ raise_exception.__globals__['__builtins__'] }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_sandbox_blocks_python_internals(escape):
    with pytest.raises(ChatTemplateError) as caught:
        render_chat(escape, [{"role": "user", "content": "x"}])
    assert caught.value.reason.startswith("blocked by the sandbox") and "unsafe" in caught.value.reason


def test_sandbox_is_immutable():
    with pytest.raises(ChatTemplateError) as caught:
        render_chat("{% set xs = [] %}{{ xs.append(1) }}", [])
    assert "unsafe" in caught.value.reason
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(ChatTemplateError):
        render_chat("{{ messages[0].update({'content': 'changed'}) }}", messages)
    assert messages == [{"role": "user", "content": "x"}]


def test_syntax_and_runtime_errors_are_reported():
    with pytest.raises(ChatTemplateError) as caught:
        render_chat("{% for m in messages %}{{ m.content }}", [])
    assert caught.value.reason.startswith("syntax error on line 1")
    with pytest.raises(ChatTemplateError) as caught:
        render_chat("{{ messages[0]['content'] + 1 }}", [{"role": "user", "content": "x"}])
    assert "TypeError" in caught.value.reason
    with pytest.raises(ChatTemplateError):
        render_chat(None, "not a list of messages")
