"""The best-matching sentence that chat with documents repeats before the question."""

from chatapp.engine.relevant import most_relevant_sentence, sentences, words
from chatapp.engine.retrieval import Source, with_passages


def test_the_sentence_holding_the_answer_is_picked_over_the_passage_start():
    passages = ["The company began in a boathouse in 1958. It made ship lenses.",
                "In 1999 Petra Lindqvist took over from Edda Halvorsen as head of the company."]
    question = "Who took over from Edda Halvorsen as head of the company?"
    assert most_relevant_sentence(question, passages) == passages[1]


def test_a_rare_shared_word_outweighs_a_common_one():
    passages = ["Halvorsen grew. Halvorsen hired. Halvorsen moved.", "The architect Ines Brekke drew the factory."]
    assert most_relevant_sentence("Which architect did Halvorsen hire?", passages) == \
        "The architect Ines Brekke drew the factory."


def test_words_match_on_their_first_letters_and_function_words_do_not_count():
    assert words("Who founded the guild?") == {"found", "guild"}
    assert most_relevant_sentence("Who was the founder?", ["It rained. The guild was founded by Orla."]) == \
        "The guild was founded by Orla."
    assert most_relevant_sentence("What is it?", ["The cat sat."]) == ""  # nothing shared: no line
    assert most_relevant_sentence("cat?", []) == ""


def test_sentences_end_at_stops_followed_by_space():
    assert sentences("One. Two! Three? 3.5 stays. ") == ["One.", "Two!", "Three?", "3.5 stays."]


def test_the_prompt_repeats_the_best_sentence_before_the_question():
    sources = [Source(1, "/d/a.md", "", 0, 60, "The lens shop opened. Orla Membrane founded the guild.")]
    assert with_passages("Who founded the guild?", sources) == (
        "Question: Who founded the guild?\n\nAnswer the question using the text below.\n\n"
        "The lens shop opened. Orla Membrane founded the guild.\n\n"
        "Most relevant: Orla Membrane founded the guild.\n\nQuestion: Who founded the guild?")
