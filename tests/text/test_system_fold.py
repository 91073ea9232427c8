"""Templates that refuse a system turn (Gemma's raises "System role not supported"): the system
prompt goes into the first user turn, and the prompt says it did."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import decoders, models, pre_tokenizers, trainers

from chatapp.engine.session import ChatSession
from chatapp.text import Tokenizer
from chatapp.text.chat_template import ChatTemplateError
from chatapp.text.prompt import fold_system_prompt, render_and_encode

# Gemma 2's template, as its tokenizer_config.json ships it.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")


@pytest.fixture(scope="module")
def gemma_like(tmp_path_factory) -> Tokenizer:
    folder = tmp_path_factory.mktemp("gemma-like")
    backend = HFBackend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>", "<bos>", "<start_of_turn>",
                                                                  "<end_of_turn>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(["be brief user model hello there"] * 3, trainer)
    backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<bos>", "eos_token": "<eos>", "chat_template": GEMMA_TEMPLATE, "add_bos_token": True}))
    return Tokenizer.from_hf_folder(folder)


CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again"}]


def test_system_prompt_is_folded_into_the_first_user_turn(gemma_like):
    prompt = render_and_encode(gemma_like, CONVERSATION)
    assert prompt.folded_system
    assert prompt.text == ("<bos><start_of_turn>user\nBe brief.\n\nHello<end_of_turn>\n<start_of_turn>model\nHi."
                           "<end_of_turn>\n<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\n")
    assert prompt.ids[0] == gemma_like.bos_id and prompt.ids.count(gemma_like.bos_id) == 1
    assert gemma_like.backend.token_to_id("<end_of_turn>") in gemma_like.eos_ids
    plain = render_and_encode(gemma_like, CONVERSATION[1:])  # no system prompt: nothing to say
    assert not plain.folded_system and "Be brief" not in plain.text
    # A reply being continued keeps its folded system prompt too.
    cont = render_and_encode(gemma_like, CONVERSATION[:3], continue_final=True)
    assert cont.folded_system and cont.text.endswith("<start_of_turn>model\nHi.")


def test_other_template_errors_are_not_hidden(gemma_like):
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        render_and_encode(gemma_like, [{"role": "system", "content": "x"}, {"role": "assistant", "content": "y"},
                                       {"role": "assistant", "content": "z"}])


def test_templates_that_take_a_system_turn_are_left_alone(gemma_like):
    chatml = SimpleNamespace(**{k: getattr(gemma_like, k) for k in ("encode", "bos_id", "marker_strings")},
                             add_bos=False, chat_template=None,
                             apply_chat_template=lambda messages, add_generation_prompt=True: "".join(
                                 f"[{m['role']}]{m['content']}" for m in messages))
    prompt = render_and_encode(chatml, CONVERSATION)
    assert not prompt.folded_system and prompt.text.startswith("[system]Be brief.[user]Hello")


def test_fold_system_prompt_cases():
    assert fold_system_prompt(CONVERSATION[1:]) is None
    assert fold_system_prompt([{"role": "system", "content": "S"}]) == [{"role": "user", "content": "S"}]
    folded = fold_system_prompt(CONVERSATION)
    assert folded[0] == {"role": "user", "content": "Be brief.\n\nHello"} and CONVERSATION[1]["content"] == "Hello"


def test_chat_session_reports_the_fold(gemma_like):
    session = ChatSession(SimpleNamespace(tokenizer=gemma_like, context_len=512), system_prompt="Be brief.",
                          messages=[{"role": "user", "content": "Hello"}])
    ids, dropped = session.fit(reserve=16)
    assert session.folded_system and dropped == 0
    assert "Be brief.\n\nHello" in gemma_like.decode(ids, skip_special_tokens=False)
