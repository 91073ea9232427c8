"""`chatapp train` under torchrun (2 processes, gloo on CPU) against one process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tiny_hf import read_events, tiny_llama_folder, write_corpus

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    if not TORCHRUN.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun is not installed")
    torchrun = str(TORCHRUN) if TORCHRUN.exists() else shutil.which("torchrun")
    model = tiny_llama_folder(tmp_path / "model")
    docs = write_corpus(tmp_path / "docs")
    args = ["train", "--model", str(model), "--data", str(docs), "--max-steps", "4", "--lr", "1e-2",
            "--block-size", "32", "--batch-size", "4", "--grad-accum", "2", "--eval-every", "2", "--lora-dropout", "0",
            "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads", "1", "--progress", "jsonl"]

    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "chatapp", *args,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, env=_env(), timeout=300)
    one = subprocess.run([sys.executable, "-m", "chatapp", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    events_two, events_one = read_events(two.stdout), read_events(one.stdout)  # rank 0 alone writes lines

    assert events_two[-1]["status"] == "completed" and events_one[-1]["status"] == "completed"
    assert next(e for e in events_two if e["event"] == "estimate")["processes"] == 2
    assert [e["event"] for e in events_two] == [e["event"] for e in events_one]
    for a, b in zip(events_two, events_one):
        if a["event"] == "step":
            assert a["step"] == b["step"] and a["lr"] == b["lr"]
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        if a["event"] == "eval":
            assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)

    # One adapter, written once, holding the same weights.
    adapter_two = load_file(tmp_path / "two" / "adapter_model.safetensors")
    adapter_one = load_file(tmp_path / "one" / "adapter_model.safetensors")
    assert adapter_two.keys() == adapter_one.keys()
    for name in adapter_one:
        assert torch.allclose(adapter_two[name], adapter_one[name], atol=1e-5), name
    meta = json.loads((tmp_path / "two" / "chatapp_adapter.json").read_text())["metadata"]
    assert meta["processes"] == 2
    assert [p.name for p in (tmp_path / "two" / "checkpoints").iterdir()] == ["step-00000004"]
