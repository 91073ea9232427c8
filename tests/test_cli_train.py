"""`chatapp train`, `eval`, `export` and `generate --adapter` on tiny models made here.

The JSON-lines contract is what the window's training supervisor relies on: every stdout line
parses, the last one is the "end" event, a failure is never reported as completed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.tiny_hf import read_events, tiny_llama_folder, write_chat_file, write_corpus

from chatapp.cli import main  # noqa: E402

pytest.importorskip("transformers")

LORA_ARGS = ["--max-steps", "30", "--lr", "3e-2", "--block-size", "32", "--batch-size", "4", "--eval-every", "10",
             "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads", "1"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in text_recipe(argv)])
    return code, out.getvalue(), err.getvalue()


def text_recipe(argv: list) -> list:
    """These tests check the raw-text path (the default for documents is now the knowledge
    recipe, tested in tests/training/test_knowledge.py): train with --recipe text unless told."""
    if argv and argv[0] == "train" and "--recipe" not in argv:
        return [*argv, "--recipe", "text"]
    return argv


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return env


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return {"model": tiny_llama_folder(root / "model"), "docs": write_corpus(root / "docs"),
            "chat": write_chat_file(root / "chat.jsonl"), "root": root}


@pytest.fixture(scope="module")
def lora_run(files):
    out = files["root"] / "lora-out"
    code, stdout, stderr = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out", out,
                                    "--progress", "jsonl", *LORA_ARGS])
    return code, read_events(stdout), out


def test_jsonl_contract_and_lora_lowers_validation_perplexity(lora_run):
    code, events, out = lora_run
    kinds = [e["event"] for e in events]
    assert code == 0
    assert kinds[:4] == ["ingest", "dataset", "estimate", "eval"] and kinds[-1] == "end"
    assert kinds.count("step") == 30 and kinds.count("checkpoint") == 1 and "saved" in kinds
    ingest = events[0]
    assert ingest["files_used"] == 12 and ingest["skipped_by_kind"] == {"binary": 1}
    assert {f["status"] for f in ingest["files"]} == {"used", "skipped"} and ingest["summary"]
    estimate = events[2]
    assert estimate["fits"] and estimate["memory_bytes"] < estimate["available_bytes"] and estimate["eta_s"] > 0
    steps = [e for e in events if e["event"] == "step"]
    assert all({"step", "loss", "lr", "tokens_per_s", "eta_s"} <= set(e) for e in steps)
    assert [e["step"] for e in events if e["event"] == "eval"] == [0, 10, 20, 30]
    end = events[-1]
    assert end["status"] == "completed" and end["out"] == str(out)
    assert end["val_ppl_after"] < 0.5 * end["val_ppl_before"]  # measured: 375 -> 65

    from chatapp.weights.peft_adapter import read_adapter_info
    info = read_adapter_info(out)
    assert info.config.r == 8 and info.config.target_modules == ["down_proj", "q_proj", "up_proj", "v_proj"]
    meta = info.metadata
    assert meta["data_fingerprint"] == events[1]["fingerprint"] and meta["seed"] == 0
    assert meta["eval_before"]["val_ppl"] == end["val_ppl_before"]
    assert meta["eval_after"]["val_ppl"] == end["val_ppl_after"]
    assert (out / "checkpoints" / "step-00000030").is_dir()


def test_eval_prints_held_out_perplexity_matching_training(files, lora_run):
    _, events, out = lora_run
    code, text, _ = run_cli(["eval", "--model", files["model"], "--data", files["docs"], "--block-size", 32])
    assert code == 0 and text.startswith("perplexity ") and "1 of 12 examples held out" in text
    code, text, _ = run_cli(["eval", "--model", files["model"], "--adapter", out, "--data", files["docs"],
                             "--json", "--threads", 1])
    result = json.loads(text)
    assert code == 0 and result["block_size"] == 32  # taken from the adapter's notes
    assert result["ppl"] == pytest.approx(events[-1]["val_ppl_after"], rel=1e-4)
    code, text, _ = run_cli(["eval", "--model", files["model"], "--data", files["docs"], "--all", "--json",
                             "--block-size", 32])
    assert json.loads(text)["examples"] == 12 and json.loads(text)["split"] == "all"
    assert json.loads(text)["quiz"] is None  # a text-recipe run: no quiz unless asked


def test_eval_also_asks_the_quiz(files, lora_run, tmp_path):
    """`eval --questions FILE` reports the quiz with the held-out perplexity; the knowledge
    recipe's notes make 'auto' questions (made from --data) the default."""
    from chatapp.commands.train import eval_questions
    from chatapp.training.prepare import read_sources

    _, _, out = lora_run
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": f"Q{i}?", "answers": ["zz-never"]}) + "\n" for i in range(3)))
    code, text, _ = run_cli(["eval", "--model", files["model"], "--adapter", out, "--data", files["docs"],
                             "--json", "--threads", 1, "--questions", questions])
    result = json.loads(text)
    assert code == 0 and result["quiz"]["total"] == 3 and result["quiz"]["score"] == 0
    assert len(result["quiz"]["questions"]) == 3 and "ppl" in result
    facts = tmp_path / "facts"
    facts.mkdir()
    (facts / "guild.md").write_text("# The Harbour Guild\n\nThe guild hall was built in 1874 by Mira Castell "
                                    "and Tomas Reyes.\n\nIn 1901 the guild bought eleven boats from Halvard Dahl.\n")
    sources = read_sources([facts])
    made = eval_questions(None, {"recipe": "knowledge"}, sources)
    assert made and all("____" in q.question for q in made)
    assert eval_questions(None, {"recipe": "text"}, sources) == []
    assert eval_questions("none", {"recipe": "knowledge"}, sources) == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    code, _, err = run_cli(["eval", "--model", files["model"], "--data", files["docs"], "--questions", bad])
    assert code == 1 and "bad.jsonl:1" in err


def test_generate_with_adapter_differs_and_switches_off(files, lora_run):
    _, _, out = lora_run
    argv = ["generate", "--model", files["model"], "--prompt", "the cat", "--temperature", "0",
            "--max-new-tokens", "12", "--json", "--threads", "1"]
    _, plain, _ = run_cli(argv)
    _, adapted, _ = run_cli(argv + ["--adapter", out])
    plain_ids, adapted_ids = json.loads(plain)["token_ids"], json.loads(adapted)["token_ids"]
    assert plain_ids != adapted_ids

    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.sampling import SamplingSettings
    backend = ChatBackend()
    info = backend.load(str(files["model"]), LoadOptions(device="cpu", threads=1, adapter=str(out)))
    assert info.adapter == str(out) and backend.has_adapter
    tok = backend.engine.tokenizer
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=12)  # what the CLI runs with no flags
    ids = tok.encode("the cat")
    with_adapter = list(backend.engine.generate_ids(ids, greedy))
    backend.set_adapter_enabled(False)
    assert list(backend.engine.generate_ids(ids, greedy)) == plain_ids
    backend.set_adapter_enabled(True)
    assert list(backend.engine.generate_ids(ids, greedy)) == with_adapter == adapted_ids


def test_early_stop_writes_the_best_evaluations_adapter(files, tmp_path):
    out = tmp_path / "early"
    args = ["--max-steps", "30", "--lr", "1.0", "--block-size", "32", "--batch-size", "4", "--eval-every", "2",
            "--lora-targets", "q_proj,v_proj,up_proj,down_proj", "--threads", "1", "--early-stop", "2"]
    code, stdout, _ = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out", out,
                               "--progress", "jsonl", *args])
    events = read_events(stdout)
    end = events[-1]
    assert code == 0 and end["status"] == "completed" and end["reason"] == "early_stop"
    assert end["step"] < 30 and end["restored_step"] == end["best_step"] < end["step"]
    evals = {e["step"]: e["val_ppl"] for e in events if e["event"] == "eval"}
    assert end["val_ppl_after"] == pytest.approx(evals[end["restored_step"]]) == pytest.approx(min(evals.values()))
    assert evals[end["step"]] > end["val_ppl_after"]
    # The adapter written is the best one: evaluating it gives the best evaluation's perplexity.
    code, text, _ = run_cli(["eval", "--model", files["model"], "--adapter", out, "--data", files["docs"],
                             "--json", "--threads", 1])
    assert code == 0 and json.loads(text)["ppl"] == pytest.approx(end["val_ppl_after"], rel=1e-4)

    # Without held-out data there is nothing to stop on: a clear failure, not a silent no-op.
    code, stdout, _ = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out",
                               tmp_path / "no-val", "--progress", "jsonl", "--val-fraction", "0", *args])
    end = read_events(stdout)[-1]
    assert code == 1 and end["status"] == "failed"
    assert "--early-stop" in end["reason"] and "--val-fraction" in end["reason"]


def test_failure_is_reported_as_failed(files, tmp_path):
    code, stdout, _ = run_cli(["train", "--model", files["model"], "--data", tmp_path / "nowhere", "--out",
                               tmp_path / "o", "--progress", "jsonl"])
    events = read_events(stdout)
    assert code == 1 and [e["event"] for e in events] == ["end"]
    assert events[0]["status"] == "failed" and "nowhere" in events[0]["reason"]

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    code, stdout, _ = run_cli(["train", "--model", broken, "--data", files["docs"], "--out", tmp_path / "o",
                               "--progress", "jsonl"])
    events = read_events(stdout)
    assert code == 1 and events[0]["event"] == "ingest" and events[-1]["status"] == "failed"
    assert "config.json" in events[-1]["reason"] and "completed" not in [e.get("status") for e in events]


def test_too_large_fails_before_training_and_dry_run_stops_after_the_estimate(files, tmp_path):
    base = ["train", "--model", files["model"], "--data", files["docs"], "--out", tmp_path / "o", "--progress",
            "jsonl", "--block-size", "128", "--threads", "1"]
    # 256 blocks of 128 tokens need ~1 GiB (framework 0.3, activations, vocabulary logits); 64 fit in 0.6.
    code, stdout, _ = run_cli(base + ["--batch-size", "256", "--max-memory", "600M"])
    events = read_events(stdout)
    assert code == 1 and "step" not in [e["event"] for e in events]
    estimate = next(e for e in events if e["event"] == "estimate")
    assert not estimate["fits"] and estimate["available_bytes"] == 600 * 1024**2
    assert estimate["memory_bytes"] > estimate["available_bytes"]
    assert events[-1]["status"] == "failed"
    hint = re.search(r"try --batch-size (\d+) \(with --grad-accum (\d+) the effective batch stays 256\)",
                     events[-1]["reason"])
    assert hint, events[-1]["reason"]

    # The suggestion fits; --dry-run stops after the estimate.
    code, stdout, _ = run_cli(base + ["--batch-size", hint[1], "--grad-accum", hint[2], "--max-memory", "600M",
                                      "--dry-run"])
    events = read_events(stdout)
    assert code == 0 and [e["event"] for e in events] == ["ingest", "dataset", "estimate", "end"]
    assert events[2]["fits"] and events[-1]["reason"] == "dry_run" and events[2]["eta_s"] > 0
    assert not (tmp_path / "o" / "checkpoints").exists()


def test_sigterm_cancels_with_a_checkpoint_that_resumes(files, tmp_path):
    out = tmp_path / "cut"
    args = ["--model", files["model"], "--data", files["docs"], "--out", out, "--max-steps", "100",
            "--block-size", "64", "--batch-size", "8", "--eval-every", "0", "--lr", "1e-2", "--threads", "1",
            "--recipe", "text"]
    proc = subprocess.Popen([sys.executable, "-m", "chatapp", "train", *map(str, args), "--progress", "jsonl"],
                            stdout=subprocess.PIPE, stderr=(tmp_path / "stderr.txt").open("w"), text=True,
                            env=child_env())
    lines = []
    for line in proc.stdout:
        lines.append(line)
        event = json.loads(line)
        if event["event"] == "step" and event["step"] == 2:
            proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    events = [json.loads(line) for line in lines]
    end = events[-1]
    assert code == 0 and end["status"] == "cancelled", (end, (tmp_path / "stderr.txt").read_text()[-2000:])
    cut = end["step"]
    assert 2 <= cut < 100 and Path(end["checkpoint"]).name == f"step-{cut:08d}"
    assert not (out / "adapter_config.json").exists()  # no outputs for an unfinished run

    code, stdout, _ = run_cli(["train", *args, "--progress", "jsonl"])  # a fresh run would mix checkpoints
    assert code == 1 and f"--resume {out}" in read_events(stdout)[-1]["reason"]

    code, stdout, _ = run_cli(["train", *args, "--resume", out, "--progress", "jsonl"])
    resumed = read_events(stdout)
    steps = {e["step"]: e["loss"] for e in resumed if e["event"] == "step"}
    assert code == 0 and resumed[-1]["status"] == "completed", resumed[-1]
    assert min(steps) == cut + 1 and max(steps) == 100
    assert (out / "adapter_config.json").is_file()

    code, stdout, _ = run_cli(["train", *args[:5], tmp_path / "whole", *args[6:], "--progress", "jsonl"])
    whole = {e["step"]: e["loss"] for e in read_events(stdout) if e["event"] == "step"}
    for step in (cut + 1, 100):
        assert steps[step] == pytest.approx(whole[step], abs=1e-6), (step, cut)


def test_chat_jsonl_trains_on_assistant_tokens(files, tmp_path):
    code, stdout, _ = run_cli(["train", "--model", files["model"], "--data", files["chat"], "--out", tmp_path / "c",
                               "--progress", "jsonl", "--max-steps", "3", "--block-size", "32", "--threads", "1"])
    events = read_events(stdout)
    assert code == 0 and events[-1]["status"] == "completed"
    assert events[0]["kind"] == "chat" and events[0]["conversations"] == 16
    dataset = events[1]
    # Only the assistant's turns count: far fewer targets than tokens in the blocks.
    assert 0 < dataset["train_tokens"] < 0.6 * dataset["train_blocks"] * 32


def test_full_fine_tuning_writes_a_folder_both_loaders_open(files, tmp_path):
    out = tmp_path / "full"
    code, stdout, _ = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out", out,
                               "--method", "full", "--max-steps", "3", "--lr", "1e-3", "--block-size", "32",
                               "--threads", "1", "--progress", "jsonl"])
    assert code == 0 and read_events(stdout)[-1]["status"] == "completed"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= \
        {p.name for p in out.iterdir()}
    transformers = pytest.importorskip("transformers")
    from chatapp.engine.loader import load_model
    ours = load_model(out, device="cpu").model
    ref = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    base = load_model(files["model"], device="cpu").model
    x = torch.randint(0, ours.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, expected, before = ours(x), ref(x).logits, base(x)
    assert (got - expected).abs().max() < 1e-4
    assert (got - before).abs().max() > 1e-3  # it did train


def test_scratch_trains_a_tokenizer_and_a_model_that_generates(files, tmp_path):
    out = tmp_path / "scratch"
    code, stdout, _ = run_cli(["train", "--method", "scratch", "--size", "tiny", "--vocab-size", "300", "--data",
                               files["docs"], "--out", out, "--max-steps", "20", "--block-size", "32",
                               "--batch-size", "8", "--eval-every", "0", "--threads", "1", "--progress", "jsonl"])
    events = read_events(stdout)
    end = events[-1]
    assert code == 0 and end["status"] == "completed"
    assert end["val_ppl_after"] < 0.5 * end["val_ppl_before"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= \
        {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] <= 300 and config["hidden_size"] == 128
    code, text, _ = run_cli(["generate", "--model", out, "--prompt", "the cat", "--temperature", "0",
                             "--max-new-tokens", "8", "--json", "--threads", "1"])
    reply = json.loads(text)
    assert code == 0 and reply["new_tokens"] >= 1 and isinstance(reply["text"], str)


def test_export_merges_an_adapter(files, lora_run, tmp_path):
    _, _, adapter = lora_run
    code, text, _ = run_cli(["export", "--model", files["model"], "--adapter", adapter, "--out", tmp_path / "m"])
    assert code == 0 and "exported" in text
    from chatapp.engine.loader import load_model
    merged = load_model(tmp_path / "m", device="cpu").model
    adapted = load_model(files["model"], device="cpu", adapter=adapter).model
    x = torch.randint(0, merged.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (merged(x) - adapted(x)).abs().max() < 1e-4


def test_without_progress_lines_are_readable(files, tmp_path):
    code, stdout, stderr = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out",
                                    tmp_path / "t", "--max-steps", "3", "--block-size", "32", "--eval-every", "0",
                                    "--threads", "1"])
    assert code == 0
    assert "data: 12 files used" in stderr and "estimate: " in stderr
    assert re.search(r"step 3/3  loss \d+\.\d{4}  lr ", stderr)
    assert re.fullmatch(r"completed; validation perplexity [\d.]+ -> [\d.]+; output in .*\n", stdout)
    code, _, stderr = run_cli(["train", "--model", files["model"], "--data", tmp_path / "none", "--out",
                               tmp_path / "t2"])
    assert code == 1 and "failed: " in stderr and "none" in stderr


@pytest.mark.parametrize("has_bf16,argv,expected", [(True, [], True), (True, ["--no-bf16"], False),
                                                    (False, [], False)])
def test_lora_on_a_cpu_with_bf16_products_trains_under_bf16_autocast(files, tmp_path, monkeypatch, has_bf16, argv,
                                                                      expected):
    import chatapp.training.run as run_module

    monkeypatch.setattr(run_module, "cpu_has_bf16", lambda: has_bf16)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(["train", "--model", files["model"], "--data", files["docs"], "--out", out,
                               "--max-steps", 2, "--block-size", 32, "--eval-every", 0, "--threads", 1, *argv])
    assert code == 0, stdout
    from chatapp.weights.peft_adapter import read_adapter_info
    assert read_adapter_info(out).metadata["train_config"]["cpu_bf16"] is expected
