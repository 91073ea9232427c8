"""`chatapp train` on tiny Phi-3 and SmolLM3 folders made here: SmolLM3 LoRA writes a PEFT
adapter; Phi-3 LoRA writes one on its fused qkv_proj / gate_up_proj (rank-stacked), and full
fine-tuning writes a Phi-3 folder that loads again."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from helpers.tiny_hf import read_events, tiny_llama_folder, write_corpus

from chatapp.cli import main  # noqa: E402
from chatapp.model.lora import lora_layers  # noqa: E402
from chatapp.weights.build import build_model  # noqa: E402
from chatapp.weights.hf_loader import load_hf_folder, read_hf_config  # noqa: E402
from chatapp.weights.peft_adapter import load_adapter  # noqa: E402

pytest.importorskip("transformers")

ARGS = ["--max-steps", "4", "--lr", "1e-2", "--block-size", "32", "--batch-size", "2", "--eval-every", "4",
        "--threads", "1", "--recipe", "text", "--progress", "jsonl"]


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("docs") / "docs", n_docs=6)


def test_smollm3_lora_writes_a_peft_adapter(tmp_path, docs):
    model = tiny_llama_folder(tmp_path / "model", family="smollm3", layers=4)
    assert read_hf_config(model)[1].no_rope_layers == [3]
    code, out, _ = run_cli(["train", "--model", model, "--data", docs, "--out", tmp_path / "out", *ARGS])
    events = read_events(out)
    assert code == 0, events[-1]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "completed"
    adapter = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA"


def test_phi3_lora_writes_a_peft_adapter_on_the_fused_layers(tmp_path, docs):
    model = tiny_llama_folder(tmp_path / "model", family="phi3")
    code, out, _ = run_cli(["train", "--model", model, "--data", docs, "--out", tmp_path / "out", *ARGS])
    events = read_events(out)
    assert code == 0, events[-1]
    assert [e for e in events if e["event"] == "step"]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "completed"
    adapter = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA"
    fused = set(adapter["target_modules"]) & {"qkv_proj", "gate_up_proj"}
    assert fused and set(adapter["rank_pattern"]) == fused
    assert adapter["rank_pattern"].get("qkv_proj", 3 * adapter["r"]) == 3 * adapter["r"]
    ours = build_model(*load_hf_folder(model))
    info = load_adapter(ours, tmp_path / "out")  # split back onto our layers
    assert len(list(lora_layers(ours))) == 2 * len(info.config.target_modules)


def test_phi3_full_fine_tuning_writes_a_phi3_folder(tmp_path, docs):
    model = tiny_llama_folder(tmp_path / "model", family="phi3")
    code, out, _ = run_cli(["train", "--model", model, "--data", docs, "--out", tmp_path / "out", "--method", "full",
                            *ARGS])
    events = read_events(out)
    assert code == 0, events[-1]
    family, config = read_hf_config(tmp_path / "out")
    assert family == "phi3" and config.n_layers == 2
    assert "qkv_proj" in (tmp_path / "out" / "model.safetensors").read_bytes()[:20000].decode("latin-1")
