"""engine.retrieval.fit_passages: the one passage-fitting function of the chat session and the
API server (chatapp/server/jobs.py), on a token count that is the characters of the prompt."""

from __future__ import annotations

from chatapp.documents.library import SearchHit
from chatapp.engine.retrieval import fit_passages, with_passages


def hit(i: int, length: int) -> SearchHit:
    text = (f"passage {i} " + "x" * length)[:length]
    return SearchHit(i, f"/docs/file{i}.md", "", 0, length, text, 1.0)


def chars(messages: list[dict]) -> int:
    return sum(len(m["content"]) for m in messages)


CONVERSATION = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello " * 40},
                {"role": "assistant", "content": "hi"}, {"role": "system", "content": "cite sources"},
                {"role": "user", "content": "where did the cat sit?"}]


def test_best_first_skipping_one_too_long_and_keeping_every_turn_in_place():
    hits = [hit(1, 60), hit(2, 400), hit(3, 50)]
    budget = chars(CONVERSATION) + len(with_passages("where did the cat sit?", [])) + 200
    messages, chosen = fit_passages(CONVERSATION, hits, budget, chars)
    assert [s.text for s in chosen] == [hits[0].text, hits[2].text]  # the 400 did not fit, the 50 after it did
    assert [s.number for s in chosen] == [1, 2]
    assert messages[:-1] == CONVERSATION[:-1]  # system turns where the client put them
    assert messages[-1] == {"role": "user", "content": with_passages("where did the cat sit?", chosen)}
    assert chars(messages) <= budget
    assert CONVERSATION[-1]["content"] == "where did the cat sit?"  # the caller's list is not changed


def test_without_drop_history_no_room_means_no_passages():
    """The server's way: the request's turns are all sent, so passages only go in beside them."""
    hits = [hit(1, 60)]
    budget = chars(CONVERSATION) + 100  # the whole request leaves no room for the passage
    messages, chosen = fit_passages(CONVERSATION, hits, budget, chars)
    assert chosen == [] and messages[:-1] == CONVERSATION[:-1]


def test_with_drop_history_the_room_is_counted_against_the_last_turn():
    """The chat session's way: it drops the oldest turns itself, so the passages are fitted to
    the last turn alone when the history leaves no room."""
    hits = [hit(1, 60)]
    budget = chars(CONVERSATION) + 100
    messages, chosen = fit_passages(CONVERSATION, hits, budget, chars, drop_history=True)
    assert [s.text for s in chosen] == [hits[0].text]
    assert messages[:-1] == CONVERSATION[:-1]  # the history stays: the session's own fit drops it
    assert chars(messages[-1:]) <= budget < chars(messages)


def test_the_last_turn_keeps_its_images_beside_the_passages():
    """A question asked about an image, with documents on: the passages go before the question
    and the turn's images stay on it (the server and the window send them in the message)."""
    image = b"\x89PNG fake bytes"
    turn = {"role": "user", "content": "what does the chart show?", "images": [image]}
    messages, chosen = fit_passages([turn], [hit(1, 60)], 10_000, chars)
    assert chosen and messages[-1]["images"] == [image]
    assert messages[-1]["content"] == with_passages("what does the chart show?", chosen)


def test_best_last_puts_the_best_passage_nearest_the_question_and_numbers_stay_best_first():
    hits = [hit(1, 60), hit(2, 400), hit(3, 50), hit(4, 40)]
    budget = chars(CONVERSATION) + len(with_passages("where did the cat sit?", [])) + 300
    _messages, best_first = fit_passages(CONVERSATION, hits, budget, chars, best_last=False)
    messages, chosen = fit_passages(CONVERSATION, hits, budget, chars, best_last=True)
    # the same passages fit (best first), numbered best first, shown worst first: the best next to the question
    assert [s.text for s in best_first] == [hits[0].text, hits[2].text, hits[3].text]  # the 400 does not fit
    assert chosen == best_first and [s.number for s in chosen] == [1, 2, 3]
    content = messages[-1]["content"]
    assert content == with_passages("where did the cat sit?", chosen[::-1])
    assert content.index("passage 4") < content.index("passage 3") < content.index("passage 1")
    assert chars(messages) <= budget
