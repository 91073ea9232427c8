"""The engine with a sliding-window KV cache: going back further than the ring keeps runs the
prompt again from 0, and the reply is the one a fresh cache gives."""

from __future__ import annotations

import torch

from chatapp.engine.generate import Engine
from chatapp.engine.sampling import SamplingSettings
from chatapp.model.config import ModelConfig
from chatapp.model.transformer import Transformer
from chatapp.model.window_cache import WindowKVCache


def _model() -> Transformer:
    config = ModelConfig(arch="gemma2", vocab_size=50, dim=32, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=16,
                         intermediate_size=48, max_seq_len=300, norm_unit_offset=True, post_norms=True,
                         embed_scale=True, mlp="geglu", sliding_window=4,
                         layer_types=("sliding_attention", "full_attention"), attn_softcap=5.0, final_softcap=5.0)
    torch.manual_seed(0)
    model = Transformer(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def test_going_back_past_the_window_cache_runs_the_prompt_again():
    settings = SamplingSettings(temperature=0.0, max_new_tokens=5)
    model = _model()
    engine = Engine(model, tokenizer=None, context_len=300, eos_ids=set())
    assert isinstance(model.layers[0].attn.kv_cache, WindowKVCache)  # 4 + 256 slots < 300
    first = list(range(1, 50)) * 5 + list(range(1, 31))  # 275 tokens
    list(engine.generate_ids(first, settings))
    second = first[:10] + [7, 8, 9]  # shares 10 tokens; the ring forgot positions 6..9
    assert not model.can_resume(10)
    got = list(engine.generate_ids(second, settings))
    assert engine.reply.stats.prefilled_tokens == len(second)

    fresh = Engine(_model(), tokenizer=None, context_len=300, eos_ids=set())
    assert got == list(fresh.generate_ids(second, settings))
    # A continuation within the slack reuses the cache.
    third = second + got[:2] + [3]
    list(engine.generate_ids(third, settings))
    assert engine.reply.stats.prefilled_tokens == 1
