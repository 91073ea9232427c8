"""Our Transformer -> a Hugging Face model folder (config.json, model.safetensors, tokenizer files).

Names come from chatapp/weights/hf_names.py's tables, read the other way (the loader's map is
the only one), plus the GPT-2 transforms (Conv1D stores (in, out), and q/k/v are one fused
`c_attn`). The folder opens with our loader (engine.loader.load_model) and with
`transformers.AutoModelForCausalLM.from_pretrained`; nothing else is needed to read it.

    export_hf_folder(model, model.config, tokenizer, "out/")     # a trained full model
    merge_and_export("default", "adapters/notes", "merged/")     # base + LoRA adapter, folded in
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors.torch import save as safetensors_bytes

from ..model.config import ModelConfig
from ..model.lora import has_lora
from ..paths import atomic_write_bytes, atomic_write_text
from ..weights import hf_names, phi3
from ..weights.experts import EXPERT_STACK, families_a_config_fields, unstack_experts

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
WEIGHTS_FILE = "model.safetensors"

GPT2_SPLIT_QKV = re.compile(r"layers\.(\d+)\.attn\.([qkv])_proj\.(weight|bias)")
ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                 "gpt2": "GPT2LMHeadModel", "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
                 "mixtral": "MixtralForCausalLM", "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM",
                 "phi3": "Phi3ForCausalLM", "smollm3": "SmolLM3ForCausalLM"}


class ExportError(ValueError):
    """The model cannot be written as a Hugging Face folder (an option its format lacks)."""


def hf_name(ours: str, family: str) -> str:
    """Hugging Face's name for our parameter `ours` (GPT-2's q/k/v: see hf_state_dict)."""
    name = hf_names.hf_name(ours, family)
    if name is None:
        raise ExportError(f"parameter {ours} has no Hugging Face {family} name")
    return name


# -- config -------------------------------------------------------------------------------
def _rope_fields(config: ModelConfig) -> dict[str, Any]:
    # transformers >= 5 reads `rope_parameters`; older versions `rope_theta` + `rope_scaling`.
    scaling: Optional[dict[str, Any]] = None
    if config.rope_scaling is not None:
        s = config.rope_scaling
        scaling = {"rope_type": s.kind, "factor": s.factor}
        if s.kind == "llama3":
            scaling.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor,
                           original_max_position_embeddings=s.original_max_position_embeddings)
    parameters = {"rope_type": "default", "rope_theta": config.rope_theta, **(scaling or {})}
    return {"rope_theta": config.rope_theta, "rope_scaling": scaling, "rope_parameters": parameters}


def hf_config_dict(config: ModelConfig, tokenizer: Any = None, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """config.json for `config`; refuses options the family's Hugging Face config cannot express."""
    family = config.arch
    dtype_name = str(dtype).replace("torch.", "")
    tokens = {"bos_token_id": getattr(tokenizer, "bos_id", None), "eos_token_id": getattr(tokenizer, "eos_id", None)}
    if family == "gpt2":
        if not (config.norm == "layernorm" and config.mlp == "gelu" and config.positions == "learned"
                and config.qkv_bias and config.o_bias and config.mlp_bias):
            raise ExportError("a gpt2 model needs layernorm, gelu, learned positions and biases everywhere")
        if config.n_kv_heads != config.n_heads or config.head_dim * config.n_heads != config.dim:
            raise ExportError("GPT-2 has no grouped-query attention or separate head_dim")
        return {"model_type": "gpt2", "architectures": [ARCHITECTURES["gpt2"]], "vocab_size": config.vocab_size,
                "n_embd": config.dim, "n_layer": config.n_layers, "n_head": config.n_heads,
                "n_inner": config.intermediate_size, "n_positions": config.max_seq_len,
                "layer_norm_epsilon": config.norm_eps, "activation_function": "gelu_new",
                "tie_word_embeddings": config.tie_embeddings, "dtype": dtype_name, **tokens}
    if family in ("gemma2", "gemma3"):
        from ..weights.gemma import gemma_hf_config

        try:
            return {**gemma_hf_config(config), "dtype": dtype_name, **tokens}
        except ValueError as exc:
            raise ExportError(str(exc)) from exc
    if family not in ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "phi3", "smollm3"):
        raise ExportError(f"architecture {family!r} cannot be exported")
    if config.norm != "rmsnorm" or config.mlp != "swiglu" or config.positions != "rope":
        raise ExportError(f"a {family} model needs rmsnorm, swiglu and rope")
    hf: dict[str, Any] = {
        "model_type": family, "architectures": [ARCHITECTURES[family]], "vocab_size": config.vocab_size,
        "hidden_size": config.dim, "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.n_layers, "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads, "head_dim": config.head_dim,
        "max_position_embeddings": config.max_seq_len, "rms_norm_eps": config.norm_eps, "hidden_act": "silu",
        "tie_word_embeddings": config.tie_embeddings, "dtype": dtype_name, **_rope_fields(config), **tokens,
    }
    if config.partial_rotary_factor != 1.0 and family != "phi3":
        raise ExportError(f"a {family} config cannot hold partial rotary embeddings")
    if config.no_rope_layers and family != "smollm3":
        raise ExportError(f"a {family} config cannot hold layers without RoPE")
    if config.rope_scaling is not None and config.rope_scaling.kind == "longrope" and family != "phi3":
        raise ExportError(f"a {family} config cannot hold LongRoPE scaling")
    if family in ("phi3", "smollm3") and (config.qkv_bias or config.o_bias or config.mlp_bias):
        raise ExportError(f"{family} has no option for these biases")
    if family in ("phi3", "smollm3"):
        hf["pad_token_id"] = None  # their config classes default to ids of the original vocabularies
    if family == "phi3":
        try:
            return {**hf, **phi3.phi3_hf_config(config)}
        except ValueError as exc:
            raise ExportError(str(exc)) from exc
    if family == "smollm3":
        if config.sliding_window is not None:
            raise ExportError("SmolLM3 sliding-window layers cannot be exported")
        no_rope = set(config.no_rope_layers or ())
        return {**hf, "no_rope_layers": [int(i not in no_rope) for i in range(config.n_layers)],
                "use_sliding_window": False, "sliding_window": None, "attention_bias": False, "mlp_bias": False}
    if family in ("llama", "qwen3", "qwen3_moe"):
        if config.qkv_bias != config.o_bias:
            raise ExportError("Llama's attention_bias covers q/k/v and o together; this model has bias on only some")
        hf.update(attention_bias=config.qkv_bias)
        if family == "llama":
            hf["mlp_bias"] = config.mlp_bias
        elif config.mlp_bias:
            raise ExportError(f"{family} has no option for MLP biases")
    else:
        if config.mlp_bias or config.o_bias or (family in ("mistral", "mixtral") and config.qkv_bias):
            raise ExportError(f"{family} has no option for these biases")
        if family == "qwen2" and not config.qkv_bias:
            raise ExportError("Qwen2 always has q/k/v biases; this model has none")
    if family in ("qwen3", "qwen3_moe", "mixtral"):
        try:
            hf.update(families_a_config_fields(config))
        except ValueError as exc:
            raise ExportError(str(exc)) from exc
    elif config.qk_norm or config.n_experts:
        raise ExportError(f"a {family} config cannot hold q/k norms or experts")
    if family in ("mistral", "mixtral"):
        hf["sliding_window"] = config.sliding_window
    elif config.sliding_window is not None:
        raise ExportError(f"a {family} config cannot hold a sliding window")
    if family == "qwen2":
        hf.update(use_sliding_window=False, sliding_window=None, max_window_layers=config.n_layers)
    return hf


# -- weights ------------------------------------------------------------------------------
def hf_state_dict(model: torch.nn.Module, dtype: Optional[torch.dtype] = None) -> dict[str, torch.Tensor]:
    """The model's weights under Hugging Face names, on CPU, contiguous, one tensor per name."""
    if has_lora(model):
        raise ExportError("the model carries LoRA layers: merge_lora() it first (or save the adapter)")
    config: ModelConfig = model.config
    family = config.arch
    out: dict[str, torch.Tensor] = {}
    fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    state = model.state_dict()
    if family == "phi3":
        state = phi3.fuse_for_export(state, config)  # q/k/v -> qkv_proj, gate/up -> gate_up_proj
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_embeddings:
            continue  # Hugging Face ties it to the embedding on load
        tensor = tensor.detach().to("cpu", dtype=dtype or tensor.dtype)
        if family == "gpt2":
            m = GPT2_SPLIT_QKV.fullmatch(name)
            if m:
                fused.setdefault((m[1], m[3]), {})[m[2]] = tensor
                continue
        if EXPERT_STACK.fullmatch(name):  # one Hugging Face tensor per expert
            for piece, value in unstack_experts(name, tensor):
                out[hf_name(piece, family)] = value.contiguous().clone()
            continue
        if hf_names.is_conv1d_weight(name, family):
            tensor = tensor.t()  # nn.Linear (out, in) -> Conv1D (in, out)
        out[hf_name(name, family)] = tensor.contiguous().clone()
    for (layer, kind), parts in fused.items():
        qkv = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)  # (3*dim, dim) or (3*dim,)
        name = f"layers.{layer}.attn.qkv.{kind}"
        out[hf_name(name, family)] = (qkv.t() if hf_names.is_conv1d_weight(name, family) else qkv).contiguous()
    return out


# -- tokenizer ----------------------------------------------------------------------------
def write_tokenizer_files(tokenizer: Any, folder: PathLike, max_len: Optional[int] = None) -> None:
    """tokenizer.json, tokenizer_config.json and generation_config.json for our Tokenizer."""
    from ..text import CHATML_TEMPLATE

    folder = Path(folder)
    atomic_write_text(folder / "tokenizer.json", tokenizer.backend.to_str())
    tk_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token,
        "add_bos_token": bool(tokenizer.add_bos), "add_eos_token": bool(tokenizer.add_eos),
        # Written out even when the model had none: our tokenizer falls back to ChatML, transformers would not.
        "chat_template": tokenizer.chat_template or CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    }
    if max_len:
        tk_config["model_max_length"] = max_len
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(tk_config, indent=2, ensure_ascii=False) + "\n")
    eos_ids = sorted(tokenizer.eos_ids)
    if tokenizer.eos_id is not None:  # the main EOS first, then the other stop tokens
        eos_ids = [tokenizer.eos_id] + [i for i in eos_ids if i != tokenizer.eos_id]
    generation = {"bos_token_id": tokenizer.bos_id, "eos_token_id": eos_ids[0] if len(eos_ids) == 1 else eos_ids}
    atomic_write_text(folder / "generation_config.json", json.dumps(generation, indent=2) + "\n")


# -- the folder ---------------------------------------------------------------------------
def export_hf_folder(model: torch.nn.Module, config: ModelConfig, tokenizer: Any, folder: PathLike,
                     dtype: Optional[torch.dtype] = None, extra_files: Optional[dict[str, str]] = None) -> Path:
    """Write `model` (our Transformer, no LoRA layers) as a Hugging Face folder; returns the folder.

    `dtype`: the weights' dtype in the file, default the model's. config.json is written last,
    so a folder with it is complete. `extra_files`: name -> text written beside (notes).
    """
    folder = Path(folder)
    dtype = dtype or next(model.parameters()).dtype
    hf_config = hf_config_dict(config, tokenizer, dtype)  # refuses before anything is written
    state = hf_state_dict(model, dtype)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / WEIGHTS_FILE, safetensors_bytes(state, metadata={"format": "pt"}))
    if tokenizer is not None:
        write_tokenizer_files(tokenizer, folder, config.max_seq_len)
    for name, text in (extra_files or {}).items():
        atomic_write_text(folder / name, text)
    atomic_write_text(folder / "config.json", json.dumps(hf_config, indent=2) + "\n")
    log.info("exported %s model (%d tensors) to %s", config.arch, len(state), folder)
    return folder


def merge_and_export(base: PathLike, adapter_dir: Optional[PathLike], out: PathLike,
                     dtype: Optional[torch.dtype] = None) -> Path:
    """Load `base` (any model spec: "default", a GGUF file, an HF folder) on the CPU in float32,
    fold the LoRA adapter in `adapter_dir` into its weights, and export the result to `out`.
    Without an adapter, converts the base model to a Hugging Face folder."""
    from ..engine.loader import load_model
    from ..model.lora import merge_lora

    loaded = load_model(base, device="cpu", dtype=torch.float32, adapter=adapter_dir)
    model = merge_lora(loaded.model) if has_lora(loaded.model) else loaded.model
    notes = {"base_model": str(base), "adapter": str(adapter_dir) if adapter_dir else None}
    return export_hf_folder(model, loaded.config, loaded.tokenizer, out, dtype=dtype,
                            extra_files={"chatapp_export.json": json.dumps(notes, indent=2) + "\n"})
