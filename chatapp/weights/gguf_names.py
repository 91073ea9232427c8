"""GGUF tensor names -> ours: one declarative map per model family.

GGUF names follow llama.cpp (gguf-py's `constants.TENSOR_NAMES`): `token_embd`, `blk.N.attn_q`,
`output_norm`, ... Each table below maps a GGUF name pattern to our parameter name, where
`{i}` is the layer index and `{p}` the parameter kind (weight or bias).
"""

from __future__ import annotations

import re
from typing import Optional

from .name_map import NameMap
from .phi3 import FUSED_GATE_UP, GGUF_ROPE_FACTORS, PHI3_GGUF_NAMES

# general.architecture values we run. "mistral" has no GGUF architecture of its own in
# llama.cpp (Mistral models are written as "llama"), but files that say "mistral" use the
# llama layout.
# Mixtral is written as "llama" with experts (gguf_config names it "mixtral" by its expert_count).
SUPPORTED_ARCHITECTURES = ("llama", "mistral", "qwen2", "gpt2", "qwen3", "qwen3moe", "gemma2", "gemma3", "phi3",
                           "smollm3")
# general.architecture -> our ModelConfig.arch, where the two differ.
OUR_ARCH = {"qwen3moe": "qwen3_moe"}

# Architectures whose q/k rows llama.cpp's convert_hf_to_gguf.py permutes when it writes the
# file: `LlamaModel.modify_tensors` calls `permute(q, n_head, n_head)` and
# `permute(k, n_head, n_head_kv)` on the weights and biases, because llama.cpp's Llama RoPE
# kernel rotates interleaved pairs (x0, x1), (x2, x3), ... while Hugging Face rotates halves.
# Qwen2 (`Qwen2Model`), Phi-3 (`Phi3MiniModel`, fused attn_qkv) and GPT-2 are written unpermuted.
# The loader undoes the permutation in exactly one place (gguf_loader.undo_rope_permutation) for
# these architectures only. Qwen3 (`Qwen3Model(Qwen2Model)`) and Qwen3-MoE are unpermuted too;
# Mixtral, written by LlamaModel, is permuted, and so is SmolLM3 (a LlamaModel subclass).
# Keys are our arch names.
ROPE_PERMUTED_ARCHITECTURES = frozenset({"llama", "mistral", "mixtral", "smollm3"})

_LLAMA_NAMES: list[tuple[str, str]] = [
    ("token_embd.weight", "tok_embeddings.weight"),
    ("output_norm.weight", "norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("blk.{i}.attn_norm.weight", "layers.{i}.attn_norm.weight"),
    ("blk.{i}.attn_q.{p}", "layers.{i}.attn.q_proj.{p}"),
    ("blk.{i}.attn_k.{p}", "layers.{i}.attn.k_proj.{p}"),
    ("blk.{i}.attn_v.{p}", "layers.{i}.attn.v_proj.{p}"),
    ("blk.{i}.attn_output.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("blk.{i}.ffn_norm.weight", "layers.{i}.mlp_norm.weight"),
    ("blk.{i}.ffn_gate.{p}", "layers.{i}.mlp.gate_proj.{p}"),
    ("blk.{i}.ffn_up.{p}", "layers.{i}.mlp.up_proj.{p}"),
    ("blk.{i}.ffn_down.{p}", "layers.{i}.mlp.down_proj.{p}"),
]

# GPT-2's fused q/k/v projection keeps the pseudo-name `attn.qkv` here; the loader splits it
# into q_proj, k_proj and v_proj. convert_hf_to_gguf.py already transposed GPT-2's Conv1D
# weights, so every GGUF GPT-2 matrix is (out, in) like nn.Linear.
_GPT2_NAMES: list[tuple[str, str]] = [
    ("token_embd.weight", "tok_embeddings.weight"),
    ("position_embd.weight", "pos_embeddings.weight"),
    ("output_norm.{p}", "norm.{p}"),
    ("output.weight", "lm_head.weight"),
    ("blk.{i}.attn_norm.{p}", "layers.{i}.attn_norm.{p}"),
    ("blk.{i}.attn_qkv.{p}", "layers.{i}.attn.qkv.{p}"),
    ("blk.{i}.attn_output.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("blk.{i}.ffn_norm.{p}", "layers.{i}.mlp_norm.{p}"),
    ("blk.{i}.ffn_up.{p}", "layers.{i}.mlp.up_proj.{p}"),
    ("blk.{i}.ffn_down.{p}", "layers.{i}.mlp.down_proj.{p}"),
]

# Qwen3's per-head q/k norms, and llama.cpp's stacked experts (n_expert, rows, cols in numpy
# order: already our MoE layout) with the router `ffn_gate_inp`.
_QK_NORM_NAMES: list[tuple[str, str]] = [
    ("blk.{i}.attn_q_norm.weight", "layers.{i}.attn.q_norm.weight"),
    ("blk.{i}.attn_k_norm.weight", "layers.{i}.attn.k_norm.weight"),
]
_EXPERT_NAMES: list[tuple[str, str]] = [
    ("blk.{i}.ffn_gate_inp.weight", "layers.{i}.mlp.router.weight"),
    ("blk.{i}.ffn_gate_exps.weight", "layers.{i}.mlp.gate_exps"),
    ("blk.{i}.ffn_up_exps.weight", "layers.{i}.mlp.up_exps"),
    ("blk.{i}.ffn_down_exps.weight", "layers.{i}.mlp.down_exps"),
]

FUSED_QKV = ".attn.qkv."

# Gemma 2 / 3: a norm before and after each sublayer, q/k norms (Gemma 3). q/k are not permuted
# (llama.cpp runs Gemma with the rotate-half RoPE). Its norms are stored as 1 + w: see
# UNIT_OFFSET_NORM_ARCHITECTURES.
_GEMMA_NAMES: list[tuple[str, str]] = [
    ("token_embd.weight", "tok_embeddings.weight"),
    ("output_norm.weight", "norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("blk.{i}.attn_norm.weight", "layers.{i}.attn_norm.weight"),
    ("blk.{i}.post_attention_norm.weight", "layers.{i}.attn_post_norm.weight"),
    ("blk.{i}.ffn_norm.weight", "layers.{i}.mlp_norm.weight"),
    ("blk.{i}.post_ffw_norm.weight", "layers.{i}.mlp_post_norm.weight"),
    ("blk.{i}.attn_q.{p}", "layers.{i}.attn.q_proj.{p}"),
    ("blk.{i}.attn_k.{p}", "layers.{i}.attn.k_proj.{p}"),
    ("blk.{i}.attn_v.{p}", "layers.{i}.attn.v_proj.{p}"),
    ("blk.{i}.attn_output.{p}", "layers.{i}.attn.o_proj.{p}"),
    ("blk.{i}.attn_q_norm.weight", "layers.{i}.attn.q_norm.weight"),
    ("blk.{i}.attn_k_norm.weight", "layers.{i}.attn.k_norm.weight"),
    ("blk.{i}.ffn_gate.{p}", "layers.{i}.mlp.gate_proj.{p}"),
    ("blk.{i}.ffn_up.{p}", "layers.{i}.mlp.up_proj.{p}"),
    ("blk.{i}.ffn_down.{p}", "layers.{i}.mlp.down_proj.{p}"),
]

# Architectures whose RMSNorm weights llama.cpp stores as 1 + w: Hugging Face's Gemma norms
# compute x * (1 + w) and convert_hf_to_gguf.py adds 1 to every tensor named *norm.weight
# (Gemma2Model.modify_tensors, Gemma3Model.norm_shift) so that llama.cpp can multiply by the
# stored value. Our Gemma norms keep w (as Hugging Face does, exact in bf16 too), so the loader
# subtracts the 1 again, in one place (gguf_loader.load_gguf_state_dict), for these only.
UNIT_OFFSET_NORM_ARCHITECTURES = frozenset({"gemma2", "gemma3"})

# Tensors that carry nothing our model needs as a parameter. rope_freqs holds Llama-3 RoPE
# frequency factors, which gguf_config turns into RopeScaling; rot_embd is an old cache.
# Phi-3's LongRoPE factor lists (GGUF_ROPE_FACTORS) likewise become RopeScaling.
IGNORED = re.compile(r"rope_freqs\.weight|blk\.\d+\.attn_rot_embd(\.weight)?|"
                     + "|".join(re.escape(name) for name in GGUF_ROPE_FACTORS))


_TABLES = {
    "llama": NameMap(_LLAMA_NAMES),
    "mistral": NameMap(_LLAMA_NAMES),
    "qwen2": NameMap(_LLAMA_NAMES),
    "gpt2": NameMap(_GPT2_NAMES),
    "qwen3": NameMap(_LLAMA_NAMES + _QK_NORM_NAMES),
    "qwen3_moe": NameMap(_LLAMA_NAMES + _QK_NORM_NAMES + _EXPERT_NAMES),
    "mixtral": NameMap(_LLAMA_NAMES + _EXPERT_NAMES),
    "gemma2": NameMap(_GEMMA_NAMES),
    "gemma3": NameMap(_GEMMA_NAMES),
    "phi3": NameMap(PHI3_GGUF_NAMES),
    "smollm3": NameMap(_LLAMA_NAMES),
}


def our_name(gguf_name: str, arch: str) -> Optional[str]:
    """Our parameter name for a GGUF tensor; None for ignored tensors, "" for unknown ones."""
    if IGNORED.fullmatch(gguf_name):
        return None
    return _TABLES[arch].ours(gguf_name) or ""


def gguf_name(ours: str, arch: str) -> str:
    """The GGUF name a parameter of ours comes from (for messages); `ours` itself if none."""
    if arch == "gpt2":
        ours = re.sub(r"\.attn\.[qkv]_proj\.", FUSED_QKV, ours)
    if arch == "phi3":
        ours = re.sub(r"\.mlp\.(gate|up)_proj\.", FUSED_GATE_UP, ours)
    return _TABLES[arch].theirs(ours) or ours
