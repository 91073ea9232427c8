"""Retrieval into prompts on a mock model: the budget, the sources, the exact prompt."""

from __future__ import annotations

import pytest

from chatapp.documents.library import LibraryStore, SearchHit
from chatapp.engine.generate import Engine
from chatapp.engine.retrieval import (
    LibraryRetriever,
    INSTRUCTION,
    build_query,
    open_documents,
    retrieve,
    search_turn,
    send_with_documents,
    with_passages,
)
from chatapp.engine.sampling import SamplingSettings
from chatapp.engine.session import ChatSession

from mock_models import ContextModel

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=16)


class ListRetriever:
    def __init__(self, hits):
        self.hits = hits
        self.queries = []

    def search(self, query, limit):
        self.queries.append(query)
        return self.hits[:limit]


def hit(i, length, heading="Part"):
    text = (f"passage {i} " + "x" * length)[:length]
    return SearchHit(i, f"/docs/file{i}.md", heading, 10 * i, 10 * i + length, text, 1.0 / (i + 1))


def session_for(tokenizer, context):
    model = ContextModel(max_seq_len=context, reply_len=6)
    return model, ChatSession(Engine(model, tokenizer), system_prompt="be brief")


@pytest.mark.parametrize("context", [160, 300, 700, 1500])
def test_the_prompt_never_exceeds_the_context(byte_tokenizer, context):
    model, session = session_for(byte_tokenizer, context)
    hits = [hit(i, length) for i, length in enumerate((400, 120, 60, 200, 30, 90, 10, 500))]
    reply = send_with_documents(session, "What does passage say?", GREEDY, ListRetriever(hits), limit=len(hits))
    result = reply.result
    text = "".join(reply)
    reserve = min(GREEDY.max_new_tokens, context // 4)
    assert result.prompt_tokens + reserve <= context
    assert result.prompt_tokens == len(byte_tokenizer.encode(result.prompt))
    assert len(result.sources) + result.left_out == len(hits)
    assert [s.number for s in result.sources] == list(range(1, len(result.sources) + 1))
    # Best first among those that fit: the order of the ranking is kept.
    ranks = [int(s.text.split()[1]) for s in result.sources]
    assert ranks == sorted(ranks)
    # What the model saw is the prompt reported, byte for byte.
    fed = bytes(model.cache[p] for p in range(result.prompt_tokens)).decode("utf-8")
    assert fed == result.prompt
    assert text == session.messages[-1]["content"]
    if context >= 700:
        assert result.sources and result.left_out  # some fit, some do not
        assert f"\n\npassage {ranks[0]} " in result.prompt  # best first, each a paragraph of its own
        assert "source:" not in result.prompt and "[1]" not in result.prompt  # sources go with the reply
        assert "did not fit the context" in result.notice
    if context == 160:
        assert result.sources == [] or all(len(s.text) <= 30 for s in result.sources)


def test_sources_carry_file_heading_span_and_the_history_keeps_the_question(byte_tokenizer):
    _model, session = session_for(byte_tokenizer, 1000)
    hits = [hit(1, 50, heading="Guild > Founding"), hit(2, 40, heading="")]
    reply = send_with_documents(session, "Who founded it?", GREEDY, ListRetriever(hits))
    "".join(reply)
    first = reply.result.sources[0]
    assert (first.path, first.heading, first.start, first.end) == ("/docs/file1.md", "Guild > Founding", 10, 60)
    assert first.label == "file1.md > Guild > Founding"
    assert reply.result.sources[1].label == "file2.md"
    assert reply.result.left_out == 0 and reply.result.notice == ""
    assert session.messages[0] == {"role": "user", "content": "Who founded it?"}
    assert INSTRUCTION in reply.result.prompt and "Question: Who founded it?" in reply.result.prompt
    as_dict = reply.result.to_dict()
    assert as_dict["sources"][0]["heading"] == "Guild > Founding" and as_dict["prompt"] == reply.result.prompt


def test_a_long_conversation_makes_room_for_passages(byte_tokenizer):
    _model, session = session_for(byte_tokenizer, 400)
    session.messages = [{"role": "user", "content": "q" * 100}, {"role": "assistant", "content": "a" * 100},
                        {"role": "user", "content": "r" * 100}, {"role": "assistant", "content": "b" * 60}]
    retriever = ListRetriever([hit(1, 150)])
    reply = send_with_documents(session, "and the rest?", GREEDY, retriever)
    "".join(reply)
    assert len(reply.result.sources) == 1
    assert reply.result.prompt_tokens + GREEDY.max_new_tokens <= 400
    assert session.dropped_messages >= 2  # old turns gave way to the passage
    # the message alone, then with the recent turns (search_turn fuses the two rankings)
    assert retriever.queries[0] == "and the rest?"
    assert retriever.queries[1].startswith("and the rest?\n" + "b" * 60)


def test_query_is_the_message_then_recent_turns():
    messages = [{"role": "user", "content": "old"}, {"role": "assistant", "content": "one"},
                {"role": "user", "content": "who founded the guild?"}, {"role": "assistant", "content": "Orla."},
                {"role": "user", "content": "and when?"}]
    assert build_query(messages) == "and when?\nOrla.\nwho founded the guild?"
    assert build_query(messages, recent=0) == "and when?"
    assert len(build_query([{"role": "user", "content": "w" * 5000}])) == 2000
    with pytest.raises(ValueError):
        build_query([])


def test_no_passages_no_change():
    assert with_passages("hi", []) == "hi"


def test_retrieve_needs_a_user_turn(byte_tokenizer):
    _model, session = session_for(byte_tokenizer, 300)
    with pytest.raises(ValueError, match="user message"):
        retrieve(session, ListRetriever([]), reserve=10)


def test_open_documents_by_name_or_path(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guild.md").write_text("# Guild\n\nThe guild was founded by Orla Membrane.", encoding="utf-8")
    db = tmp_path / "library.sqlite3"
    with LibraryStore(db) as store:
        store.add("notes", [docs])
        store.index("notes")
    named = open_documents("notes", db)
    assert named.name == "notes" and named.owned_folder is None
    assert "Orla" in named.search("who founded the guild", 3)[0].text
    named.close()

    temporary = open_documents(str(docs / "guild.md"), db)
    folder = temporary.owned_folder.name
    assert "Orla" in temporary.search("founded", 3)[0].text
    temporary.close()
    assert not (tmp_path / folder).exists()
    with LibraryStore(db) as store:
        assert store.names() == ["notes"]  # the path did not become a named library

    with pytest.raises(LookupError, match="no library of that name and no such file"):
        open_documents(str(tmp_path / "nothing"), db)


def test_passages_leave_markdown_heading_lines_out_of_the_prompt():
    from chatapp.engine.retrieval import Source, passage_text

    assert passage_text("# Founding\n\nEdda began it.\n\n## Later\n\nMore.") == "Edda began it. More."
    assert passage_text("# Only a heading") == "# Only a heading"  # nothing else: kept as it is
    assert passage_text("#hashtag is text\nok") == "#hashtag is text ok"
    sources = [Source(1, "/d/a.md", "Founding", 0, 30, "# Founding\n\nEdda began it.")]
    assert with_passages("Who began it?", sources) == (
        "Question: Who began it?\n\nAnswer the question using the text below.\n\nEdda began it.\n\n"
        "Most relevant: Edda began it.\n\nQuestion: Who began it?")
    wrapped = Source(2, "/d/b.md", "", 0, 40, "Edda began it\nin a boathouse.\n\nThen more.")
    assert with_passages("When?", [wrapped, sources[0]]).split("\n\n")[2:4] == [
        "Edda began it in a boathouse. Then more.", "Edda began it."]  # one line each, in rank order


def test_a_follow_up_finds_its_own_subject_before_the_earlier_turns(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("The cat sat on the warm mat by the fire.", encoding="utf-8")
    (docs / "dogs.md").write_text("The dog slept in the garden shed.", encoding="utf-8")
    with LibraryStore(tmp_path / "library.sqlite3") as store:
        store.add("pets", [docs])
        store.index("pets")
        retriever = LibraryRetriever(store, "pets")
        conversation = [{"role": "user", "content": "where did the cat sit on the mat?"},
                        {"role": "assistant", "content": "The cat sat on the warm mat."},
                        {"role": "user", "content": "and the dog?"}]
        query, hits = search_turn(retriever, conversation, 2)
        # the turns together name the cat three times and the dog once: alone they rank the cat first
        assert store.search("pets", query, limit=2)[0].path.endswith("cats.md")
        assert hits[0].path.endswith("dogs.md") and hits[1].path.endswith("cats.md")
        # a first question is searched once, as it is
        first, first_hits = search_turn(retriever, conversation[:1], 2)
        assert first == conversation[0]["content"] and first_hits[0].path.endswith("cats.md")


def test_by_default_the_best_passage_is_last_nearest_the_question_and_numbered_first(byte_tokenizer):
    _model, session = session_for(byte_tokenizer, 1000)
    hits = [hit(1, 50), hit(2, 40), hit(3, 30)]
    reply = send_with_documents(session, "Who founded it?", GREEDY, ListRetriever(hits))
    "".join(reply)
    prompt = reply.result.prompt
    assert prompt.index("passage 3") < prompt.index("passage 2") < prompt.index("passage 1") \
        < prompt.rindex("Question: Who founded it?")
    assert [s.number for s in reply.result.sources] == [1, 2, 3]
    assert reply.result.sources[0].text.startswith("passage 1")


def test_a_draft_is_searched_but_never_enters_the_prompt(byte_tokenizer):
    from chatapp.engine.retrieval import RetrievalOptions

    model, session = session_for(byte_tokenizer, 1000)
    retriever = ListRetriever([hit(1, 50), hit(2, 40)])
    options = RetrievalOptions(draft_tokens=5)
    reply = send_with_documents(session, "Who founded it?", GREEDY, retriever, options=options)
    text = "".join(reply)
    result = reply.result
    assert result.draft and len(byte_tokenizer.encode(result.draft)) <= 5  # bounded by draft_tokens
    assert retriever.queries[-1] == "Who founded it?\n" + result.draft  # its words searched with the question
    assert result.draft not in result.prompt
    assert result.to_dict()["draft"] == result.draft and result.draft_seconds >= 0
    assert session.messages == [{"role": "user", "content": "Who founded it?"}, {"role": "assistant", "content": text}]
