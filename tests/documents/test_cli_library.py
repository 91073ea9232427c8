"""`chatapp library add|update|list|remove|search` end to end, in isolated user dirs."""

from __future__ import annotations

import json

import pytest

from chatapp.cli import main


@pytest.fixture
def docs(tmp_path, monkeypatch, platformdirs_isolated):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guild.md").write_text("# Guild\n\nThe guild was founded by Orla Membrane.", encoding="utf-8")
    (folder / "boats.txt").write_text("Boats are painted blue every spring.", encoding="utf-8")
    return folder


def run(capsys, *argv):
    code = main(["library", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_search_list_remove(docs, capsys):
    code, out, err = run(capsys, "add", "notes", str(docs), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["indexed"] == 2 and report["problems"] == []
    assert "indexing 2/2" in err

    code, out, _ = run(capsys, "search", "notes", "who founded the guild", "--json")
    assert code == 0
    results = json.loads(out)["results"]
    assert results[0]["path"] == str((docs / "guild.md").resolve())
    assert results[0]["heading"] == "Guild"
    text = (docs / "guild.md").read_text(encoding="utf-8")
    assert text[results[0]["start"]:results[0]["end"]] == results[0]["text"]

    code, out, _ = run(capsys, "search", "notes", "painted boats")
    assert code == 0 and out.startswith("[1] ") and "boats.txt" in out and "painted blue" in out

    (docs / "boats.txt").unlink()
    code, out, _ = run(capsys, "update", "notes")
    assert code == 0 and "0 indexed, 1 unchanged, 0 skipped, 1 removed" in out

    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == [{"name": "notes", "paths": [str(docs.resolve())], "files": 1,
                                "chunks": 1, "chars": len(text), "embedding_model": None, "vectors": 0}]

    code, out, _ = run(capsys, "remove", "notes")
    assert code == 0
    code, out, _ = run(capsys, "list")
    assert "no libraries yet" in out


def test_errors_are_one_line(docs, capsys):
    code, _, err = run(capsys, "search", "missing", "x")
    assert code == 1 and err.strip() == "error: no library named 'missing' (libraries: none yet)"
    code, _, err = run(capsys, "add", "x", str(docs / "nope"))
    assert code == 1 and err.startswith("error: ") and "no such file or folder" in err


def test_embedding_model_add_list_search_json(docs, capsys, tmp_path):
    import re

    from helpers.static_embeddings import synonym_model

    words = {w for p in docs.iterdir() for w in re.findall(r"\w+", p.read_text(encoding="utf-8").lower())}
    model = synonym_model(tmp_path / "model", [("founded", "established"), ("guild", "society")], sorted(words))
    code, out, err = run(capsys, "add", "notes", str(docs), "--embedding-model", str(model), "--json")
    assert code == 0 and json.loads(out)["embedded"] == 2 and "embedding passages 2/2" in err

    code, out, _ = run(capsys, "list", "--json")
    (info,) = json.loads(out)
    assert info["embedding_model"] == str(model.resolve()) and info["vectors"] == 2
    code, out, _ = run(capsys, "list")
    assert f"embedding model: {model.resolve()} (2 of 2 passages embedded)" in out

    code, out, _ = run(capsys, "search", "notes", "Who established the society?", "--json")
    (first, *_rest) = json.loads(out)["results"]
    assert first["path"].endswith("guild.md")
    assert (first["bm25_rank"], first["dense_rank"], first["score"]) == (None, 1, round(1 / 61, 6))
    code, out, _ = run(capsys, "search", "notes", "painted boats")
    assert out.startswith("[1] ") and "boats.txt" in out and "(words #1, meaning #1)" in out

    code, out, _ = run(capsys, "update", "notes", "--no-embedding-model", "--json")
    code, out, _ = run(capsys, "search", "notes", "Who established the society?", "--json")
    assert code == 0 and json.loads(out)["results"] == []


def test_a_wrong_embedding_folder_is_one_error_and_makes_no_library(docs, capsys, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    code, out, err = run(capsys, "add", "notes", str(docs), "--embedding-model", str(tmp_path / "not-a-model"))
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "config.json is missing" in err
    code, out, _ = run(capsys, "list")
    assert "no libraries yet" in out
