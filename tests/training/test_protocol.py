"""The training protocol without Qt or torch: the options table and the typed events."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys

import pytest

from chatapp.training.protocol import (DEFAULT_LR, EVENTS, KNOWLEDGE_LORA, KNOWLEDGE_LR, LORA_PRESETS, CheckpointEvent, DatasetEvent, EndEvent,
                                       EstimateEvent, EvalEvent, ExamplesEvent, FileEntry, IngestEvent, SavedEvent, StepEvent,
                                       TrainJob, add_arguments, decode, encode, option_default)

# One of every event, with every field away from its default (so a field lost on the way shows).
SAMPLES = [
    IngestEvent(kind="chat", complete=False, files_used=1, files_skipped=1, chars=1200, text_bytes=1300,
                conversations=3, skipped_by_kind={"binary": 1}, summary="1 file used, 1 skipped: 1 binary",
                files=[FileEntry(path="/d/a.md", status="used", format="markdown", size=1400, chars=1200,
                                 text_bytes=1300, encoding="utf-8"),
                       FileEntry(path="/d/b.bin", status="skipped", reason="binary: .bin file", kind="binary",
                                 size=1024, warning="w")]),
    DatasetEvent(kind="chat", train_examples=9, val_examples=1, train_blocks=40, val_blocks=4, train_tokens=9000,
                 val_tokens=900, block_size=256, fingerprint="abc"),
    EstimateEvent(memory_bytes=2_500_000_000, available_bytes=16_000_000_000, fits=False, total_steps=30,
                  tokens_per_step=1024, device="cpu", processes=2, memory={"weights_bytes": 5}, micro_batch_s=1.5,
                  eta_s=45.0, eta_low_s=36.0, eta_high_s=56.0, recipe="knowledge", time_budget_s=600.0, epochs=8.5,
                  prepare_s=3.25),
    ExamplesEvent(done=4, total=9, elapsed_s=12.5, path="/o/knowledge_examples.jsonl", examples=120,
                  kinds={"qa": 100, "cloze": 20}, seconds=30.5),
    EvalEvent(step=10, val_loss=2.5, val_ppl=12.18),
    StepEvent(step=3, total_steps=30, loss=2.75, lr=1e-4, tokens_per_s=900.5, eta_s=40.0, epoch=0.3,
              val_loss=2.6, val_ppl=13.46),
    CheckpointEvent(step=3, path="/o/checkpoints/step-00000003"),
    SavedEvent(kind="adapter", path="/o"),
    EndEvent(status="cancelled", reason="cancelled at step 3", out="/o", step=3, total_steps=30, best_step=2,
             restored_step=2, val_ppl_before=40.0, val_ppl_after=30.0, val_loss_before=3.7, val_loss_after=3.4,
             checkpoint="/o/checkpoints/step-00000003"),
]


def test_samples_cover_every_event_and_every_field():
    assert sorted(type(e).KIND for e in SAMPLES) == sorted(EVENTS)
    for event in SAMPLES:
        for f in dataclasses.fields(event):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            assert getattr(event, f.name) != default, (event.KIND, f.name)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.KIND)
def test_every_event_round_trips_through_a_json_line(event):
    line = encode(event)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line)["event"] == event.KIND
    assert decode(line) == event
    assert decode(line.encode("utf-8")) == event


def test_not_a_number_becomes_null_and_reads_back_as_none():
    line = encode(StepEvent(step=1, total_steps=2, loss=math.nan, eta_s=math.inf))
    assert '"loss": null' in line and '"eta_s": null' in line
    event = decode(line)
    assert event.loss is None and event.eta_s is None and event.describe().startswith("step 1/2  loss nan")


def test_readers_tolerate_newer_writers_and_refuse_non_events():
    newer = json.dumps({"event": "eval", "step": 4, "val_loss": 1.0, "val_ppl": 2.7, "added_later": [1]})
    assert decode(newer) == EvalEvent(step=4, val_loss=1.0, val_ppl=2.7)
    for line in ("", "loading weights...", "[1, 2]", '{"step": 1}', '{"event": "unheard-of"}',
                 '{"event": "step", "loss": 1.0}', "{not json"):  # the last two lack what they need
        assert decode(line) is None, line


def test_describe_reads_as_the_command_line_says_it():
    end = SAMPLES[-1]
    assert end.describe() == "cancelled at step 3; resume with --resume /o"
    done = EndEvent(status="completed", reason="completed", out="/o", val_ppl_before=40.0, val_ppl_after=20.0)
    assert done.describe() == "completed; validation perplexity 40.00 -> 20.00; output in /o"
    assert EndEvent(status="failed", reason="boom").describe() == "failed: boom"
    assert SAMPLES[2].describe() == ("estimate: 2.33 GiB of 14.90 GiB available, 30 steps, about 45s (36s to 56s) "
                                     "(--epochs auto: 8.5 passes over the data, within the 10m00s budget)")
    assert SAMPLES[3].describe().startswith("examples: 120 (") and SAMPLES[3].describe().endswith(
        "written to /o/knowledge_examples.jsonl")


# -- the options table ----------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return parser


def test_argparse_defaults_are_the_jobs_defaults(tmp_path):
    args = _parser().parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "o")])
    job = TrainJob.from_args(args)
    assert job == TrainJob(data=[str(tmp_path)], out=tmp_path / "o")
    assert (job.method, job.batch_size, job.block_size, job.epochs, job.recipe) == ("lora", 4, 256, "auto", "auto")
    assert job.auto_length and job.fixed_epochs is None
    # LoRA shape and rate: the recipe's defaults unless given
    assert job.lora_settings("text") == (8, 16.0, ["q_proj", "v_proj"])
    assert job.lora_settings("knowledge") == (KNOWLEDGE_LORA["rank"], KNOWLEDGE_LORA["alpha"],
                                              list(LORA_PRESETS["all-linear"]))
    assert job.peak_lr_for("text") == DEFAULT_LR["lora"] and job.peak_lr_for("knowledge") == KNOWLEDGE_LR["lora"]
    assert TrainJob(data=["x"], method="full").peak_lr_for("text") == DEFAULT_LR["full"]
    given = TrainJob(data=["x"], lora_rank=4, lora_targets="attention", lr=1e-5)
    assert given.lora_settings("knowledge") == (4, KNOWLEDGE_LORA["alpha"], list(LORA_PRESETS["attention"]))
    assert given.peak_lr_for("knowledge") == 1e-5
    assert job.resolved_recipe("chat") == "text" and job.resolved_recipe("documents") == "knowledge"
    assert option_default("eval_every") == 50


def test_every_job_field_is_an_option_and_back():
    job = TrainJob(model="m.gguf", data=["a", "b c"], out="o", method="lora", max_steps=7, lr=1e-3, warmup_steps=2,
                   weight_decay=0.1, batch_size=2, grad_accum=3, block_size=64, lora_rank=4, lora_alpha=8.0,
                   lora_dropout=0.1, lora_targets="all-linear", eval_every=5, early_stop=2, save_every=3,
                   keep_checkpoints=4, val_fraction=0.2, resume="o", seed=9, gradient_checkpointing=True)
    assert TrainJob.from_args(_parser().parse_args(job.to_argv())) == job
    assert job.lora_targets == list(LORA_PRESETS["all-linear"]) and job.restore_best  # early stop implies it


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "1", "--max-steps", "3"], "not allowed with"), (["--lora-targets", "q_proj,qq"], "unknown LoRA"),
    (["--method", "qlora"], "invalid choice")])
def test_bad_command_lines_are_refused_by_argparse(tmp_path, argv, message):
    with pytest.raises(argparse.ArgumentError, match=message):
        _parser().parse_args(["--data", "x", "--out", "o", *argv])


@pytest.mark.parametrize("bad, message", [
    (dict(batch_size=0), "batch_size must be >= 1"), (dict(lr=-1.0), "lr must be > 0"),
    (dict(val_fraction=1.0), "val_fraction"), (dict(strategy="zero"), "strategy must be one of"),
    (dict(max_steps=2.5), "whole number"), (dict(early_stop=-1), "early_stop")])
def test_jobs_check_themselves(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainJob(data=["x"], out="o", **bad)


def test_protocol_imports_neither_torch_nor_qt():
    code = ("import sys, chatapp.training.protocol, chatapp.training.outputs; "
            "print([m for m in ('torch', 'PySide6') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
