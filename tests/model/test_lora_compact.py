"""LoRA on a compact (int8 / int4) base: the base stays compact, adapters are float32, only
A and B learn, the loss goes down, and a saved adapter gives the same logits on a float32
base (the compact weights dequantized) within 1e-4."""

from __future__ import annotations

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig, LoRALinear, apply_lora, base_names, lora_layers, lora_state_dict, merge_lora
from chatapp.model.quant import QuantLinear, quantize_state, tensor_bytes
from chatapp.weights.build import build_model

TARGETS = ["q_proj", "v_proj", "down_proj"]


def config() -> ModelConfig:
    return ModelConfig(arch="llama", vocab_size=256, dim=128, n_layers=2, n_heads=4, n_kv_heads=2,
                       intermediate_size=256, max_seq_len=64, tie_embeddings=True)


def float_state() -> dict:
    torch.manual_seed(0)
    return {k: v for k, v in Transformer(config()).state_dict().items() if k != "lm_head.weight"}


def compact_model(kind: str):
    return build_model(config(), quantize_state(float_state(), kind))


def dequantized_model(compact) -> Transformer:
    """A float32 model holding exactly the compact model's weights, dequantized."""
    state = {}
    for name, module in compact.named_modules():
        if isinstance(module, QuantLinear):
            state[name + ".weight"] = module.dequantize()
    for name, tensor in float_state().items():
        state.setdefault(name, tensor)
    emb = compact.tok_embeddings
    if hasattr(emb, "dequantize"):
        state["tok_embeddings.weight"] = emb.dequantize()
    elif hasattr(emb, "quantized"):
        state["tok_embeddings.weight"] = emb.quantized.dequantize()
    return build_model(config(), state)


def batch():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 256, (4, 17), generator=g)
    return tokens[:, :-1], tokens[:, 1:]


def loss_of(model, inputs, labels):
    logits = model(inputs, torch.arange(inputs.shape[1]))
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


def train(model, steps: int = 30) -> list[float]:
    inputs, labels = batch()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = loss_of(model, inputs, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_lora_trains_on_a_compact_base_and_the_base_stays_compact(kind):
    model = compact_model(kind)
    held = tensor_bytes(model)
    before = {n: b.clone() for n, b in model.named_buffers() if "kv_cache" not in n}
    apply_lora(model, LoRAConfig(r=4, alpha=8, target_modules=TARGETS))
    layers = dict(lora_layers(model))
    assert len(layers) == 6 and all(layer.compact for layer in layers.values())
    assert all(layer.lora_A.dtype == torch.float32 and layer.base_layer.kind == kind for layer in layers.values())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith((".lora_A", ".lora_B")) for n in trainable)

    losses = train(model)
    assert losses[-1] < 0.8 * losses[0], losses
    after = base_names({n: b for n, b in model.named_buffers() if "kv_cache" not in n})
    assert all(torch.equal(before[n], after[n]) for n in before)  # codes and scales untouched
    adapter_bytes = sum(p.numel() * 4 for p in lora_state_dict(model).values())
    adapter_bytes += 4 * len(layers)  # each layer's lora_gate (a float32 scalar the compiled step reads)
    assert tensor_bytes(model) == held + adapter_bytes  # no float copy of a base weight kept


def test_gradients_reach_only_a_and_b_and_match_a_float_base():
    """The compact product's backward (dequantizing again) equals autograd through the float weight."""
    compact = compact_model("int8")
    plain = dequantized_model(compact)
    lora = LoRAConfig(r=4, alpha=8, target_modules=TARGETS)
    apply_lora(compact, lora)
    apply_lora(plain, lora)
    torch.manual_seed(3)
    for (_, a), (_, b) in zip(lora_layers(compact), lora_layers(plain)):
        with torch.no_grad():
            a.lora_B.normal_()
            b.lora_A.copy_(a.lora_A)
            b.lora_B.copy_(a.lora_B)
    inputs, labels = batch()
    loss_of(compact, inputs, labels).backward()
    loss_of(plain, inputs, labels).backward()
    for (name, a), (_, b) in zip(lora_layers(compact), lora_layers(plain)):
        assert a.lora_A.grad is not None and a.lora_B.grad is not None, name
        torch.testing.assert_close(a.lora_A.grad, b.lora_A.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.lora_B.grad, b.lora_B.grad, rtol=1e-4, atol=1e-5)
    assert all(p.grad is None for n, p in compact.named_parameters() if not n.endswith((".lora_A", ".lora_B")))


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_adapter_trained_compact_gives_the_same_logits_on_a_float32_base(kind):
    compact = compact_model(kind)
    lora = LoRAConfig(r=4, alpha=8, target_modules=TARGETS)
    apply_lora(compact, lora)
    train(compact, steps=10)
    adapter = lora_state_dict(compact)

    plain = dequantized_model(compact_model(kind))  # the same weights, in float32
    apply_lora(plain, lora)
    missing = plain.load_state_dict(adapter, strict=False)
    assert not missing.unexpected_keys
    inputs, _ = batch()
    pos = torch.arange(inputs.shape[1])
    with torch.no_grad():
        compact.eval(), plain.eval()
        torch.testing.assert_close(compact(inputs, pos), plain(inputs, pos), rtol=0, atol=1e-4)
        # the float base can merge it; the logits stay
        before = plain(inputs, pos)
        merge_lora(plain)
        torch.testing.assert_close(plain(inputs, pos), before, rtol=0, atol=1e-4)


def test_merging_into_compact_weights_is_refused_clearly():
    model = compact_model("int4")
    apply_lora(model, LoRAConfig(r=2, target_modules=["q_proj"]))
    with pytest.raises(ValueError, match="cannot merge a LoRA adapter into int4 weights"):
        merge_lora(model)
    layer = next(iter(dict(lora_layers(model)).values()))
    assert isinstance(layer, LoRALinear)
