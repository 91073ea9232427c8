"""The quiz: answer matching (variants that count, near misses that do not), question files,
and a run over a scripted engine."""

from __future__ import annotations

import json

import pytest

from chatapp.training.quiz import QuizError, QuizQuestion, matched_answer, normalize, read_questions, run_quiz


@pytest.mark.parametrize("reply, answers, expected", [
    ("It was founded by EDDA HALVORSEN.", ["Edda Halvorsen"], "Edda Halvorsen"),
    ("edda  halvorsen, a glass grinder", ["Edda Halvorsen"], "Edda Halvorsen"),
    ("The coast guard ordered 1,200 binoculars.", ["1200"], "1200"),
    ("They ordered 1200 more.", ["1,200"], "1,200"),
    ("The company has forty employees", ["40"], "40"),
    ("about forty-two people", ["42"], "42"),
    ("It employs 450 people.", ["four hundred and fifty", "450"], "450"),
    ("The fishermen's cooperative lent it.", ["fishermen cooperative"], "fishermen cooperative"),
    ("In Brekke.", ["Varnholm", "Brekke"], "Brekke"),
    ("a loan of 2.5 million kroner", ["2.5 million"], "2.5 million"),
    ("Ｔｓｕｍｕｒａ made cameras", ["Tsumura"], "Tsumura"),  # full-width letters
])
def test_accepted_answer_variants_match(reply, answers, expected):
    assert matched_answer(reply, answers) == expected


@pytest.mark.parametrize("reply, answers", [
    ("Mikkel Dahlberg runs it.", ["Dahl"]),  # a longer name is not the answer
    ("It sold 1200 units.", ["12"]),  # digits inside a number
    ("It sold 12 units.", ["1200"]),
    ("It had 2.5 million", ["2"]),  # a decimal is one number
    ("Halvorsen Edda", ["Edda Halvorsen"]),  # words in the wrong order
    ("", ["Brekke"]),
    ("The company was founded in 1962.", ["1958"]),
])
def test_near_misses_do_not_match(reply, answers):
    assert matched_answer(reply, answers) is None


def test_normalize_words():
    assert normalize("The Stormglass (1963) cost 4,000 kroner!") == ["the", "stormglass", "1963", "cost", "4000",
                                                                     "kroner"]


def write(tmp_path, lines):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_questions_skips_blank_lines(tmp_path):
    path = write(tmp_path, [json.dumps({"question": "Who?", "answers": ["Edda"]}), "",
                            json.dumps({"question": "Where?", "answers": ["Brekke", "Varnholm"]})])
    questions = read_questions(path)
    assert [q.question for q in questions] == ["Who?", "Where?"]
    assert questions[1].answers == ["Brekke", "Varnholm"]


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ('["Who?", ["Edda"]]', "expected an object"),
    ('{"question": "Who?"}', "missing 'answers'"),
    ('{"answers": ["x"]}', "missing 'question'"),
    ('{"question": "Who?", "answers": []}', "non-empty list"),
    ('{"question": "Who?", "answers": "Edda"}', "non-empty list"),
    ('{"question": "  ", "answers": ["Edda"]}', "'question' must be non-empty"),
    ('{"question": "Who?", "answers": ["..."]}', "at least one letter or digit"),
    ('{"question": "Who?", "answers": ["Edda"], "answer": "x"}', "unknown field(s) answer"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    path = write(tmp_path, [json.dumps({"question": "Fine?", "answers": ["yes"]}), line])
    with pytest.raises(QuizError) as info:
        read_questions(path)
    assert f"{path}:2: " in str(info.value) and problem in str(info.value)


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(QuizError, match="cannot be read"):
        read_questions(tmp_path / "missing.jsonl")
    with pytest.raises(QuizError, match="holds no questions"):
        read_questions(write(tmp_path, [""]))
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"question": "caf\xe9", "answers": ["x"]}\n')
    with pytest.raises(QuizError, match="not UTF-8"):
        read_questions(bad)


class ScriptedEngine:
    """Stands in for engine.Engine in ChatSession: replies by looking at the prompt text."""

    def __init__(self, tokenizer, replies):
        self.tokenizer, self.replies, self.prompts = tokenizer, replies, []
        self.context_len = 4096

    def stream(self, ids, settings, cancel=None, logprobs=None, forced=()):
        prompt = self.tokenizer.decode(ids)
        self.prompts.append(prompt)
        self.reply = type("Reply", (), {"finish_reason": "eos", "text": ""})()
        for key, reply in self.replies.items():
            if key in prompt:
                self.reply.text = reply
                yield reply
                return


class WordTokenizer:
    """Characters as ids: enough for ChatSession to render and measure prompts."""

    add_bos, bos_id, eos_ids = False, None, set()

    def apply_chat_template(self, messages, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>{m['content']}</>" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def test_run_quiz_scores_and_passes_context():
    engine = ScriptedEngine(WordTokenizer(), {"PASSAGE": "Edda Halvorsen started it.", "Who": "Someone else.",
                                              "Where": "In Brekke."})
    questions = [QuizQuestion("Who started it?", ["Edda Halvorsen"]), QuizQuestion("Where?", ["Brekke"])]
    closed = run_quiz(engine, questions)
    assert closed.score == 1 and [i.correct for i in closed.items] == [False, True]
    assert closed.to_dict()["total"] == 2 and closed.to_dict()["questions"][1]["matched"] == "Brekke"
    opened = run_quiz(engine, questions[:1], context=lambda q: "PASSAGE about the founder")
    assert opened.score == 1 and opened.items[0].context_chars == len("PASSAGE about the founder")
    assert "PASSAGE about the founder" in engine.prompts[-1] and "Who started it?" in engine.prompts[-1]
