"""The column-major inference layout changes strides only, never results."""

from __future__ import annotations

import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.linear import configure_fast_paths


def test_column_major_weights_give_identical_logits_and_shapes():
    torch.manual_seed(0)
    config = ModelConfig(arch="llama", vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                         intermediate_size=48, max_seq_len=32, tie_embeddings=True)
    model = Transformer(config).eval()
    tokens = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        before = model(tokens)
        shapes = {n: p.shape for n, p in model.named_parameters()}
        assert configure_fast_paths(model, column_major=True) == 2 * 7 + 1  # by type: projections, lm_head
        after = model(tokens)
    assert torch.equal(before, after)
    assert {n: p.shape for n, p in model.named_parameters()} == shapes
    q = model.layers[0].attn.q_proj.weight
    assert q.stride() == (1, 32)  # column-major (out, in)
    assert model.lm_head.weight is model.tok_embeddings.weight  # still tied
    assert not model.tok_embeddings.weight.is_contiguous()
    assert model.layers[0].attn_norm.weight.is_contiguous()  # 1-D weights untouched
