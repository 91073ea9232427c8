"""LoRA on Gemma 2 / Gemma 3: training lowers the loss, and the adapter (PEFT format, every
projection targeted) gives transformers + peft the logits it gives us."""

from __future__ import annotations

import random

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig, lora_layers
from chatapp.training.dataset import TokenBlocks, pack_documents, split_documents
from chatapp.training.trainer import TrainConfig, Trainer
from chatapp.weights.build import build_model
from chatapp.weights.hf_loader import load_hf_folder
from chatapp.weights.peft_adapter import save_adapter

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VOCAB = 48


def tiny_gemma2(seed: int = 0) -> Transformer:
    config = ModelConfig(arch="gemma2", vocab_size=VOCAB, dim=96, n_layers=3, n_heads=4, n_kv_heads=2, head_dim=32,
                         intermediate_size=192, max_seq_len=64, norm_unit_offset=True, post_norms=True,
                         embed_scale=True, mlp="geglu", attn_scale=32 ** -0.5, attn_softcap=20.0,
                         final_softcap=15.0, sliding_window=8, tie_embeddings=True,
                         layer_types=("sliding_attention", "full_attention", "sliding_attention"))
    torch.manual_seed(seed)
    model = Transformer(config)
    with torch.no_grad():
        model.tok_embeddings.weight.normal_(0.0, 0.05)  # sqrt(dim) scales them up
    return model.eval()


def test_lora_training_reduces_loss_on_gemma2():
    rng = random.Random(0)
    eos = VOCAB - 1
    phrases = [[rng.randrange(eos) for _ in range(6)] for _ in range(6)]
    docs = [[t for _ in range(8) for t in rng.choice(phrases)] for _ in range(60)]
    train_docs, val_docs = split_documents(docs, val_fraction=0.15, seed=0)
    train = TokenBlocks.from_blocks(pack_documents(train_docs, 32, eos))  # blocks longer than the window
    val = TokenBlocks.from_blocks(pack_documents(val_docs, 32, eos))
    model = tiny_gemma2()
    config = TrainConfig(method="lora", lr=1e-2, warmup_steps=5, max_steps=50, batch_size=8, eval_every=50,
                         block_size=32, lora=LoRAConfig(r=8, alpha=16, target_modules=ALL_TARGETS))
    result = Trainer(model, config, train, val).fit()
    first, last = result.losses[1], sum(result.losses[s] for s in range(46, 51)) / 5
    before, after = result.evals[0]["val_ppl"], result.evals[-1]["val_ppl"]
    print(f"gemma2 LoRA: train loss {first:.3f} -> {last:.3f}; held-out ppl {before:.2f} -> {after:.2f}")
    assert last < 0.6 * first and after < 0.5 * before
    for name, p in tiny_gemma2().named_parameters():  # only the adapters moved
        assert torch.equal(p, model.get_parameter(name))


@pytest.mark.parametrize("family", ["gemma2", "gemma3_text"])
def test_gemma_adapter_loads_in_peft_with_the_same_logits(tmp_path, family):
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, max_position_embeddings=64, sliding_window=4,
                  query_pre_attn_scalar=16)
    config = (transformers.Gemma2Config(**common, attn_logit_softcapping=5.0, final_logit_softcapping=5.0)
              if family == "gemma2" else transformers.Gemma3TextConfig(**common, sliding_window_pattern=2))
    torch.manual_seed(3)
    ref = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.save_pretrained(tmp_path / "base")
    ours = build_model(*load_hf_folder(tmp_path / "base"))
    lora = LoRAConfig(r=4, alpha=8, target_modules=ALL_TARGETS)
    blocks = torch.randint(0, VOCAB, (8, 17), generator=torch.Generator().manual_seed(3))
    Trainer(ours, TrainConfig(lr=1e-2, warmup_steps=0, max_steps=3, batch_size=4, block_size=16, lora=lora),
            blocks).fit()
    assert len(list(lora_layers(ours))) == 2 * 7
    adapter = save_adapter(ours, lora, tmp_path / "adapter", base_model_name=str(tmp_path / "base"))
    base = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base", attn_implementation="eager").eval()
    x = torch.randint(0, VOCAB, (2, 13), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        plain = base(x).logits
        expected = peft.PeftModel.from_pretrained(base, adapter).eval()(x).logits
        got = ours.eval()(x)
    assert (expected - plain).abs().max() > 1e-3  # the adapter matters
    assert (got - expected).abs().max().item() <= 1e-4
