"""Writing tiny GGUF files the way llama.cpp's converter does, for the loader's tests.

The llama.cpp rules (q/k permutation, Llama-3 rope_freqs, GPT-2 transposes) are written here
from convert_hf_to_gguf.py's documented formulas, independently of chatapp's code.
"""

from __future__ import annotations

import math

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as Q

# dim and ffn are multiples of 256 so that every row fits whole K-quant blocks.
TINY = dict(vocab=32, dim=256, layers=2, heads=4, kv_heads=2, ffn=256, ctx=64)
K_QUANTS = (Q.Q4_K, Q.Q5_K, Q.Q6_K)
SUPPORTED = (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1) + K_QUANTS


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute, as documented there."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_k_blocks(shape: tuple[int, int], qtype: Q, rng: np.random.Generator) -> np.ndarray:
    """Raw K-quant bytes for a (rows, cols) tensor: random codes, small finite fp16 scales.

    gguf 0.19 cannot quantize K-quants in numpy, so the data is built block by block.
    """
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = shape[0] * shape[1] // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scales = rng.uniform(0.001, 0.01, size=(n_blocks, 2)).astype(np.float16).view(np.uint8)  # (n, 4)
    if qtype == Q.Q6_K:
        raw[:, -2:] = scales[:, :2]  # ql, qh, scales, then d (fp16) last
    else:
        raw[:, :4] = scales  # d, dmin (fp16 each) first
    return raw.reshape(shape[0], shape[1] // block * size)


def encode(values: np.ndarray, qtype: Q, rng: np.random.Generator) -> np.ndarray:
    """The array to store for `values` in `qtype` (K-quants: random blocks of the same shape)."""
    if qtype in K_QUANTS:
        return random_k_blocks(values.shape, qtype, rng)
    return gguf.quants.quantize(values, qtype)


def tiny_llama_tensors(rng: np.random.Generator, qtype: Q = Q.F32, tied: bool = False,
                       biases: bool = False) -> dict[str, tuple[np.ndarray, Q]]:
    """GGUF name -> (stored array, type) for TINY, q/k already in llama.cpp's row order."""
    d, f, v, kv = TINY["dim"], TINY["ffn"], TINY["vocab"], TINY["kv_heads"] * TINY["dim"] // TINY["heads"]

    def mat(rows, cols, name=""):
        x = rng.uniform(-1, 1, size=(rows, cols)).astype(np.float32)
        if name == "q":
            x = llama_cpp_permute(x, TINY["heads"])
        elif name == "k":
            x = llama_cpp_permute(x, TINY["kv_heads"])
        return encode(x, qtype, rng), qtype

    def vec(n):
        return rng.uniform(0.5, 1.5, size=n).astype(np.float32), Q.F32

    tensors = {"token_embd.weight": mat(v, d), "output_norm.weight": vec(d)}
    if not tied:
        tensors["output.weight"] = mat(v, d)
    for i in range(TINY["layers"]):
        b = f"blk.{i}."
        tensors.update({b + "attn_norm.weight": vec(d), b + "attn_q.weight": mat(d, d, "q"),
                        b + "attn_k.weight": mat(kv, d, "k"), b + "attn_v.weight": mat(kv, d),
                        b + "attn_output.weight": mat(d, d), b + "ffn_norm.weight": vec(d),
                        b + "ffn_gate.weight": mat(f, d), b + "ffn_up.weight": mat(f, d),
                        b + "ffn_down.weight": mat(d, f)})
        if biases:
            tensors.update({b + "attn_q.bias": vec(d), b + "attn_k.bias": vec(kv), b + "attn_v.bias": vec(kv)})
    return tensors


def llama_metadata(arch: str = "llama", **override) -> dict[str, object]:
    meta = {f"{arch}.context_length": TINY["ctx"], f"{arch}.embedding_length": TINY["dim"],
            f"{arch}.block_count": TINY["layers"], f"{arch}.feed_forward_length": TINY["ffn"],
            f"{arch}.attention.head_count": TINY["heads"], f"{arch}.attention.head_count_kv": TINY["kv_heads"],
            f"{arch}.attention.layer_norm_rms_epsilon": 1e-5, f"{arch}.rope.freq_base": 10000.0}
    meta.update(override)
    return meta


def write_gguf(path, tensors: dict[str, tuple[np.ndarray, Q]], metadata: dict[str, object],
               arch: str = "llama", name: str = "tiny test model"):
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    for key, value in metadata.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        else:
            writer.add_string(key, value)
    for tname, (array, qtype) in tensors.items():
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(tname, array)  # the numpy dtype names the type
        else:
            writer.add_tensor(tname, array, raw_dtype=qtype)  # byte rows, shape derived by gguf
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def dequantized(array: np.ndarray, qtype: Q) -> np.ndarray:
    """gguf's own dequantization of a stored array, (rows, cols) float32."""
    return np.array(gguf.quants.dequantize(array, qtype), dtype=np.float32)


def in_file_order(gguf_name: str, loaded: np.ndarray) -> np.ndarray:
    """A loaded tensor put back into the file's row order: llama.cpp's permutation for q/k."""
    if ".attn_q." in gguf_name:
        return llama_cpp_permute(loaded, TINY["heads"])
    if ".attn_k." in gguf_name:
        return llama_cpp_permute(loaded, TINY["kv_heads"])
    return loaded


OURS = {"token_embd.weight": "tok_embeddings.weight", "output.weight": "lm_head.weight",
        "output_norm.weight": "norm.weight"}


def our(gguf_name: str) -> str:
    if gguf_name in OURS:
        return OURS[gguf_name]
    _, i, kind, part = gguf_name.split(".")
    return f"layers.{i}." + {"attn_norm": "attn_norm", "ffn_norm": "mlp_norm", "attn_q": "attn.q_proj",
                             "attn_k": "attn.k_proj", "attn_v": "attn.v_proj", "attn_output": "attn.o_proj",
                             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                             "ffn_down": "mlp.down_proj"}[kind] + "." + part


HF_LAYER_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
                  "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                  "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                  "mlp.down_proj": "ffn_down"}
GPT2_LAYER_NAMES = {"ln_1": "attn_norm", "ln_2": "ffn_norm", "attn.c_attn": "attn_qkv",
                    "attn.c_proj": "attn_output", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}


def hf_model(family: str):
    import transformers  # test-only dependency

    torch.manual_seed(0)
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=40, n_embd=32, n_layer=2, n_head=4, n_positions=24)
        model = transformers.GPT2LMHeadModel(config)
    else:
        cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
               "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM)}[family]
        config = cls[0](vocab_size=40, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=24,
                        rms_norm_eps=1e-5, tie_word_embeddings=family == "qwen2")
        model = cls[1](config)
    with torch.no_grad():
        for p in model.parameters():  # larger than the init's, so a misplaced weight shows
            p.normal_(0.0, 0.3)
    return model.eval()


def hf_to_gguf(model, family: str, path):
    """Convert as convert_hf_to_gguf.py does: rename, permute Llama q/k, transpose GPT-2's Conv1D."""
    cfg = model.config
    tensors = {}
    for name, value in model.state_dict().items():
        array = value.detach().numpy().astype(np.float32)
        parts = name.split(".")
        if family == "gpt2":
            if name.endswith((".attn.bias", ".attn.masked_bias")):
                continue
            top = {"transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
                   "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias"}
            if name in top:
                tensors[top[name]] = array
                continue
            if name == "lm_head.weight":
                continue  # written below as a copy of token_embd, as llama.cpp does
            kind = GPT2_LAYER_NAMES[".".join(parts[3:-1])]
            if parts[-1] == "weight" and kind not in ("attn_norm", "ffn_norm"):
                array = np.ascontiguousarray(array.T)  # Conv1D (in, out) -> (out, in)
            tensors[f"blk.{parts[2]}.{kind}.{parts[-1]}"] = array
            continue
        top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
               "lm_head.weight": "output.weight"}
        if name in top:
            if not (name == "lm_head.weight" and cfg.tie_word_embeddings):
                tensors[top[name]] = array
            continue
        kind = HF_LAYER_NAMES[".".join(parts[3:-1])]
        if family == "llama" and kind in ("attn_q", "attn_k"):
            heads = cfg.num_attention_heads if kind == "attn_q" else cfg.num_key_value_heads
            array = llama_cpp_permute(array, heads)
        tensors[f"blk.{parts[2]}.{kind}.{parts[-1]}"] = array
    if family == "gpt2":
        tensors["output.weight"] = tensors["token_embd.weight"].copy()
        meta = {"gpt2.context_length": cfg.n_positions, "gpt2.embedding_length": cfg.n_embd,
                "gpt2.feed_forward_length": 4 * cfg.n_embd, "gpt2.block_count": cfg.n_layer,
                "gpt2.attention.head_count": cfg.n_head, "gpt2.attention.layer_norm_epsilon": cfg.layer_norm_epsilon}
    else:
        meta = {f"{family}.context_length": cfg.max_position_embeddings,
                f"{family}.embedding_length": cfg.hidden_size, f"{family}.block_count": cfg.num_hidden_layers,
                f"{family}.feed_forward_length": cfg.intermediate_size,
                f"{family}.attention.head_count": cfg.num_attention_heads,
                f"{family}.attention.head_count_kv": cfg.num_key_value_heads,
                f"{family}.attention.layer_norm_rms_epsilon": cfg.rms_norm_eps,
                f"{family}.rope.freq_base": 10000.0}
    return write_gguf(path, {k: (v, Q.F32) for k, v in tensors.items()}, meta, arch=family)


def llama3_divisors(head_dim: int, theta: float, factor: float, low: float, high: float, orig: int) -> np.ndarray:
    """convert_hf_to_gguf.py's rope_freqs for rope_type "llama3", as documented there."""
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)
