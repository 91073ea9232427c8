"""What a passage highlights: the question's words, in English and in Chinese."""

from __future__ import annotations

from chatapp.ui.sources_view import matching_spans, query_terms


def test_terms_drop_stop_words_and_short_words():
    assert query_terms("Who founded the Guild, and when was it founded?") == ["founded", "guild"]


def test_spans_start_at_a_word_are_case_insensitive_and_in_order():
    text = "The Guild was founded; guilds unfounded more. Founded!"
    spans = matching_spans(text, "who founded the guild")
    # "guilds" holds the word (a plural still shows why it matched); "unfounded" does not start with it
    assert [text[a:b] for a, b in spans] == ["Guild", "founded", "guild", "Founded"]
    assert spans == sorted(spans)


def test_chinese_text_matches_by_two_character_pieces():
    text = "灯笼行会由艾达于1852年创立。"
    spans = matching_spans(text, "行会是谁创立的？")
    assert [text[a:b] for a, b in spans] == ["行会", "创立"]


def test_no_terms_no_spans():
    assert matching_spans("anything at all", "is it?") == []
