"""The training memory estimate of LoRA over a compact base (int8 / int4)."""

from __future__ import annotations

import pytest

from chatapp.model import ModelConfig
from chatapp.model.lora import LoRAConfig
from chatapp.training.estimate import estimate_training_memory

CONFIG = ModelConfig(arch="llama", vocab_size=49152, dim=576, n_layers=30, n_heads=9, n_kv_heads=3,
                     intermediate_size=1536, max_seq_len=2048, tie_embeddings=True)
LORA = LoRAConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj"])


def test_compact_bases_need_less_than_float32_and_hold_their_compact_size():
    f32 = estimate_training_memory(CONFIG, "lora", LORA, 4, 256)
    int8 = estimate_training_memory(CONFIG, "lora", LORA, 4, 256, compact="int8")
    int4 = estimate_training_memory(CONFIG, "lora", LORA, 4, 256, compact="int4")
    assert int4.total_bytes < int8.total_bytes < f32.total_bytes
    adapter = int8.trainable_params * 4
    from chatapp.engine.weights_option import int8_rows_expected

    # int8 on the CPU holds a scale per row (model/int8_rows.py), else Q8_0's 34 bytes a 32 weights
    per_weight = 1 + 2 / CONFIG.dim if int8_rows_expected() else 34 / 32
    assert int8.weights_bytes - adapter == pytest.approx(CONFIG.n_params * per_weight, rel=0.01)
    assert f32.weights_bytes - int8.weights_bytes > 0.7 * CONFIG.n_params * 4 - adapter
    assert int8.gradients_bytes == f32.gradients_bytes  # the adapter's, float32 either way


def test_full_fine_tuning_over_compact_weights_is_refused():
    with pytest.raises(ValueError, match="only LoRA trains over int4 weights"):
        estimate_training_memory(CONFIG, "full", None, 4, 256, compact="int4")
