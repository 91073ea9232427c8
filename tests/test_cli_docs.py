"""`chatapp generate --docs` and `chatapp chat --docs` on a tiny model: sources out, prompt within the context."""

from __future__ import annotations

import io
import json

import pytest

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.cli import build_parser, main  # noqa: E402
from chatapp.commands.generate import cmd_chat  # noqa: E402
from chatapp.documents.library import LibraryStore  # noqa: E402

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_llama_folder(tmp_path_factory.mktemp("docs") / "model", max_len=512)


@pytest.fixture
def docs(tmp_path, monkeypatch, platformdirs_isolated):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "cats.md").write_text("# Cats\n\nthe cat sat on the warm mat.", encoding="utf-8")
    (folder / "dogs.txt").write_text("a dog ran to the old red barn.", encoding="utf-8")
    return folder


def generate(capsys, model, docs_spec, *extra):
    code = main(["generate", "--model", str(model), "--prompt", "where did the cat sit?", "--temperature", "0",
                 "--max-new-tokens", "8", "--threads", "1", "--context", "512", "--docs", docs_spec, *extra])
    return code, *capsys.readouterr()


def test_generate_with_a_path_lists_sources_in_json(model, docs, capsys):
    code, out, err = generate(capsys, model, str(docs), "--json")
    assert code == 0, err
    result = json.loads(out)
    documents = result["documents"]
    assert documents["sources"][0]["path"] == str((docs / "cats.md").resolve())
    assert documents["sources"][0]["heading"] == "Cats"
    assert documents["sources"][0]["text"] == "# Cats\n\nthe cat sat on the warm mat."
    assert "below.\n\nthe cat sat on the warm mat.\n\nMost relevant: the cat sat on the warm mat.\n\nQuestion: " \
        in documents["prompt"]  # heading lines stay out
    assert result["prompt_tokens"] == documents["prompt_tokens"] <= 512 - 8


def test_generate_with_a_named_library_and_text_output(model, docs, capsys):
    with LibraryStore() as store:  # the user data dir of this test
        store.add("pets", [docs])
        store.index("pets")
    code, out, err = generate(capsys, model, "pets")
    assert code == 0, err
    assert f"[1] {(docs / 'cats.md').resolve()} > Cats [0:" in out


def test_a_small_context_leaves_passages_out_and_says_so(model, docs, capsys):
    (docs / "long.txt").write_text(" ".join(["the cat sat on the warm mat."] * 200), encoding="utf-8")
    code, out, err = generate(capsys, model, str(docs), "--json", "--context", "200", "--docs-passages", "8")
    assert code == 0, err
    documents = json.loads(out)["documents"]
    assert documents["left_out"] >= 1 and "did not fit the context" in documents["notice"]
    assert documents["prompt_tokens"] <= 200 - 8


def test_docs_passages_limits_the_sources(model, docs, capsys):
    code, out, err = generate(capsys, model, str(docs), "--json", "--docs-passages", "1")
    assert code == 0, err
    assert len(json.loads(out)["documents"]["sources"]) == 1
    code, _, err = generate(capsys, model, str(docs), "--docs-passages", "0")
    assert code == 1 and "at least 1" in err


def test_unknown_docs_is_one_error_line(model, docs, capsys):
    code, out, err = generate(capsys, model, "no-such-library")
    assert code == 1 and err.strip() == ("error: --docs 'no-such-library': no library of that name and no "
                                         "such file or folder")


def test_chat_with_docs_prints_sources_after_each_reply(model, docs):
    args = build_parser().parse_args(["chat", "--model", str(model), "--temperature", "0", "--threads", "1",
                                      "--context", "512", "--max-new-tokens", "6", "--docs", str(docs)])
    out = io.StringIO()
    feed = iter(["where did the cat sit?", "and the dog?", "/exit"])
    assert cmd_chat(args, input_fn=lambda _prompt: next(feed), out=out) == 0
    lines = out.getvalue().splitlines()
    assert sum(1 for line in lines if line.startswith("[1] ")) == 2
    assert any(line.startswith("[1] ") and "cats.md > Cats" in line for line in lines)
    assert any(line.startswith("[1] ") and "dogs.txt" in line for line in lines)
