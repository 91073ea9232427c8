"""`chatapp generate --json --logprobs K` on a tiny model: the OpenAI-shaped per-token list."""

from __future__ import annotations

import json

import pytest

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.cli import main  # noqa: E402

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_llama_folder(tmp_path_factory.mktemp("logprobs") / "model")


def run(capsys, model, *extra):
    code = main(["generate", "--model", str(model), "--prompt", "the cat", "--temperature", "0",
                 "--max-new-tokens", "6", "--threads", "1", *extra])
    return code, *capsys.readouterr()


@pytest.mark.parametrize("chat", [False, True])
def test_generate_json_logprobs_lists_each_new_token_with_its_top_k(model, capsys, chat):
    code, out, err = run(capsys, model, "--json", "--logprobs", "3", *(["--chat"] if chat else []))
    assert code == 0, err
    result = json.loads(out)
    entries = result["logprobs"]
    assert [e["id"] for e in entries] == result["token_ids"] and len(entries) == result["new_tokens"]
    for entry in entries:
        assert set(entry) == {"token", "bytes", "id", "logprob", "top"}
        assert len(entry["top"]) == 3 and entry["top"][0]["id"] == entry["id"]  # greedy: the best one
        assert entry["logprob"] == entry["top"][0]["logprob"] <= 0.0
        assert [t["logprob"] for t in entry["top"]] == sorted((t["logprob"] for t in entry["top"]), reverse=True)
        assert all(isinstance(b, int) and 0 <= b < 256 for b in entry["bytes"])
        assert set(entry["top"][0]) == {"token", "bytes", "id", "logprob"}
    special = {e["id"] for e in entries if e["token"].startswith("<")}
    text = "".join(e["token"] for e in entries if e["id"] not in special)
    assert text.replace("\ufffd", "") == result["text"].replace("\ufffd", "") or not result["text"]


def test_logprobs_off_adds_nothing_and_needs_json(model, capsys):
    code, out, _ = run(capsys, model, "--json")
    assert code == 0 and "logprobs" not in json.loads(out)
    code, _out, err = run(capsys, model, "--logprobs", "2")
    assert code == 1 and "--logprobs needs --json" in err
