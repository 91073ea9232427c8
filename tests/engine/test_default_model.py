"""The real default model end to end: our loader, engine and CLI against transformers."""

from __future__ import annotations

import json

import pytest
import torch

from chatapp import cli

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


def test_loader_reads_the_default_model(default_loaded_model):
    loaded = default_loaded_model
    assert loaded.kind == "gguf" and loaded.dtype == torch.float32
    assert (loaded.config.n_layers, loaded.config.dim, loaded.config.vocab_size) == (30, 576, 49152)
    assert loaded.tokenizer.eos_ids >= {2}  # <|im_end|>


def test_cli_generate_chat_greedy_matches_transformers(capsys, hf_default_model, hf_default_tokenizer):
    code = cli.main(["generate", "--model", "default", "--chat", "--prompt", QUESTION,
                     "--temperature", "0", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] == "The capital of France is Paris."
    assert out["finish_reason"] == "eos"

    prompt = hf_default_tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}],
                                                      add_generation_prompt=True, return_tensors="pt")
    ids = prompt["input_ids"] if not torch.is_tensor(prompt) else prompt
    with torch.no_grad():
        expected = hf_default_model.generate(ids, max_new_tokens=64, do_sample=False)[0, ids.shape[1]:].tolist()
    assert out["prompt_tokens"] == ids.shape[1]
    assert out["token_ids"] == expected
    assert out["new_tokens"] == len(expected)
    for key in ("ttft_s", "prefill_tok_s", "decode_tok_s"):
        assert out[key] > 0


def test_session_second_turn_reuses_cache_on_the_real_model(default_loaded_model):
    from chatapp.engine.generate import Engine
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.engine.session import ChatSession

    loaded = default_loaded_model
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=24)
    session = ChatSession(Engine(loaded.model, loaded.tokenizer, context_len=512))
    "".join(session.send(QUESTION, greedy))
    second = "".join(session.send("And of Germany?", greedy))
    prefilled = session.reply.stats.prefilled_tokens
    total = session.reply.stats.prompt_tokens
    assert prefilled < total / 2  # only the new turn (and the template's turn markers)

    fresh = ChatSession(Engine(loaded.model, loaded.tokenizer, context_len=512),
                        messages=session.messages[:-1])
    assert "".join(fresh.respond(greedy)) == second
    assert "Berlin" in second


def test_continuing_a_cut_reply_equals_one_longer_reply_on_the_real_model(default_loaded_model):
    from chatapp.engine.generate import Engine
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.engine.session import ChatSession

    loaded = default_loaded_model
    short = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=10)
    session = ChatSession(Engine(loaded.model, loaded.tokenizer, context_len=512))
    start = "".join(session.send("Write three sentences about the sea.", short))
    assert session.reply.finish_reason == "length"
    more = "".join(session.continue_reply(short))
    assert session.reply.stats.prefilled_tokens <= 2  # the cut reply was still in the cache
    longer = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=20)
    fresh = ChatSession(Engine(loaded.model, loaded.tokenizer, context_len=512))
    assert "".join(fresh.send("Write three sentences about the sea.", longer)) == start + more


def test_estimate_reads_the_config_without_loading_weights():
    from chatapp.engine.loader import estimate_model

    estimate = estimate_model("default", device="cpu", context_len=2048)
    assert estimate["name"] == "SmolLM2-135M-Instruct" and estimate["context_len"] == 2048
    assert 134_000_000 < estimate["n_params"] < 135_500_000
    assert estimate["memory_bytes"] > 134_000_000 * 4 and estimate["fits"]
