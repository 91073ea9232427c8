"""`chatapp quiz --docs`: passages come from the real document retrieval (no second search)."""

from __future__ import annotations

import pytest

from chatapp.commands.quiz import docs_context


def test_docs_path_retrieves_the_passage_with_the_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guild.md").write_text("# Guild\n\nThe Harbour Guild was founded by Mira Castell in 1874.\n")
    (folder / "boats.md").write_text("# Boats\n\nThe fleet had eleven trawlers painted green.\n")
    lookup, close = docs_context([str(folder)])
    try:
        text = lookup("Who founded the Harbour Guild?")
        assert text.startswith("[1] ") and "Mira Castell" in text.split("[2]")[0]
        assert "(source: guild.md)" in text
    finally:
        close()
    two, close = docs_context([str(folder / "guild.md"), str(folder / "boats.md")])
    try:
        assert "trawlers" in two("How many trawlers had the fleet?").split("[2]")[0]
    finally:
        close()


def test_docs_that_are_neither_library_nor_path_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(LookupError, match="no library of that name"):
        docs_context(["no-such-library"])
    with pytest.raises(LookupError, match="no such file"):
        docs_context([str(tmp_path), str(tmp_path / "missing")])
