"""The training loss projects only the positions with a label onto the vocabulary (logits_at):
the same loss and the same gradients as the full (B, T, V) path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig, apply_lora
from chatapp.training.dataset import IGNORE_INDEX
from chatapp.training.trainer import _token_loss_sum

VOCAB = 40


def tiny(tie: bool, softcap=None) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(ModelConfig(arch="llama", vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2,
                                    intermediate_size=64, max_seq_len=32, tie_embeddings=tie,
                                    final_softcap=softcap))
    apply_lora(model, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]),
               dtype=torch.float32)
    for name, p in model.named_parameters():  # B starts at zero: give it values so its A gets a gradient
        if name.endswith("lora_B"):
            with torch.no_grad():
                p.normal_(0, 0.1)
    return model.train()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, VOCAB, (3, 12), generator=g)
    labels = torch.randint(0, VOCAB, (3, 12), generator=g)
    labels[0, :7] = IGNORE_INDEX  # a prompt
    labels[1, 4:9] = IGNORE_INDEX
    labels[2, :] = IGNORE_INDEX  # a row of padding only
    return inputs, labels


def full_loss(model: nn.Module, inputs, labels) -> torch.Tensor:
    logits = model(inputs)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("tie,softcap", [(False, None), (True, None), (True, 5.0)])
def test_loss_and_gradients_equal_the_full_path(tie, softcap):
    model = tiny(tie, softcap)
    inputs, labels = batch()
    torch.manual_seed(3)  # the same LoRA dropout masks (none here, but the order must not matter)
    full = full_loss(model, inputs, labels)
    full.backward()
    want = grads(model)
    got_loss = _token_loss_sum(model, inputs, labels)
    got_loss.backward()
    got = grads(model)
    assert got_loss.item() == pytest.approx(full.item(), rel=1e-5)
    assert set(got) == set(want) and len(got) == 12  # lora_A and lora_B of 3 layers x 2 blocks
    for name in want:
        assert torch.allclose(got[name], want[name], rtol=1e-4, atol=1e-6), name
    assert any(g.abs().sum() > 0 for g in got.values())


def test_logits_at_returns_the_selected_rows_of_the_full_logits():
    model = tiny(tie=True).eval()
    inputs, labels = batch()
    at = labels != IGNORE_INDEX
    with torch.no_grad():
        full = model(inputs)  # (3, 12, V)
        part = model(inputs, logits_at=at)  # (N, V)
    assert part.shape == (int(at.sum()), VOCAB)
    assert torch.allclose(part, full[at], atol=1e-5)


def test_a_model_without_logits_at_takes_the_full_path():
    class Plain(nn.Module):  # forward(tokens) only, as a wrapper model may be
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny(tie=False)

        def forward(self, tokens):
            return self.inner(tokens)

    model = Plain()
    inputs, labels = batch()
    assert _token_loss_sum(model, inputs, labels).item() == pytest.approx(
        full_loss(model.inner, inputs, labels).item(), rel=1e-6)


@pytest.mark.parametrize("full", [False, True])
def test_no_labels_at_all_give_a_zero_loss_that_backpropagates(full):
    from chatapp.model.linear import configure_fast_paths

    model = tiny(tie=False)
    configure_fast_paths(model, onednn=True)
    if full:  # every weight trained, the vocabulary projection's too (its gradient from no rows)
        model.requires_grad_(True)
    inputs, labels = batch()
    loss = _token_loss_sum(model, inputs, torch.full_like(labels, IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0
    assert model.lm_head.weight.grad is None or not model.lm_head.weight.grad.any()


# -- bf16 products on a CPU -----------------------------------------------------------------
def test_cpu_bf16_runs_the_products_in_bf16_and_keeps_the_adapter_float32():
    from chatapp.training.trainer import TrainConfig, Trainer, _autocast

    model = tiny(tie=True)
    inputs, labels = batch()
    seen = []
    hook = model.layers[0].attn.q_proj.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with torch.no_grad():
        want = _token_loss_sum(model, inputs, labels).item()  # float32
        with _autocast(torch.device("cpu"), True, cpu_bf16=True):
            got = _token_loss_sum(model, inputs, labels).item()
        with _autocast(torch.device("cpu"), True, cpu_bf16=False):  # off unless asked: float32
            _token_loss_sum(model, inputs, labels)
    assert seen == [torch.float32, torch.bfloat16, torch.float32]
    assert got == pytest.approx(want, rel=2e-2) and got != want
    hook.remove()

    from chatapp.training.dataset import TokenBlocks
    tokens = torch.randint(0, VOCAB, (6, 17), generator=torch.Generator().manual_seed(2))
    blocks = TokenBlocks(tokens, torch.ones_like(tokens, dtype=torch.bool))
    trainer = Trainer(model, TrainConfig(max_steps=3, batch_size=2, block_size=16, eval_every=0, warmup_steps=0,
                                         lr=1e-2, cpu_bf16=True), blocks)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    result = trainer.fit()
    assert result.step == 3 and all(math.isfinite(v) for v in result.losses.values())
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.dtype == torch.float32 for p in trained.values())
    assert any(not torch.equal(before[n], p) for n, p in trained.items())
    state = trainer.optimizer.state_dict()["state"]
    assert all(s["exp_avg"].dtype == torch.float32 for s in state.values())


def test_cpu_has_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    from chatapp.training import trainer as trainer_module

    real_open = builtins.open
    for flags, want in (("fpu avx512f avx512_bf16 avx512_vnni", True), ("fpu avx512f amx_bf16", True),
                        ("fpu avx2 avx512f", False)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(info if path == "/proc/cpuinfo"
                                                                              else path, *a, **k))
        trainer_module.cpu_has_bf16.cache_clear()
        assert trainer_module.cpu_has_bf16() is want
    monkeypatch.setattr(builtins, "open", real_open)
    trainer_module.cpu_has_bf16.cache_clear()
