"""The quiz: what does a model know? Questions with accepted answers, asked greedily, scored by
whether the reply contains one of the answers.

A question file is JSONL, one `{"question": "...", "answers": ["...", ...]}` per line. Scoring
compares normalised word sequences: case, accents' compatibility forms, punctuation and number
formats do not matter ("4,000" = "4000" = "four thousand" is not attempted, but "Forty" = "40"
and "1,200" = "1200" are), and an answer must match whole words ("Dahl" is not found in
"Dahlberg", "12" not in "1200").

With documents, the quiz asks through a `retriever` (engine.retrieval: a library's passages
fitted into the prompt exactly as chat with documents does, `chatapp quiz --docs`), or through
a `ContextLookup` (question -> text put in front of the question, for a benchmark's own lookup).
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from .jsonl import jsonl_records

log = logging.getLogger(__name__)

ContextLookup = Callable[[str], str]
MAX_QUESTIONS = 10_000
MAX_FIELD_CHARS = 2_000
DEFAULT_MAX_NEW_TOKENS = 80
CONTEXT_PROMPT = "Answer the question using the text below.\n\n{context}\n\nQuestion: {question}"

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_NUMBER_WORDS = {w: i for i, w in enumerate(_UNITS)} | _TENS


class QuizError(ValueError):
    """A question file that cannot be used; names the file and line."""

    def __init__(self, path: Optional[Union[str, Path]], problem: str, line: Optional[int] = None) -> None:
        where = "" if path is None else (f"{path}:{line}: " if line is not None else f"{path}: ")
        super().__init__(f"{where}{problem}")


@dataclass
class QuizQuestion:
    question: str
    answers: list[str]

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError("'question' must be non-empty text")
        if not isinstance(self.answers, list) or not self.answers:
            raise ValueError("'answers' must be a non-empty list of accepted answers")
        for a in self.answers:
            if not isinstance(a, str) or not normalize(a):
                raise ValueError(f"accepted answer {a!r} is not text with at least one letter or digit")
        if len(self.question) > MAX_FIELD_CHARS or any(len(a) > MAX_FIELD_CHARS for a in self.answers):
            raise ValueError(f"a question or answer is longer than {MAX_FIELD_CHARS} characters")


# -- scoring ------------------------------------------------------------------------------
def _number_words(words: list[str]) -> list[str]:
    """'forty two' -> '42', 'seven' -> '7' (whole words only; larger spelled numbers are left)."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS and i + 1 < len(words) and words[i + 1] in _NUMBER_WORDS and _NUMBER_WORDS[words[i + 1]] < 10:
            out.append(str(_TENS[w] + _NUMBER_WORDS[words[i + 1]]))
            i += 2
            continue
        out.append(str(_NUMBER_WORDS[w]) if w in _NUMBER_WORDS else w)
        i += 1
    return out


def normalize(text: str) -> list[str]:
    """Words of `text` for matching: lower case, compatibility forms, no punctuation, digit
    groups joined ("1,200" and "1 200" -> "1200"), small number words as digits, hyphens split."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'")
    text = re.sub(r"(?<=\d)[,\u202f\u00a0 ](?=\d{3}\b)", "", text)  # thousands separators
    text = re.sub(r"(?<=\d)\.(?=\d)", "_", text)  # keep decimals: 2.5 stays one word
    text = re.sub(r"'s\b", "", text)  # possessive: "fishermen's" matches "fishermen"
    words = re.findall(r"[^\W_]+(?:_[^\W_]+)*", text)
    return _number_words(words)


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(list(haystack[i:i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def matched_answer(reply: str, answers: Iterable[str]) -> Optional[str]:
    """The first accepted answer whose words appear, in order and whole, in the reply; else None."""
    words = normalize(reply)
    for answer in answers:
        if _contains(words, normalize(answer)):
            return answer
    return None


# -- question files -----------------------------------------------------------------------
def parse_question(record: Any) -> QuizQuestion:
    if not isinstance(record, dict):
        raise ValueError('expected an object {"question": "...", "answers": ["...", ...]}')
    unknown = set(record) - {"question", "answers", "source"}
    if "question" not in record or "answers" not in record:
        missing = [k for k in ("question", "answers") if k not in record]
        raise ValueError(f"missing {' and '.join(repr(k) for k in missing)}")
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    return QuizQuestion(record["question"], record["answers"])


def read_questions(path: Union[str, Path]) -> list[QuizQuestion]:
    """Every question of a JSONL file; the first bad line raises QuizError naming it."""
    path = Path(path).expanduser()
    questions = []
    for _, question in jsonl_records(path, QuizError, parse_question):
        questions.append(question)
        if len(questions) > MAX_QUESTIONS:
            raise QuizError(path, f"holds more than {MAX_QUESTIONS} questions")
    if not questions:
        raise QuizError(path, "holds no questions")
    return questions


def write_questions(questions: Iterable[QuizQuestion], path: Union[str, Path]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps({"question": q.question, "answers": q.answers}, ensure_ascii=False) + "\n"
                            for q in questions), encoding="utf-8")
    return path


# -- running ------------------------------------------------------------------------------
@dataclass
class QuizItem:
    question: str
    answers: list[str]
    reply: str
    correct: bool
    matched: Optional[str]
    context_chars: int = 0


@dataclass
class QuizResult:
    items: list[QuizItem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(item.correct for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "total": len(self.items), "seconds": round(self.seconds, 2),
                "questions": [asdict(item) for item in self.items]}


def ask(engine: Any, question: str, context: str = "", system_prompt: str = "",
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> str:
    """One greedy reply to `question` (with `context` in front of it when given)."""
    from ..engine.sampling import SamplingSettings
    from ..engine.session import ChatSession

    content = CONTEXT_PROMPT.format(context=context, question=question) if context else question
    settings = SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens, repetition_penalty=1.0)
    session = ChatSession(engine, system_prompt=system_prompt, messages=[{"role": "user", "content": content}])
    return "".join(session.respond(settings)).strip()


def ask_with_documents(engine: Any, question: str, retriever: Any, system_prompt: str = "",
                       max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, options: Any = None) -> tuple[str, int]:
    """(greedy reply, characters of passages in the prompt): the question asked as chat with
    documents asks it (engine.retrieval.send_with_documents: same passages, format and fitting;
    `options`, an engine.retrieval.RetrievalOptions, None for chat's defaults)."""
    from ..engine.retrieval import send_with_documents
    from ..engine.sampling import SamplingSettings
    from ..engine.session import ChatSession

    settings = SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens, repetition_penalty=1.0)
    session = ChatSession(engine, system_prompt=system_prompt)
    reply = send_with_documents(session, question, settings, retriever, options=options)
    return "".join(reply).strip(), sum(len(s.text) for s in reply.result.sources)


def run_quiz(engine: Any, questions: Sequence[QuizQuestion], context: Optional[ContextLookup] = None,
             system_prompt: str = "", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
             on_item: Optional[Callable[[QuizItem], None]] = None, retriever: Any = None,
             retrieval_options: Any = None) -> QuizResult:
    """Ask each question greedily (closed-book, with a `retriever`'s passages as chat with
    documents puts them, or with `context(question)` in front) and score it."""
    result = QuizResult()
    start = time.perf_counter()
    for q in questions:
        if retriever is not None:
            reply, chars = ask_with_documents(engine, q.question, retriever, system_prompt, max_new_tokens,
                                              retrieval_options)
        else:
            text = context(q.question) if context is not None else ""
            reply, chars = ask(engine, q.question, text, system_prompt, max_new_tokens), len(text)
        hit = matched_answer(reply, q.answers)
        item = QuizItem(q.question, list(q.answers), reply, hit is not None, hit, chars)
        result.items.append(item)
        if on_item is not None:
            on_item(item)
    result.seconds = time.perf_counter() - start
    return result
