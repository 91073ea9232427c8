"""GGUF round trips for Qwen3, Qwen3-MoE and Mixtral: a tiny random transformers model is
written as llama.cpp's convert_hf_to_gguf.py would write it (names, Mixtral's q/k permutation,
experts stacked into ffn_*_exps, the router as ffn_gate_inp), loaded, and compared with the
reference's logits."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from gguf import GGMLQuantizationType as Q

from chatapp.errors import UnsupportedArchitectureError
from chatapp.model.moe import MoE
from chatapp.weights.build import build_model
from chatapp.weights.gguf_loader import gguf_config, load_gguf, open_gguf
from gguf_writing import llama_cpp_permute, write_gguf

transformers = pytest.importorskip("transformers")

VOCAB = 61
COMMON = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, rms_norm_eps=1e-6)
# HF per-layer module -> GGUF tensor kind (as convert_hf_to_gguf.py's tensor map names them).
LAYER_KINDS = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
               "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down", "mlp.gate": "ffn_gate_inp", "block_sparse_moe.gate": "ffn_gate_inp"}
EXPERT_KINDS = {"gate_proj": "ffn_gate_exps", "up_proj": "ffn_up_exps", "down_proj": "ffn_down_exps",
                "w1": "ffn_gate_exps", "w3": "ffn_up_exps", "w2": "ffn_down_exps"}


def reference(family: str, seed: int = 0, vocab: int = VOCAB):
    T = transformers
    common = dict(COMMON, vocab_size=vocab)
    config = {
        "qwen3": lambda: T.Qwen3Config(**common, intermediate_size=64, head_dim=16),
        "qwen3moe": lambda: T.Qwen3MoeConfig(**common, intermediate_size=64, moe_intermediate_size=32, head_dim=16,
                                             num_experts=4, num_experts_per_tok=2, norm_topk_prob=True),
        "mixtral": lambda: T.MixtralConfig(**common, intermediate_size=32, num_local_experts=4,
                                           num_experts_per_tok=2),
    }[family]()
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def to_gguf(model, family: str, path, expert_type: Q = Q.F32):
    """Write `model` as convert_hf_to_gguf.py does for Qwen3Model / Qwen3MoeModel / LlamaModel (Mixtral):
    from the files save_pretrained writes (one tensor per expert), as the converter reads them."""
    cfg = model.config
    arch = "llama" if family == "mixtral" else family
    folder = path.parent / f"{path.stem}-hf"
    model.save_pretrained(folder)
    tensors: dict[str, tuple[np.ndarray, Q]] = {}
    experts: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for name, array in load_file(str(folder / "model.safetensors")).items():
        array = array.numpy().astype(np.float32)
        top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
               "lm_head.weight": "output.weight"}
        if name in top:
            tensors[top[name]] = (array, Q.F32)
            continue
        parts = name.split(".")  # model.layers.{i}.<module...>.weight
        layer, module = parts[2], ".".join(parts[3:-1])
        if ".experts." in name:  # model.layers.{i}.<mlp>.experts.{e}.<proj>.weight
            experts.setdefault((layer, EXPERT_KINDS[parts[-2]]), {})[int(parts[-3])] = array
            continue
        kind = LAYER_KINDS[module]
        if family == "mixtral" and kind in ("attn_q", "attn_k"):  # LlamaModel.modify_tensors permutes
            array = llama_cpp_permute(array, cfg.num_attention_heads if kind == "attn_q" else cfg.num_key_value_heads)
        tensors[f"blk.{layer}.{kind}.weight"] = (array, Q.F32)
    for (layer, kind), by_expert in experts.items():  # stacked: (n_expert, rows, cols)
        stacked = np.stack([by_expert[e] for e in sorted(by_expert)])
        stored = stacked if expert_type == Q.F32 else gguf.quants.quantize(stacked, expert_type)
        tensors[f"blk.{layer}.{kind}.weight"] = (stored, expert_type)
    meta = {f"{arch}.context_length": cfg.max_position_embeddings, f"{arch}.embedding_length": cfg.hidden_size,
            f"{arch}.block_count": cfg.num_hidden_layers, f"{arch}.feed_forward_length": cfg.intermediate_size,
            f"{arch}.attention.head_count": cfg.num_attention_heads,
            f"{arch}.attention.head_count_kv": cfg.num_key_value_heads,
            f"{arch}.attention.layer_norm_rms_epsilon": cfg.rms_norm_eps,
            f"{arch}.rope.freq_base": float(cfg.rope_parameters["rope_theta"])}
    if family != "mixtral":
        meta.update({f"{arch}.attention.key_length": cfg.head_dim, f"{arch}.attention.value_length": cfg.head_dim})
    if family == "qwen3moe":
        meta.update({f"{arch}.expert_count": cfg.num_experts, f"{arch}.expert_used_count": cfg.num_experts_per_tok,
                     f"{arch}.expert_feed_forward_length": cfg.moe_intermediate_size})
    if family == "mixtral":
        meta.update({f"{arch}.expert_count": cfg.num_local_experts,
                     f"{arch}.expert_used_count": cfg.num_experts_per_tok})
    return write_gguf(path, tensors, meta, arch=arch)


@pytest.mark.parametrize("family", ["qwen3", "qwen3moe", "mixtral"])
def test_converted_model_matches_transformers(tmp_path, family):
    ref = reference(family)
    config, state = load_gguf(to_gguf(ref, family, tmp_path / f"{family}.gguf"))
    assert config.arch == {"qwen3moe": "qwen3_moe"}.get(family, family)
    assert config.qk_norm == family.startswith("qwen3")
    assert config.n_experts == (0 if family == "qwen3" else 4)
    assert config.head_dim == (8 if family == "mixtral" else 16)
    ours = build_model(config, state)
    assert isinstance(ours.layers[1].mlp, MoE) == (family != "qwen3")
    tokens = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected, got = ref(tokens).logits, ours(tokens)
    assert (got - expected).abs().max().item() <= 1e-4


def test_quantized_experts_load_as_gguf_dequantizes_them(tmp_path):
    ref = reference("qwen3moe", seed=1)
    path = to_gguf(ref, "qwen3moe", tmp_path / "q8.gguf", expert_type=Q.Q8_0)
    _, state = load_gguf(path)
    reader = open_gguf(path)
    stored = next(t for t in reader.tensors if t.name == "blk.1.ffn_down_exps.weight")
    want = np.asarray(gguf.quants.dequantize(stored.data, Q.Q8_0), dtype=np.float32)
    assert want.shape == (4, 32, 32)
    assert np.array_equal(state["layers.1.mlp.down_exps"].numpy(), want)
    original = ref.model.layers[1].mlp.experts.down_proj.detach()  # transformers 5 stacks them as we do
    assert original.shape == (4, 32, 32)
    assert 0 < (state["layers.1.mlp.down_exps"] - original).abs().max() < 0.02


def test_experts_in_another_architecture_are_refused_by_name(tmp_path):
    ref = reference("qwen3moe")
    path = to_gguf(ref, "qwen3moe", tmp_path / "odd.gguf")
    reader = gguf.GGUFReader(path)
    # Rewrite as a qwen2 file with experts: a combination no converter writes.
    tensors = {t.name: (np.array(t.data), Q.F32) for t in reader.tensors}
    meta = {k.replace("qwen3moe.", "qwen2."): v for k, v in {
        "qwen3moe.context_length": 64, "qwen3moe.embedding_length": 32, "qwen3moe.block_count": 2,
        "qwen3moe.feed_forward_length": 64, "qwen3moe.attention.head_count": 4,
        "qwen3moe.attention.head_count_kv": 2, "qwen3moe.attention.key_length": 16,
        "qwen3moe.attention.value_length": 16, "qwen3moe.expert_count": 4, "qwen3moe.expert_used_count": 2}.items()}
    odd = write_gguf(tmp_path / "qwen2-experts.gguf", tensors, meta, arch="qwen2")
    with pytest.raises(UnsupportedArchitectureError, match="qwen2 with a mixture of experts is not supported"):
        gguf_config(open_gguf(odd), odd)


def test_qwen3_gguf_with_its_tokenizer_and_thinking_template_chats(tmp_path):
    """A whole Qwen3 GGUF as llama.cpp writes one: byte-level BPE with the `qwen2` pre-tokenizer,
    ChatML markers as control tokens, a template with the thinking switch; loaded by the app's
    loader, it encodes like the tokenizer it came from and a reply's prompt honours the switch."""
    import json

    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.sampling import SamplingSettings
    from helpers.qwen3_template import QWEN3_STYLE_TEMPLATE
    from helpers.tiny_hf import SENTENCES, tiny_tokenizer

    source = tiny_tokenizer()
    data = json.loads(source.backend.to_str())
    vocab = data["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    special = {t["content"] for t in data["added_tokens"]}
    types = [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]

    ref = reference("qwen3", vocab=len(tokens))
    path = to_gguf(ref, "qwen3", tmp_path / "qwen3-chat.gguf")
    # Rewrite with the tokenizer's metadata (GGUFWriter needs it all before the header is written).
    reader = gguf.GGUFReader(path)
    writer = gguf.GGUFWriter(str(tmp_path / "with-tokenizer.gguf"), "qwen3")
    for field in reader.fields.values():
        if field.name.startswith("qwen3.") and field.types[0] != gguf.GGUFValueType.ARRAY:
            value = field.parts[-1][0].item()
            (writer.add_uint32 if isinstance(value, int) else writer.add_float32)(field.name, value)
    writer.add_name("tiny qwen3")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([int(t) for t in types])
    writer.add_token_merges(merges)
    writer.add_eos_token_id(vocab["<|im_end|>"] if "<|im_end|>" in vocab else vocab["<|endoftext|>"])
    writer.add_chat_template(QWEN3_STYLE_TEMPLATE)
    for t in reader.tensors:
        writer.add_tensor(t.name, np.array(t.data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    backend = ChatBackend()
    info = backend.load(str(tmp_path / "with-tokenizer.gguf"), LoadOptions(device="cpu", context_len=64, threads=1))
    assert info.thinking_switch and backend.loaded.config.arch == "qwen3"
    for text in SENTENCES + ["repeat: " + SENTENCES[0], "  two  spaces\nand 123 digits"]:
        assert backend.engine.tokenizer.encode(text) == source.encode(text), text
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=3)
    "".join(backend.stream([{"role": "user", "content": "the cat"}], "", greedy, enable_thinking=False))
    assert backend.finished().prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
