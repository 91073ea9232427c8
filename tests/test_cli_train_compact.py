"""`chatapp train --method lora --weights int8|int4`: LoRA over a base kept compact, on a tiny
model made here; the adapter it writes loads on the float32 base, and the estimate knows."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from helpers.tiny_hf import read_events, tiny_llama_folder, write_corpus

from chatapp.cli import main

pytest.importorskip("transformers")

ARGS = ["--max-steps", "20", "--lr", "3e-2", "--block-size", "32", "--batch-size", "4", "--eval-every", "10",
        "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads", "1", "--recipe", "text"]


def run_cli(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("compact")
    return {"model": tiny_llama_folder(root / "model"), "docs": write_corpus(root / "docs"), "root": root}


def _train(files, weights: str):
    out = files["root"] / f"out-{weights}"
    code, stdout, stderr = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out", out,
                                    "--progress", "jsonl", "--weights", weights, *ARGS])
    assert code == 0, stderr[-2000:]
    return read_events(stdout), out


@pytest.mark.parametrize("weights", ["int8", "int4"])
def test_lora_over_a_compact_base_lowers_the_loss_and_loads_on_float32(files, weights):
    events, out = _train(files, weights)
    evals = [e for e in events if e["event"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"], evals
    estimate = next(e for e in events if e["event"] == "estimate")
    assert events[-1]["event"] == "end" and events[-1]["status"] == "completed"

    from chatapp.engine.loader import load_model

    compact = load_model(files["model"], device="cpu", weights=weights, check_memory=False)
    from chatapp.weights.peft_adapter import read_adapter_info

    info = read_adapter_info(out)
    assert info.config.r > 0
    on_float = load_model(files["model"], device="cpu", adapter=out, check_memory=False)  # the float32 base
    plain = load_model(files["model"], device="cpu", check_memory=False)
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    pos = torch.arange(ids.shape[1])
    with torch.no_grad():
        with_adapter, without = on_float.model(ids, pos), plain.model(ids, pos)
    assert not torch.allclose(with_adapter, without, atol=1e-3)  # the adapter changes the float base's logits
    assert estimate["memory"]["weights_bytes"] < 0.5 * 4 * compact.config.n_params


def test_compact_weights_are_refused_for_full_fine_tuning(files):
    code, stdout, stderr = run_cli(["train", "--model", files["model"], "--data", files["docs"],
                                    "--out", files["root"] / "full", "--method", "full", "--weights", "int8", *ARGS[:4]])
    assert code != 0
    assert "only LoRA trains over" in stdout + stderr
