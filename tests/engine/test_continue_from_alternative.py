"""Continue from an alternative: a reply whose first tokens are given starts with exactly them,
records the model's own log-probabilities for them, and goes on sampling from there."""

from __future__ import annotations

import pytest
import torch

from chatapp.engine.sampling import SamplingSettings

from test_logprobs import full_logprobs, make_engine


def test_a_forced_reply_starts_with_exactly_those_tokens(byte_tokenizer):
    engine, model = make_engine(byte_tokenizer)
    prompt = byte_tokenizer.encode("Hello there")
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=8)
    original = engine.generate(prompt, greedy, logprobs=4)
    # the second token's runner-up: what "continue from this alternative" would pick
    alternative = original.logprobs[1].top[1].id
    assert alternative != original.token_ids[1]
    forced = (original.token_ids[0], alternative)
    reply = engine.generate(prompt, greedy, logprobs=4, forced=forced)
    assert reply.token_ids[:2] == list(forced) and len(reply.token_ids) == 8
    expected = full_logprobs(model, prompt + reply.token_ids)
    for step, entry in enumerate(reply.logprobs):
        assert entry.logprob == pytest.approx(float(expected[len(prompt) - 1 + step][entry.id]), abs=1e-4)
    assert [e.sampled_prob for e in reply.logprobs[:2]] == [None, None]  # taken, not sampled
    # after the forced part, greedy goes on: each token the most probable given the ones before
    for step in range(2, 8):
        assert reply.token_ids[step] == int(torch.argmax(expected[len(prompt) - 1 + step]))
        assert reply.logprobs[step].sampled_prob == 1.0
