"""One name table per format and family, read both ways."""

from __future__ import annotations

import pytest

from chatapp.model import ModelConfig, Transformer
from chatapp.weights import gguf_names, hf_names
from chatapp.weights.name_map import NameMap
from chatapp.weights.peft_adapter import hf_module_name, our_module_name


def test_name_map_reads_both_ways_and_says_none_otherwise():
    table = NameMap([("blk.{i}.attn_q.{p}", "layers.{i}.attn.q_proj.{p}"), ("output.weight", "lm_head.weight")])
    assert table.ours("blk.12.attn_q.bias") == "layers.12.attn.q_proj.bias"
    assert table.theirs("layers.12.attn.q_proj.bias") == "blk.12.attn_q.bias"
    assert table.theirs("lm_head.weight") == "output.weight"
    assert table.ours("blk.x.attn_q.weight") is None and table.theirs("layers.1.attn.q_proj.scale") is None
    assert table.ours("blk.1.attn_q.weightX") is None  # whole names only


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_every_parameter_of_ours_round_trips_through_hugging_face_names(family):
    gpt2 = family == "gpt2"
    config = ModelConfig(arch=family, vocab_size=32, dim=16, n_layers=2, n_heads=2, n_kv_heads=2,
                         intermediate_size=24, max_seq_len=16, qkv_bias=family != "llama",
                         **(dict(norm="layernorm", mlp="gelu", positions="learned", o_bias=True, mlp_bias=True)
                            if gpt2 else {}))
    for ours in Transformer(config).state_dict():
        if gpt2 and ".attn." in ours and ours.split(".")[3][0] in "qkv":
            ours = ours.replace(ours.split(".")[3], "qkv")  # written fused
        theirs = hf_names.hf_name(ours, family)
        assert theirs and hf_names.our_name(theirs, family) == ours, ours
        assert gguf_names.our_name(gguf_names.gguf_name(ours, family), family) == ours


def test_gpt2_names_without_the_transformer_prefix_are_read():
    assert hf_names.our_name("h.3.mlp.c_fc.bias", "gpt2") == "layers.3.mlp.up_proj.bias"
    assert hf_names.our_name("transformer.h.3.mlp.c_fc.bias", "gpt2") == "layers.3.mlp.up_proj.bias"
    assert hf_names.hf_name("layers.3.mlp.up_proj.bias", "gpt2") == "transformer.h.3.mlp.c_fc.bias"
    assert hf_names.is_conv1d_weight("layers.3.mlp.up_proj.weight", "gpt2")
    assert not hf_names.is_conv1d_weight("layers.3.mlp.up_proj.bias", "gpt2")
    assert not hf_names.is_conv1d_weight("layers.3.mlp.up_proj.weight", "llama")


def test_peft_module_names_come_from_the_same_table():
    assert hf_module_name("layers.4.mlp.gate_proj") == "model.layers.4.mlp.gate_proj"
    assert our_module_name(hf_module_name("layers.4.attn.o_proj"), "llama") == "layers.4.attn.o_proj"
    with pytest.raises(ValueError, match="layers.4.attn_norm"):
        hf_module_name("layers.4.attn_norm")  # a real name, but no LoRA layer
