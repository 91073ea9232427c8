"""`chatapp quiz --docs`: the quiz asks through chat with documents' own retrieval and prompt
(engine.retrieval.send_with_documents): the same passages, format and context fitting."""

from __future__ import annotations

import pytest

from chatapp.commands.quiz import open_docs
from chatapp.engine.retrieval import send_with_documents
from chatapp.engine.sampling import SamplingSettings
from chatapp.engine.session import ChatSession
from chatapp.training.quiz import QuizQuestion, run_quiz

from training.test_quiz import ScriptedEngine, WordTokenizer


def write_docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guild.md").write_text("# Guild\n\nThe Harbour Guild was founded by Mira Castell in 1874.\n")
    (folder / "boats.md").write_text("# Boats\n\nThe fleet had eleven trawlers painted green.\n")
    return folder


def test_quiz_with_docs_sees_the_prompt_chat_with_documents_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = write_docs(tmp_path)
    engine = ScriptedEngine(WordTokenizer(), {"Mira Castell in 1874": "Mira Castell founded it."})
    retriever = open_docs([str(folder)])
    try:
        result = run_quiz(engine, [QuizQuestion("Who founded the Harbour Guild?", ["Mira Castell"])],
                          retriever=retriever)
        quiz_prompt = engine.prompts[-1]
        chat = send_with_documents(ChatSession(engine), "Who founded the Harbour Guild?",
                                   SamplingSettings(temperature=0.0, max_new_tokens=80), retriever)
        assert chat.result.sources[0].path.endswith("guild.md")
        "".join(chat)
    finally:
        retriever.close()
    assert result.score == 1 and result.items[0].context_chars > 0
    assert quiz_prompt == engine.prompts[-1]  # the very prompt chat with documents sends
    assert "Mira Castell" in quiz_prompt and quiz_prompt.index("Who founded") < quiz_prompt.index("1874") < quiz_prompt.rindex("Who founded")
    two = open_docs([str(folder / "guild.md"), str(folder / "boats.md")])
    try:
        assert "trawlers" in two.search("How many trawlers had the fleet?", 1)[0].text
    finally:
        two.close()


def test_docs_that_are_neither_library_nor_path_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(LookupError, match="no library of that name"):
        open_docs(["no-such-library"])
    with pytest.raises(LookupError, match="no such file"):
        open_docs([str(tmp_path), str(tmp_path / "missing")])
