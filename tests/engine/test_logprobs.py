"""Per-token log-probabilities: recorded while generating and scored over a text, checked
against log-softmax of our own logits computed independently (a plain full forward pass)."""

from __future__ import annotations

import math

import pytest
import torch

from chatapp.engine.generate import Engine
from chatapp.engine.logprobs import TokenText, score_tokens
from chatapp.engine.sampling import ApiSamplingSettings, SamplingSettings
from chatapp.model import ModelConfig, Transformer

from mock_models import EOS


def tiny_model(seed: int = 3, max_seq_len: int = 64) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(arch="llama", vocab_size=257, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                         intermediate_size=48, max_seq_len=max_seq_len, tie_embeddings=True)
    model = Transformer(config).eval()
    with torch.no_grad():  # sharper logits than the init gives, so the top tokens differ clearly
        model.tok_embeddings.weight.mul_(8.0)
    return model


def full_logprobs(model: Transformer, ids: list[int]) -> torch.Tensor:
    """(len(ids), vocab) log-softmax of one uncached forward pass over all ids."""
    fresh = tiny_model()  # same seed: same weights, its own (unused) cache
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        logits = fresh(torch.tensor([ids]))  # (1, T, vocab), no cache set up: plain attention
    return torch.log_softmax(logits[0].float(), dim=-1)


def make_engine(byte_tokenizer, **kwargs) -> tuple[Engine, Transformer]:
    model = tiny_model(**kwargs)
    engine = Engine(model, byte_tokenizer, eos_ids=set())  # never stops early: a fixed length
    return engine, model


def test_generated_logprobs_equal_log_softmax_of_our_logits(byte_tokenizer):
    engine, model = make_engine(byte_tokenizer)
    prompt = byte_tokenizer.encode("Hello there")
    settings = SamplingSettings(temperature=0.9, top_k=0, top_p=1.0, min_p=0.0, seed=7, max_new_tokens=12)
    reply = engine.generate(prompt, settings, logprobs=5)
    assert len(reply.logprobs) == len(reply.token_ids) == 12
    expected = full_logprobs(model, prompt + reply.token_ids)
    for step, (entry, token) in enumerate(zip(reply.logprobs, reply.token_ids)):
        row = expected[len(prompt) - 1 + step]
        assert entry.id == token
        assert entry.logprob == pytest.approx(float(row[token]), abs=1e-4)
        values, ids = torch.topk(row, 5)
        assert [alt.id for alt in entry.top] == ids.tolist()
        assert [alt.logprob for alt in entry.top] == pytest.approx(values.tolist(), abs=1e-4)
        # no transform in force but temperature: the sampler's probability is softmax(logits / T)
        assert entry.sampled_prob == pytest.approx(float(torch.softmax(row / 0.9, -1)[token]), abs=1e-4)


def test_greedy_picks_the_most_probable_and_its_sampled_prob_is_one(byte_tokenizer):
    engine, _model = make_engine(byte_tokenizer)
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=8)
    reply = engine.generate(byte_tokenizer.encode("abc"), settings, logprobs=3)
    for entry in reply.logprobs:
        assert entry.top[0].id == entry.id
        assert entry.logprob == entry.top[0].logprob == max(alt.logprob for alt in entry.top)
        assert entry.sampled_prob == 1.0


def reference_sampled_prob(row_logits: torch.Tensor, window: list[int], token: int, *, temperature: float,
                           top_k: int, top_p: float, penalty: float) -> float:
    """The documented order, written out: repetition penalty, temperature, top-k, top-p, renormalise."""
    logits = row_logits.clone()
    for seen in set(window):
        logits[seen] = logits[seen] / penalty if logits[seen] > 0 else logits[seen] * penalty
    logits = logits / temperature
    order = sorted(range(len(logits)), key=lambda i: -float(logits[i]))[:top_k]
    probs = torch.softmax(logits[order], -1).tolist()
    kept, total = [], 0.0
    for i, p in zip(order, probs):
        if total >= top_p:
            break
        kept.append(i)
        total += p
    if token not in kept:
        return 0.0
    z = sum(math.exp(float(logits[i])) for i in kept)
    return math.exp(float(logits[token])) / z


def test_sampled_prob_follows_penalty_temperature_top_k_and_top_p(byte_tokenizer):
    engine, model = make_engine(byte_tokenizer)
    prompt = byte_tokenizer.encode("aaaa bbbb")
    settings = SamplingSettings(temperature=0.7, top_k=6, top_p=0.8, min_p=0.0, repetition_penalty=1.3,
                                repeat_last_n=0, seed=11, max_new_tokens=10)
    reply = engine.generate(prompt, settings, logprobs=0)
    ids = prompt + reply.token_ids
    fresh = tiny_model()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        logits = fresh(torch.tensor([ids]))[0]
    for step, entry in enumerate(reply.logprobs):
        at = len(prompt) - 1 + step
        expected = reference_sampled_prob(logits[at], ids[:at + 1], entry.id, temperature=0.7, top_k=6,
                                          top_p=0.8, penalty=1.3)
        assert expected > 0  # the sampler never draws a filtered token
        assert entry.sampled_prob == pytest.approx(expected, abs=1e-4)
        assert entry.top == []  # logprobs=0: the chosen token only


def test_additive_penalties_as_openai_defines_them(byte_tokenizer):
    engine, model = make_engine(byte_tokenizer)
    prompt = byte_tokenizer.encode("xyz")
    settings = ApiSamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=3, max_new_tokens=10,
                                   frequency_penalty=1.5, presence_penalty=0.5)
    reply = engine.generate(prompt, settings, logprobs=0)
    ids = prompt + reply.token_ids
    fresh = tiny_model()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        logits = fresh(torch.tensor([ids]))[0]
    for step, entry in enumerate(reply.logprobs):
        row = logits[len(prompt) - 1 + step].clone()
        for token in set(reply.token_ids[:step]):  # only the reply's own tokens count
            count = reply.token_ids[:step].count(token)
            row[token] -= count * 1.5 + 0.5
        assert entry.sampled_prob == pytest.approx(float(torch.softmax(row, -1)[entry.id]), abs=1e-4)
    with pytest.raises(ValueError, match="frequency_penalty"):
        ApiSamplingSettings(frequency_penalty=3.0)


def test_recording_does_not_change_what_is_sampled(byte_tokenizer):
    engine, _ = make_engine(byte_tokenizer)
    settings = SamplingSettings(temperature=1.0, seed=5, max_new_tokens=10)
    prompt = byte_tokenizer.encode("seeded")
    without = list(engine.generate(prompt, settings).token_ids)
    assert engine.reply.logprobs == []  # off: nothing recorded
    with_logprobs = list(engine.generate(prompt, settings, logprobs=4).token_ids)
    assert with_logprobs == without


def test_score_tokens_equals_a_full_forward_pass_in_any_chunking(byte_tokenizer):
    model = tiny_model()
    ids = byte_tokenizer.encode("The quick brown fox jumps over the lazy dog.")
    expected = full_logprobs(model, ids)
    calls: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[1]))
    model.setup_cache(batch_size=1, max_seq_len=64)
    for chunk in (1, 7, 256):
        calls.clear()
        scored = score_tokens(model, ids, tokenizer=byte_tokenizer, top_k=2, chunk=chunk)
        assert max(calls) <= chunk  # memory: one chunk of logits at a time
        assert [e.id for e in scored] == ids[1:]
        for i, entry in enumerate(scored):
            assert entry.logprob == pytest.approx(float(expected[i, ids[i + 1]]), abs=1e-4)
            assert entry.top[0].logprob == pytest.approx(float(expected[i].max()), abs=1e-4)
            assert entry.sampled_prob is None


def test_engine_score_then_generate_keeps_the_cache_consistent(byte_tokenizer):
    engine, model = make_engine(byte_tokenizer)
    ids = byte_tokenizer.encode("abcdefgh")
    scored = engine.score(ids, chunk=3)
    assert len(scored) == len(ids) - 1 and engine.cached_tokens == len(ids) - 1
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=4)
    after_score = engine.generate(ids, greedy).token_ids
    engine.reset()
    assert engine.generate(ids, greedy).token_ids == after_score
    with pytest.raises(ValueError, match="context holds"):
        engine.score(list(range(65)))


def test_token_text_and_bytes_for_a_split_utf8_character(byte_tokenizer):
    text = TokenText(byte_tokenizer)
    first, second = "é".encode("utf-8")
    assert text(first) == ("\ufffd", bytes([first]))
    assert text(second) == ("\ufffd", bytes([second]))
    assert text(ord("a")) == ("a", b"a")
    assert text(EOS) == ("<eos>", b"<eos>")
    entry_json = score_tokens(tiny_model(), [ord("a"), first, second],
                              tokenizer=byte_tokenizer)[0].to_json()
    assert entry_json["bytes"] == [first] and entry_json["top"] == []
