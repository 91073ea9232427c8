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

from helpers.tiny_hf import read_events, tiny_llama_folder, write_corpus

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
            "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads", "1", "--progress", "jsonl",
            "--no-bf16"]  # float32 on every CPU: the processes' sums must agree to 1e-5

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


def _torchrun() -> str:
    if TORCHRUN.exists():
        return str(TORCHRUN)
    found = shutil.which("torchrun")
    if found is None:
        pytest.skip("torchrun is not installed")
    return found


def _steps(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["event"] == "step"}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_fsdp_shards_and_matches_one_process_then_resumes(tmp_path, method):
    torchrun = _torchrun()
    model = tiny_llama_folder(tmp_path / "model")
    docs = write_corpus(tmp_path / "docs")
    args = ["train", "--model", str(model), "--data", str(docs), "--method", method, "--max-steps", "4",
            "--lr", "1e-2" if method == "lora" else "1e-3", "--block-size", "32", "--batch-size", "4",
            "--grad-accum", "2", "--eval-every", "2", "--save-every", "2", "--keep-checkpoints", "0",
            "--lora-dropout", "0", "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads", "1",
            "--progress", "jsonl", "--no-bf16"]  # float32 on every CPU: the processes' sums must agree to 1e-5
    fsdp = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "chatapp", *args, "--strategy", "fsdp"]
    sharded = subprocess.run([*fsdp, "--out", str(tmp_path / "fsdp")], capture_output=True, text=True,
                             env=_env(), timeout=300)
    one = subprocess.run([sys.executable, "-m", "chatapp", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    events, reference = read_events(sharded.stdout), read_events(one.stdout)
    assert events[-1]["status"] == "completed" and [e["event"] for e in events] == [e["event"] for e in reference]
    assert next(e for e in events if e["event"] == "estimate")["memory"]["optimizer_bytes"] * 2 == \
        next(e for e in reference if e["event"] == "estimate")["memory"]["optimizer_bytes"]  # sharded
    steps = _steps(events)
    assert steps == pytest.approx(_steps(reference), abs=1e-5)
    evals = [e["val_loss"] for e in events if e["event"] == "eval"]
    assert evals == pytest.approx([e["val_loss"] for e in reference if e["event"] == "eval"], abs=1e-5)

    # Checkpoints hold whole tensors, as one process writes them.
    for step in ("step-00000002", "step-00000004"):
        for name in ("trainable.safetensors", "optimizer.safetensors"):
            mine = load_file(tmp_path / "fsdp" / "checkpoints" / step / name)
            theirs = load_file(tmp_path / "one" / "checkpoints" / step / name)
            assert mine.keys() == theirs.keys()
            for key in theirs:
                assert mine[key].shape == theirs[key].shape, key
                assert torch.allclose(mine[key].float(), theirs[key].float(), atol=1e-4), key

    # The outputs: the same adapter, or the same model folder.
    if method == "lora":
        mine, theirs = (load_file(tmp_path / d / "adapter_model.safetensors") for d in ("fsdp", "one"))
    else:
        mine, theirs = (load_file(tmp_path / d / "model.safetensors") for d in ("fsdp", "one"))
    assert mine.keys() == theirs.keys()
    assert all(torch.allclose(mine[k], theirs[k], atol=1e-5) for k in theirs)

    # Resuming a sharded run from its step-2 checkpoint repeats steps 3 and 4.
    resumed_out = tmp_path / "resumed"
    shutil.copytree(tmp_path / "fsdp" / "checkpoints" / "step-00000002",
                    resumed_out / "checkpoints" / "step-00000002")
    resumed = subprocess.run([*fsdp, "--out", str(resumed_out), "--resume", str(resumed_out)],
                             capture_output=True, text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = _steps(read_events(resumed.stdout))
    assert sorted(again) == [3, 4]
    assert again == pytest.approx({s: steps[s] for s in (3, 4)}, abs=1e-6)


def test_fsdp_without_torchrun_is_refused(tmp_path):
    model = tiny_llama_folder(tmp_path / "model")
    docs = write_corpus(tmp_path / "docs")
    done = subprocess.run([sys.executable, "-m", "chatapp", "train", "--model", str(model), "--data", str(docs),
                           "--out", str(tmp_path / "o"), "--strategy", "fsdp", "--max-steps", "1", "--progress",
                           "jsonl"], capture_output=True, text=True, env=_env(), timeout=300)
    end = read_events(done.stdout)[-1]
    assert done.returncode == 1 and end["status"] == "failed" and "torchrun" in end["reason"]


def test_fsdp_early_stop_gathers_the_best_weights(tmp_path):
    torchrun = _torchrun()
    model = tiny_llama_folder(tmp_path / "model")
    docs = write_corpus(tmp_path / "docs")
    out = tmp_path / "early"
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "chatapp", "train", "--model",
                           str(model), "--data", str(docs), "--out", str(out), "--strategy", "fsdp", "--max-steps",
                           "30", "--lr", "1.0", "--block-size", "32", "--batch-size", "4", "--eval-every", "2",
                           "--early-stop", "2", "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads",
                           "1", "--progress", "jsonl", "--recipe", "text"],  # `chatapp eval` below: the text split
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    end = read_events(done.stdout)[-1]
    assert end["reason"] == "early_stop" and end["restored_step"] == end["best_step"] < end["step"]
    evaluated = subprocess.run([sys.executable, "-m", "chatapp", "eval", "--model", str(model), "--adapter", str(out),
                                "--data", str(docs), "--json", "--threads", "1"],
                               capture_output=True, text=True, env=_env(), timeout=300)
    assert json.loads(evaluated.stdout)["ppl"] == pytest.approx(end["val_ppl_after"], rel=1e-4)
