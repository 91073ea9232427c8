"""User errors on the command line end in one line naming the option or file, before any model
is loaded or any training runs: never a traceback, never a late failure."""

from __future__ import annotations

import time

import pytest

from chatapp.cli import main


@pytest.mark.parametrize("argv, words", [
    (["generate", "--prompt", ""], "argument --prompt: must not be empty"),
    (["generate", "--prompt", "   "], "argument --prompt: must not be empty"),
    (["generate", "--prompt", "hi", "--context", "-5"], "argument --context: must be a positive whole number"),
    (["generate", "--prompt", "hi", "--context", "99999999999"], "argument --context: must be a positive"),
    (["generate", "--prompt", "hi", "--threads", "-3"], "argument --threads: must be 0 or a positive whole number"),
    (["generate", "--prompt", "hi", "--max-new-tokens", "0"], "argument --max-new-tokens: must be a positive"),
    (["generate", "--prompt", "hi", "--temperature", "nan"], "argument --temperature: must be a finite number"),
    (["generate", "--prompt", "hi", "--top-k", "many"], "argument --top-k: must be 0 or a positive whole number"),
    (["generate", "--prompt", "hi", "--seed", str(2**70)], "argument --seed: must be a whole number that fits"),
    (["generate", "--prompt", "hi", "--json", "--logprobs", "-1"], "argument --logprobs: must be 0 or a positive whole number up to 20, got '-1'"),
    (["generate", "--prompt", "hi", "--json", "--logprobs", str(10**9)], "argument --logprobs: must be 0 or a positive whole number up to 20"),
    (["generate", "--prompt", "hi", "--json", "--logprobs", "9" * 5000], "argument --logprobs: must be 0 or a positive whole number up to 20"),
    (["generate", "--prompt", "hi", "--json", "--logprobs", "1e3"], "argument --logprobs: must be 0 or"),
    (["chat", "--context", "0"], "argument --context"),
    (["library", "search", "docs", "apples", "--limit", "-1"], "argument --limit: must be a positive whole number up to 100"),
    (["library", "search", "docs", "apples", "--limit", str(10**9)], "argument --limit: must be a positive"),
    (["train", "--data", "x", "--out", "y", "--threads", "-3"], "argument --threads"),
])
def test_bad_options_are_one_usage_line(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_logprobs_without_json_fails_before_the_model_loads(capsys):
    assert main(["generate", "--prompt", "hi", "--logprobs", "3", "--model", "/nonexistent/model.gguf"]) == 1
    err = capsys.readouterr().err
    assert err == "error: --logprobs needs --json (and is not available with --docs)\n"  # not the missing model


def test_train_out_pointing_at_a_file_fails_before_training(tmp_path, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("Some text to train on. " * 20)
    out = tmp_path / "result"
    out.write_text("not a folder")
    start = time.monotonic()
    assert main(["train", "--data", str(doc), "--out", str(out), "--max-steps", "1000"]) == 1
    err = capsys.readouterr().err
    assert f"--out {out} is a file, not a folder" in err and "Traceback" not in err
    assert time.monotonic() - start < 30 and out.read_text() == "not a folder"


def test_train_out_below_a_file_fails_before_training(tmp_path, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("Some text. " * 20)
    (tmp_path / "file").write_text("x")
    assert main(["train", "--data", str(doc), "--out", str(tmp_path / "file" / "sub")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
