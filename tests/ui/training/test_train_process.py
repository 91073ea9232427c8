"""The training child's command line and `TrainingProcess` on its own, against the fake trainer."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from chatapp.training.protocol import TrainJob
from chatapp.ui.training_process import TrainingProcess, build_train_command, new_out_dir


# -- the command ---------------------------------------------------------------------------------
def test_build_train_command_lora_and_full(tmp_path):
    options = TrainJob(model="default", data=[tmp_path / "a", tmp_path / "b.md"], out=tmp_path / "out")
    argv = build_train_command(options, prefix=["chatapp"])
    assert argv[:4] == ["chatapp", "train", "--model", "default"]
    assert argv[4:7] == ["--data", str(tmp_path / "a"), str(tmp_path / "b.md")]
    pairs = dict(zip(argv[7::2], argv[8::2]))
    # the options table's defaults are the command's defaults: only what differs is written
    assert pairs == {"--out": str(tmp_path / "out"), "--progress": "jsonl"}
    chosen = TrainJob(model="default", data=[tmp_path], out=tmp_path / "out", epochs=2.0, lr=3e-4, batch_size=2,
                      lora_targets="attention", save_every=100)
    argv = build_train_command(chosen, prefix=["chatapp"])
    pairs = dict(zip(argv[6::2], argv[7::2]))
    assert pairs == {"--out": str(tmp_path / "out"), "--epochs": "2", "--lr": "0.0003", "--batch-size": "2",
                     "--lora-targets": "q_proj,k_proj,v_proj,o_proj", "--save-every": "100", "--progress": "jsonl"}
    full = TrainJob(model="m.gguf", data=[tmp_path], out=tmp_path / "o", method="full", max_steps=30,
                    lr=2e-5, resume=tmp_path / "o" / "step-00000010", lora_rank=4)
    argv = build_train_command(full, dry_run=True, prefix=["x"])
    assert "--lora-rank" not in argv and "--epochs" not in argv
    assert argv[argv.index("--max-steps") + 1] == "30" and argv[argv.index("--lr") + 1] == "2e-05"
    assert argv[argv.index("--resume") + 1] == str(tmp_path / "o" / "step-00000010")
    assert argv[-3:] == ["--progress", "jsonl", "--dry-run"]
    stopping = TrainJob(model="default", data=[tmp_path], out=tmp_path / "o", early_stop=3)
    argv = build_train_command(stopping, prefix=["x"])
    assert argv[argv.index("--early-stop") + 1] == "3"


def test_command_parses_with_the_real_train_cli(tmp_path):
    train = pytest.importorskip("chatapp.commands.train")
    import argparse
    parser = argparse.ArgumentParser()
    train.add_train_parser(parser.add_subparsers(dest="command"))
    options = TrainJob(model="default", data=[tmp_path / "a", tmp_path / "b.md"], out=tmp_path / "out",
                       max_steps=12, lr=3e-4, lora_rank=4, lora_alpha=8, resume=tmp_path / "out",
                       early_stop=2, lora_targets=["q_proj", "k_proj", "v_proj", "o_proj"], save_every=100)
    args = parser.parse_args(build_train_command(options, dry_run=True, prefix=["chatapp"])[1:])
    assert args.data == [str(tmp_path / "a"), str(tmp_path / "b.md")] and args.out == str(tmp_path / "out")
    assert (args.method, args.max_steps, args.epochs, args.lr) == ("lora", 12, "auto", 3e-4)
    assert (args.lora_rank, args.lora_alpha, args.save_every, args.eval_every) == (4, 8.0, 100, 50)
    assert (args.resume, args.progress, args.dry_run) == (str(tmp_path / "out"), "jsonl", True)
    assert args.early_stop == 2 and args.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert TrainJob.from_args(args) == dataclasses.replace(options, dry_run=True)  # the round trip loses nothing


def test_default_command_starts_this_app(tmp_path):
    argv = build_train_command(TrainJob(model="default", data=[tmp_path], out=tmp_path))
    assert argv[0] == sys.executable and argv[1:4] == ["-m", "chatapp", "train"]


@pytest.mark.parametrize("bad, message", [
    (dict(data=[]), "no documents"), (dict(method="qlora"), "method"), (dict(epochs=1.0, max_steps=5), "not both"),
    (dict(lr=0), "lr"), (dict(batch_size=0), "batch_size"), (dict(model=""), "model"),
    (dict(early_stop=-1), "early_stop"), (dict(lora_targets=[]), "lora_targets")])
def test_train_options_validate(tmp_path, bad, message):
    kwargs = dict(model="default", data=[tmp_path], out=tmp_path)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        TrainJob(**kwargs)


def test_out_dir_is_named_and_stamped(tmp_path):
    out = new_out_dir("My Notes!", root=tmp_path, now=0)
    assert out.parent == tmp_path and out.name.startswith("my-notes-") and len(out.name) == len("my-notes-") + 15


# -- the process on its own ----------------------------------------------------------------------
def _run_process(qtbot, command, **kwargs):
    process = TrainingProcess(command, **kwargs)
    seen = {"step": [], "eval": [], "ingest": [], "estimate": [], "checkpoint": []}
    process.stepped.connect(seen["step"].append)
    process.evaluated.connect(seen["eval"].append)
    process.ingest.connect(seen["ingest"].append)
    process.estimate.connect(seen["estimate"].append)
    process.checkpointed.connect(seen["checkpoint"].append)
    with qtbot.waitSignal(process.ended, timeout=60000) as blocker:
        process.start()
    assert not process.is_running()
    return blocker.args, seen


def test_process_parses_lines_and_completes(qtbot, fake_trainer, tmp_path):
    (status, reason, info), seen = _run_process(qtbot, [sys.executable, str(fake_trainer), "complete", str(tmp_path)])
    assert status == "completed", reason
    assert [e.step for e in seen["step"]] == list(range(1, 11))
    assert [e.val_ppl for e in seen["eval"]] == [40.0, 24.5, 20.0]
    assert seen["ingest"][0].files[1].reason == "binary: .bin file"
    assert seen["estimate"][0].eta_s == 400
    assert info.end.val_ppl_after == 20.0 and info.exit_code == 0  # the split, newline-less end line
    assert (info.checkpoint, info.checkpoint_step) == (str(tmp_path / "checkpoints" / "step-00000010"), 10)


@pytest.mark.parametrize("mode, expected", [
    ("noend", "exited without reporting an end"), ("lies", "reported completion but then")])
def test_process_without_a_true_end_fails(qtbot, fake_trainer, tmp_path, mode, expected):
    (status, reason, _), _ = _run_process(qtbot, [sys.executable, str(fake_trainer), mode, str(tmp_path)])
    assert status == "failed" and expected in reason


def test_process_that_cannot_start_fails(qtbot, tmp_path):
    (status, reason, info), _ = _run_process(qtbot, [str(tmp_path / "no-such-program")])
    assert status == "failed" and "could not start" in reason and info.exit_code is None and info.end is None
