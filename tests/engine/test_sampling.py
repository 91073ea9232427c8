"""Each sampling rule on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from chatapp.engine.sampling import (SamplingSettings, SettingsError, apply_repetition_penalty,
                                     min_p_filter, sample_next, top_k_filter, top_p_filter)


def _logits_for(probs):
    return torch.tensor([math.log(p) for p in probs])


def test_greedy_takes_argmax_whatever_the_generator():
    logits = torch.tensor([0.1, 2.0, 1.9, -1.0])
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0)
    picks = {sample_next(logits, settings, torch.tensor([]), torch.Generator().manual_seed(s)) for s in range(5)}
    assert picks == {1}


def test_temperature_matches_softmax_frequencies():
    logits = torch.tensor([1.0, 0.0, -1.0])
    settings = SamplingSettings(temperature=2.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(3)
    for _ in range(4000):
        counts[sample_next(logits, settings, torch.tensor([]), g)] += 1
    expected = (logits / 2.0).softmax(-1)
    assert torch.allclose(counts / 4000, expected, atol=0.03)


def test_low_temperature_sharpens():
    logits = torch.tensor([1.0, 0.0])
    settings = SamplingSettings(temperature=0.1, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    picks = [sample_next(logits, settings, torch.tensor([]), g) for _ in range(200)]
    assert picks.count(0) >= 198


def test_top_k_keeps_k_largest():
    logits = torch.tensor([0.5, 3.0, 1.0, 2.0, -1.0])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.tolist() == [False, True, False, True, False]
    assert torch.equal(top_k_filter(logits, 0), logits)


def test_top_k_sampling_never_leaves_the_set():
    logits = torch.tensor([0.5, 3.0, 1.0, 2.0, -1.0])
    settings = SamplingSettings(temperature=5.0, top_k=2, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(1)
    picks = {sample_next(logits, settings, torch.tensor([]), g) for _ in range(300)}
    assert picks == {1, 3}


def test_top_p_keeps_smallest_set_reaching_p():
    logits = _logits_for([0.15, 0.5, 0.05, 0.3])
    kept = torch.isfinite(top_p_filter(logits, 0.8))
    assert kept.tolist() == [False, True, False, True]
    kept = torch.isfinite(top_p_filter(logits, 0.81))
    assert kept.tolist() == [True, True, False, True]
    # the top token always survives, however small p
    assert torch.isfinite(top_p_filter(logits, 0.01)).tolist() == [False, True, False, False]


def test_min_p_drops_tokens_below_fraction_of_top():
    logits = _logits_for([0.5, 0.3, 0.04, 0.16])
    kept = torch.isfinite(min_p_filter(logits, 0.1))  # threshold 0.05
    assert kept.tolist() == [True, True, False, True]


def test_repetition_penalty_divides_positive_multiplies_negative():
    logits = torch.tensor([2.0, -2.0, 1.0, 4.0])
    out = apply_repetition_penalty(logits, torch.tensor([0, 1, 1]), 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0, 4.0]
    assert logits.tolist() == [2.0, -2.0, 1.0, 4.0]  # input untouched


def test_repetition_penalty_changes_greedy_choice():
    logits = torch.tensor([2.0, 1.5])
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.5)
    assert sample_next(logits, settings, torch.tensor([0]), None) == 1
    assert sample_next(logits, settings, torch.tensor([1]), None) == 0


def test_same_seed_same_draws_different_seed_different():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(3))
    settings = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)

    def draws(seed):
        g = torch.Generator().manual_seed(seed)
        return [sample_next(logits, settings, torch.tensor([]), g) for _ in range(30)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_k": -3}, "top_k"),
    ({"min_p": 1.0}, "min_p"),
    ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"stop": [""]}, "stop"),
])
def test_settings_reject_out_of_range(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        SamplingSettings(**kwargs)


def test_top_k_then_top_p_then_min_p_compose():
    # probabilities 0.4, 0.3, 0.2, 0.06, 0.04: top-k 4 drops the last, top-p 0.65 keeps two
    logits = _logits_for([0.06, 0.4, 0.2, 0.3, 0.04])
    settings = SamplingSettings(temperature=1.0, top_k=4, top_p=0.65, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    picks = [sample_next(logits, settings, torch.tensor([]), g) for _ in range(400)]
    assert set(picks) == {1, 3}
    assert 0.5 < picks.count(1) / 400 < 0.65  # 0.4 / 0.7 renormalised
    settings = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.6, repetition_penalty=1.0)
    assert {sample_next(logits, settings, torch.tensor([]), g) for _ in range(100)} == {1, 3}
