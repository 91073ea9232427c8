"""What a fine-tune changed: per-token log-probabilities with the adapter off and on, and
`chatapp eval --per-token` writing them; checked against plain forward passes of the model."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from helpers.tiny_hf import tiny_llama_folder, write_corpus

from chatapp.cli import main
from chatapp.engine.loader import load_model
from chatapp.engine.token_scores import ScoringCancelled, TokenScore, perplexity, score_text_ids
from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers, set_lora_enabled
from chatapp.weights.peft_adapter import save_adapter

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("scores")
    model = tiny_llama_folder(root / "model")
    loaded = load_model(model, device="cpu", check_memory=False)
    apply_lora(loaded.model, LoRAConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for _, layer in lora_layers(loaded.model):  # a trained adapter changes the model: B is not zero
        torch.nn.init.normal_(layer.lora_B, std=0.5)
    adapter = save_adapter(loaded.model, LoRAConfig(r=4, target_modules=["q_proj", "v_proj"]), root / "adapter",
                           base_model_name=str(model))
    return {"model": model, "adapter": adapter, "docs": write_corpus(root / "docs", n_docs=3, sentences_per_doc=6)}


def _reference(model, ids):
    """log p(ids[i+1] | ids[:i+1]) from one plain forward pass over the whole text."""
    model.clear_cache()
    with torch.no_grad():
        logits = model(torch.tensor([ids]), torch.arange(len(ids)))[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return [float(logprobs[i, t]) for i, t in enumerate(ids[1:])]


def test_the_difference_is_adapter_minus_base_over_the_same_tokens(files):
    loaded = load_model(files["model"], device="cpu", check_memory=False, adapter=files["adapter"])
    ids = loaded.tokenizer.encode("the cat sat on the mat and the dog ran far away")[:40]
    seen = []
    scores = score_text_ids(loaded.model, ids, loaded.tokenizer, chunk=5, progress=lambda d, t: seen.append((d, t)))
    set_lora_enabled(loaded.model, False)
    base = _reference(loaded.model, ids)
    set_lora_enabled(loaded.model, True)
    tuned = _reference(loaded.model, ids)
    assert [s.id for s in scores] == ids[1:] and [s.index for s in scores] == list(range(len(ids) - 1))
    assert [s.logprob_base for s in scores] == pytest.approx(base, abs=1e-4)
    assert [s.logprob_adapter for s in scores] == pytest.approx(tuned, abs=1e-4)
    assert [s.difference for s in scores] == pytest.approx([t - b for t, b in zip(tuned, base)], abs=1e-4)
    assert max(abs(t - b) for t, b in zip(tuned, base)) > 0.01  # the adapter does change the model
    assert scores[0].token == loaded.tokenizer.decode([ids[1]])
    assert seen[-1] == (2 * (len(ids) - 1), 2 * (len(ids) - 1)) and len(seen) > 4  # both passes, chunk by chunk
    assert perplexity([s.logprob_base for s in scores]) == pytest.approx(
        torch.exp(-torch.tensor(base).mean()).item(), rel=1e-5)
    assert all(layer.enabled for _, layer in lora_layers(loaded.model)) and loaded.model.cache_len == 0


def test_windows_and_cancel(files):
    loaded = load_model(files["model"], device="cpu", check_memory=False)
    ids = list(range(3, 3 + 30))
    scores = score_text_ids(loaded.model, ids, window=10)
    assert len(scores) == 29 and all(s.logprob_adapter is None for s in scores)
    # the second window's first scored token is predicted from the first window's last token alone
    assert scores[9].logprob_base == pytest.approx(_reference(loaded.model, ids[9:11])[0], abs=1e-4)
    assert TokenScore(0, 5, "a", -1.0).to_json() == {"index": 0, "id": 5, "token": "a", "logprob_base": -1.0}
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ScoringCancelled):
        score_text_ids(loaded.model, ids, cancel=cancel)
    assert loaded.model.cache_len == 0


@pytest.mark.parametrize("with_adapter", [False, True])
def test_eval_per_token_writes_one_line_per_evaluated_token(files, tmp_path, capsys, with_adapter):
    out = tmp_path / "tokens.jsonl"
    extra = ["--adapter", str(files["adapter"])] if with_adapter else []
    code = main(["eval", "--model", str(files["model"]), "--data", str(files["docs"]), "--all", "--json",
                 "--block-size", "32", "--threads", "1", "--per-token", str(out), *extra])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    keys = {"index", "id", "token", "logprob_base"} | ({"logprob_adapter"} if with_adapter else set())
    assert all(set(line) == keys for line in lines) and [l["index"] for l in lines] == list(range(len(lines)))
    assert len(lines) == result["tokens"] == result["per_token"]["tokens"]
    # the lines are the evaluation itself: their mean surprise is its loss
    field = "logprob_adapter" if with_adapter else "logprob_base"
    assert -sum(l[field] for l in lines) / len(lines) == pytest.approx(result["loss"], abs=1e-4)
    if with_adapter:
        assert result["per_token"]["ppl_adapter"] == pytest.approx(result["ppl"], rel=1e-4)
        assert result["per_token"]["ppl_base"] != pytest.approx(result["ppl"], rel=1e-3)
