"""The knowledge recipe: documents -> chat examples that teach the model to recall their facts
when asked, without the documents in front of it.

Training on the raw text alone teaches continuation: the model learns to go on from "Edda
Halvorsen founded" but not to answer "Who started the company?" (Allen-Zhu & Li, Physics of
Language Models 3.1: knowledge is extractable by questions only when each fact was seen in
varied wordings and QA pairs were part of training; Yang et al. 2024, Synthetic Continued
Pretraining: re-express a small corpus many ways). Each document becomes:

- `raw`: the document as plain text (every token a target), as before;
- `entity`: for each name, place, date or number in a sentence, questions about it in several
  wordings ("What do you know about Brekke?", "What happened in 1972?") answered by the sentence;
- `cloze`: the start of a sentence, the model writes the sentence;
- `recall`: a document's title, the model writes the document back, and its facts in another order;
- `passage`: a question asked with passages in front of it exactly as chat with documents asks
  it: the chunks a library of these same documents returns for that question (same chunker,
  search and number of passages, the best last), so the distractors are the near misses of the
  same document, answered by the one sentence that holds the fact (RAFT, Zhang et al. 2024;
  Ovadia et al. 2023). Without these an adapter trained only closed-book learned to recite the
  first passage's first sentence (2 of 10 with documents, base model 5 of 10); with a paragraph
  of the answer among paragraphs of other documents it recited memorised neighbours of the
  answer (5 of 10, base model 7 of 10);
- `generated` (needs a model): the model being tuned, with the passage in front of it, writes a
  question the sentence answers and then answers it (it answers well with the passage); the
  example asks the same question without the passage. A reply that shares no name or number with
  the sentence is replaced by the sentence itself, so a wrong reply is not learned.

Every example except `raw` is a conversation with the loss on the assistant's reply only
(prepare.tokenize renders it with the chat template). The examples are a JSONL file the user
can read, edit and reuse (`--examples FILE`): `{"messages": [...], "kind": ...}` or
`{"text": ..., "kind": "raw"}` per line.

Auto quiz questions (`quiz_questions`) blank out a name or number in the middle of a sentence
and ask for it: a wording no training example uses.

Long because the recipe's stages (template, generated, grouped turns) and the examples file
they write and read share the one example format defined here; each stage is a short function.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from .dataset import DatasetError, _check_messages
from .jsonl import jsonl_records

log = logging.getLogger(__name__)

KINDS = ("raw", "entity", "question", "cloze", "recall", "passage", "generated")
Document = tuple[str, str]  # (source name, text)

_ENTITY_QUESTIONS = ("What do you know about {e}?", "Tell me about {e}.", "What can you tell me about {e}?",
                     "What is known about {e}?", "Give me one fact about {e}.")
_YEAR_QUESTIONS = ("What happened in {e}?", "What took place in {e}?", "What happened in the year {e}?")
_NUMBER_QUESTIONS = ("What does the number {e} refer to?", "Where does the figure {e} come from?")
_CLOZE_QUESTIONS = ("Finish this sentence: \"{p} ...\"", "Complete: {p} ...", "How does this go on? {p}")
_RECALL_QUESTIONS = ("Tell me what you know about {t}.", "What do you know about \"{t}\"?")
_SHUFFLE_QUESTIONS = ("List the facts you know about {t}.", "Summarize what you know about {t}.")
_GEN_ANSWER_PROMPT = "Answer the question using the text below.\n\n{passage}\n\nQuestion: {question}"
_QUIZ_PROMPT = "Fill in the blank: \"{s}\""

# Capitalised words that start sentences or clauses without naming anything.
_STOP = set("""a an and as at by for from in into it its of on or she he her his their they this that these those
the to was were with when while which who under until after before since during most many every all no one
there here what where why how its our we you your i but so if not its mr mrs dr st""".split())
_MONTHS = set("january february march april may june july august september october november december".split())


@dataclass
class KnowledgeConfig:
    """What the recipe writes for each document; `rounds` repeats the templated kinds with fresh
    wordings (repeated exposure in varied contexts, not copies)."""

    raw: bool = True
    entity: bool = True
    cloze: bool = True
    recall: bool = True
    passage: bool = True
    # `passage` examples: "paragraphs" (the sentence's window among `distractors` paragraphs of other
    # documents, a random place) or "library" (the `passages` chunks a library of the documents
    # returns for the question, best last, `passage_questions` per sentence). Measured on the same
    # other examples, 117 steps (README "Teaching the model your documents"): "library" 2/10
    # closed-book and 2/10 with documents, "paragraphs" 2/10 and 3/10: no gain, "paragraphs" kept.
    passage_layout: str = "paragraphs"
    distractors: int = 2
    passages: int = 3
    passage_questions: int = 1
    variants: bool = False  # `question` examples also in the other wordings of question_variants (unmeasured)
    # wh-questions (`question`, `passage`) answered with the phrase asked for first, then the
    # sentence: "Edda Halvorsen. Its founder, the glass grinder Edda Halvorsen, had ...". Measured
    # (benchmarks/knowledge.py, 194 steps, the same examples otherwise, seeds 0 and 1): closed-book
    # 8 and 5 of 10 against 6 and 4, with documents 6 and 7 against 6 and 3 (README).
    answer_first: bool = True
    # share of `passage` examples asked with the distractors only, the answering paragraph left
    # out, answered as closed-book (RAFT, Zhang et al. 2024: the model learns to answer from what
    # it knows when the passages do not say it, instead of copying one of them)
    passage_absent: float = 0.0
    generate: bool = True
    rounds: int = 1
    turns: int = 2  # question-answer pairs per training conversation (one system prompt for all)
    seed: int = 0
    max_generate_s: float = 240.0  # the model stops answering (and says so) after this long
    max_new_tokens: int = 48

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if self.passage_layout not in ("paragraphs", "library"):
            raise ValueError(f"passage_layout must be 'paragraphs' or 'library', got {self.passage_layout!r}")
        if not 0.0 <= self.passage_absent < 1.0:
            raise ValueError(f"passage_absent must be in [0, 1), got {self.passage_absent}")
        if self.distractors < 0:
            raise ValueError(f"distractors must be 0 or more, got {self.distractors}")
        if self.passages < 1 or self.passage_questions < 1:
            raise ValueError(f"passages and passage_questions must be at least 1, "
                             f"got {self.passages} and {self.passage_questions}")
        if self.max_generate_s <= 0 or self.max_new_tokens <= 0:
            raise ValueError("max_generate_s and max_new_tokens must be positive")


# -- text analysis -------------------------------------------------------------------------
def title_and_body(text: str, source: str) -> tuple[str, str]:
    """The first Markdown/underlined heading (else the file's name) and the text without headings."""
    title = ""
    body_lines = []
    for line in text.splitlines():
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            title = title or heading.group(1).strip()
            continue
        if re.match(r"^\s*[=-]{3,}\s*$", line):
            continue
        body_lines.append(line)
    if not title:
        title = re.sub(r"[_-]+", " ", Path(source).stem).strip() or "the document"
    return title, "\n".join(body_lines).strip()


def paragraphs(body: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]


def sentences(paragraph: str) -> list[str]:
    """Sentences of a paragraph: split after . ! ? followed by a space and a capital or digit."""
    parts = re.split(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])", paragraph)
    return [p.strip() for p in parts if len(p.split()) >= 3]


def key_phrases(sentence: str) -> list[str]:
    """Names (runs of capitalised words), years, dates and numbers in a sentence, in order.

    A single capitalised word opening the sentence ("Word spread...") is taken for a name only
    when it is not a common word's capital (it appears capitalised mid-sentence elsewhere in it
    or is followed by another capitalised word)."""
    found: list[str] = []
    tokens = re.findall(r"[A-Za-z][\w'\-]*|\d[\d,.]*\d|\d", sentence)
    run: list[str] = []

    def flush() -> None:
        if run:
            phrase = " ".join(run)
            opening = len(run) == 1 and tokens and run[0] is tokens[0] and tokens.count(run[0]) == 1
            if phrase.lower() not in _STOP and not opening:
                found.append(phrase)
            run.clear()

    tokens = [t[:-2] if t.endswith("'s") else t for t in tokens]
    for i, tok in enumerate(tokens):
        if tok[0].isupper() and tok.lower() not in _STOP and not (i == 0 and tok.lower() in _STOP):
            run.append(tok)
            continue
        flush()
        if tok[0].isdigit():
            found.append(tok.rstrip(".,"))
    flush()
    unique: list[str] = []
    for p in found:
        if p not in unique and not (p.lower() in _MONTHS):
            unique.append(p)
    return unique


_PRONOUN_START = re.compile(r"^(it|its|she|he|her|his|they|their|this|these|there)\b", re.I)


def answer_text(sents: Sequence[str], i: int) -> str:
    """Sentence i as an answer: with the sentence before it when it opens with a pronoun ("Its
    founder, ... Edda Halvorsen, ..."), so the answer says whose founder."""
    if i > 0 and _PRONOUN_START.match(sents[i]):
        return f"{sents[i - 1]} {sents[i]}"
    return sents[i]


def phrase_first(phrase: str, answer: str) -> str:
    """The answer to a wh-question as the phrase it asks for, then the sentence that says it."""
    return f"{phrase}. {answer}"


MAX_ENTITY_MENTIONS = 2


def resolve_pronoun(sentence: str, subject: str, before: Sequence[str]) -> str:
    """The sentence with an opening It/Its/They/Their replaced by the document's subject (a name
    in its title) and She/He/Her/His by the last two-word name before it, where there is one:
    a question made from it then says whom it is about."""
    m = re.match(r"^(Its|It|Their|They|She|He|Her|His)\b", sentence)
    if not m:
        return sentence
    word = m.group(1)
    if word in ("Its", "It", "Their", "They"):
        name = subject
    else:
        names = [p for b in before for p in key_phrases(b) if len(p.split()) >= 2 and not p[0].isdigit()]
        name = names[-1] if names else ""
    if not name:
        return sentence
    return (f"{name}'s" if word in ("Its", "Their", "Her", "His") else name) + sentence[len(word):]


def _is_year(phrase: str) -> bool:
    return bool(re.fullmatch(r"1[5-9]\d\d|20\d\d", phrase))


# -- examples ------------------------------------------------------------------------------
def _chat(question: str, answer: str, kind: str, source: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "kind": kind, "source": source}


def template_examples(documents: Sequence[Document], config: KnowledgeConfig) -> list[dict[str, Any]]:
    """The examples that need no model: raw text, entity questions, cloze, recall."""
    rng = random.Random(config.seed)
    out: list[dict[str, Any]] = []
    # A name in many sentences (the company's) says nothing about which fact is asked for:
    # "What do you know about X?" with a dozen different answers teaches the model to answer
    # every question about X with the same one (measured: 2 of 10). Only rarer names get them.
    mentions: dict[str, int] = {}
    for source, text in documents:
        for para in paragraphs(title_and_body(text, source)[1]):
            for s in sentences(para):
                for e in key_phrases(s):
                    mentions[e] = mentions.get(e, 0) + 1
    for source, text in documents:
        title, body = title_and_body(text, source)
        paras = paragraphs(body)
        subject = next(iter(key_phrases(title)), "")
        if config.raw:
            out.append({"text": f"{title}\n\n" + "\n\n".join(paras), "kind": "raw", "source": source})
        for round_ in range(config.rounds):
            for para in paras:
                sents = sentences(para)
                for i, s in enumerate(sents):
                    phrases = key_phrases(s)
                    answer = answer_text(sents, i)
                    if config.entity:
                        for e in phrases:
                            if mentions.get(e, 0) > MAX_ENTITY_MENTIONS:
                                continue
                            if _is_year(e):
                                template = rng.choice(_YEAR_QUESTIONS)
                            elif e[0].isdigit():
                                template = rng.choice(_NUMBER_QUESTIONS)
                            else:
                                template = rng.choice(_ENTITY_QUESTIONS)
                            out.append(_chat(template.format(e=e), answer, "entity", source))
                    if config.entity and round_ == 0:  # one wording each: repeats would be copies
                        named = resolve_pronoun(s, subject, sents[:i])
                        for question, phrase in wh_questions(named):
                            said = phrase_first(phrase, answer) if config.answer_first else answer
                            out.append(_chat(question, said, "question", source))
                            if config.variants:
                                out += [_chat(v, said, "question", source)
                                        for v in question_variants(question)]
                    words = s.split()
                    if config.cloze and len(words) >= 6:
                        cut = rng.randint(max(2, len(words) // 4), max(3, len(words) // 2))
                        prompt = rng.choice(_CLOZE_QUESTIONS).format(p=" ".join(words[:cut]))
                        out.append(_chat(prompt, s, "cloze", source))
            if config.recall and paras:
                all_sents = [s for p in paras for s in sentences(p)]
                out.append(_chat(rng.choice(_RECALL_QUESTIONS).format(t=title), "\n\n".join(paras), "recall", source))
                shuffled = all_sents[:]
                rng.shuffle(shuffled)
                out.append(_chat(rng.choice(_SHUFFLE_QUESTIONS).format(t=title),
                                 "\n".join(f"- {s}" for s in shuffled), "recall", source))
    return out


_TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")


class DocumentsLibrary:
    """The training documents indexed as chat with documents indexes a folder (`--docs PATH`:
    documents.library, the same reader, chunker and BM25), in a temporary folder removed by
    `close`. Each document is written as a file named after its source (extracted text of other
    formats as .txt), so its chunks are the ones a library of the same files returns."""

    def __init__(self, documents: Sequence[Document]) -> None:
        import tempfile

        from ..documents.library import index_paths_into_temporary
        from ..engine.retrieval import LibraryRetriever

        folder = tempfile.TemporaryDirectory(prefix="chatapp-knowledge-")
        try:
            for n, (source, text) in enumerate(documents):
                name = re.sub(r"[^\w.\-]+", "_", Path(source).name)[:80] or "document"
                if Path(name).suffix.lower() not in _TEXT_SUFFIXES:
                    name += ".txt"
                (Path(folder.name) / f"{n:04d}_{name}").write_text(text, encoding="utf-8")
            store, library, _report = index_paths_into_temporary([folder.name], Path(folder.name) / ".index")
        except BaseException:
            folder.cleanup()
            raise
        self.retriever = LibraryRetriever(store, library, owned_folder=folder)

    def search(self, query: str, limit: int) -> list[Any]:
        return self.retriever.search(query, limit)

    def close(self) -> None:
        self.retriever.close()

    def __enter__(self) -> "DocumentsLibrary":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _holds(passage: str, sentence: str, phrase: str) -> bool:
    """Whether a passage holds the fact: the phrase and most of the sentence's words."""
    words = set(re.findall(r"\w+", sentence.lower()))
    return phrase in passage and len(words & set(re.findall(r"\w+", passage.lower()))) >= 0.6 * len(words)


def passage_examples(documents: Sequence[Document], config: KnowledgeConfig,
                     retriever: Any = None) -> list[dict[str, Any]]:
    """The `passage` examples in `config.passage_layout`: "paragraphs" (paragraph_passage_examples,
    the default) or "library" (library_passage_examples; `retriever` as there)."""
    if config.passage_layout == "library":
        return library_passage_examples(documents, config, retriever)
    return paragraph_passage_examples(documents, config)


def paragraph_passage_examples(documents: Sequence[Document], config: KnowledgeConfig) -> list[dict[str, Any]]:
    """One question per sentence that has a fact to ask for, asked with passages in front of it in
    the prompt chat with documents uses (engine.retrieval.prompt_with_passages, without the
    "Most relevant" line chat adds: the line was measured with adapters trained so): the sentence and
    its neighbours among `config.distractors` paragraphs of other documents, the answering one at
    a random place; the answer is the sentence (as closed-book examples answer)."""
    from ..engine.retrieval import prompt_with_passages

    rng = random.Random(config.seed + 1)
    absent = random.Random(config.seed + 2)  # its own stream: the other examples stay as they were
    paras_of = [(source, paragraphs(title_and_body(text, source)[1])) for source, text in documents]
    out: list[dict[str, Any]] = []
    for d, (source, paras) in enumerate(paras_of):
        # Distractors from other documents; a single document lends its other paragraphs.
        others = [p for e, (_, ps) in enumerate(paras_of) if e != d for p in ps] or \
                 [p for _, ps in paras_of for p in ps]
        for para in paras:
            sents = sentences(para)
            for i, s in enumerate(sents):
                pairs = wh_questions(s)
                if not pairs:
                    continue
                question, phrase = rng.choice(pairs)
                window = " ".join(sents[max(0, i - 1):i + 2])
                pool = [p for p in others if p != para]
                passages = rng.sample(pool, min(config.distractors, len(pool)))
                passages.insert(rng.randint(0, len(passages)), window)
                if config.passage_absent and absent.random() < config.passage_absent and len(passages) > 1:
                    passages.remove(window)
                answer = answer_text(sents, i)
                if config.answer_first:
                    answer = phrase_first(phrase, answer)
                out.append(_chat(prompt_with_passages(question, passages), answer, "passage", source))
    return out


def library_passage_examples(documents: Sequence[Document], config: KnowledgeConfig,
                             retriever: Any = None) -> list[dict[str, Any]]:
    """Questions asked with passages in front of them exactly as chat with documents asks
    (RAFT, Zhang et al. 2024): for each sentence with a fact, `config.passage_questions` of its
    questions, each searched in a library of these documents (`retriever`, else one built here:
    DocumentsLibrary) through engine.retrieval.rank_turn, its best `config.passages` chunks laid
    out by prompt_with_passages, the best last (engine.retrieval.BEST_LAST). The distractors are
    the near misses the search ranks beside the answer, mostly from the same document, which is
    what the model must tell apart at use time. A search that misses the chunk holding the fact
    gets it in place of its worst hit (the answer is always readable in the prompt). The answer
    is the one sentence that holds the fact, as the passage writes it, never a neighbour."""
    from ..engine.retrieval import BEST_LAST, RetrievalOptions, passage_text, prompt_with_passages, rank_turn

    if retriever is None:
        with DocumentsLibrary(documents) as library:
            return library_passage_examples(documents, config, library)
    rng = random.Random(config.seed + 1)
    options = RetrievalOptions(passages=config.passages)
    out: list[dict[str, Any]] = []
    for source, text in documents:
        title, body = title_and_body(text, source)
        subject = next(iter(key_phrases(title)), "")
        for para in paragraphs(body):
            sents = sentences(para)
            for i, s in enumerate(sents):
                # asked as the sentence words it and with its opening pronoun named ("She was
                # succeeded by who?", "Edda Halvorsen was succeeded by who?")
                pairs = list(dict.fromkeys(wh_questions(s) + wh_questions(resolve_pronoun(s, subject, sents[:i]))))
                if not pairs:
                    continue
                for question, phrase in rng.sample(pairs, min(config.passage_questions, len(pairs))):
                    # the sentence as the passage writes it (read off the passage, not recited)
                    answer = phrase_first(phrase, s) if config.answer_first else s
                    hits = rank_turn(None, retriever, [{"role": "user", "content": question}], options).hits
                    texts = [passage_text(h.text) for h in hits]  # best first
                    if not any(_holds(t, s, phrase) for t in texts):
                        texts = [" ".join(sents[max(0, i - 1):i + 2])] + texts[:max(0, config.passages - 1)]
                    shown = texts[::-1] if BEST_LAST else texts
                    out.append(_chat(prompt_with_passages(question, shown), answer, "passage", source))
    return out


def _wh_word(phrase: str, before: str) -> tuple[str, int]:
    """(question words standing for `phrase`, characters of `before` they replace)."""
    prep = re.search(r"\b(in|at|near|from|to)\s+(the\s+\w+\s+of\s+)?$", before, flags=re.I)
    if _is_year(phrase):
        m = re.search(r"\b(in|by|until|since)\s+$", before, flags=re.I)
        return (f"{m.group(1)} what year", len(m.group(0))) if m else ("what year", 0)
    if phrase[0].isdigit():
        return "how many", 0
    if prep and prep.group(1).lower() in ("in", "at", "near"):
        return "where", len(prep.group(0))
    article = re.search(r"\bthe\s+$", before, flags=re.I)
    if len(phrase.split()) >= 2 and not article:
        return "who", 0
    return "what", len(article.group(0)) if article else 0


def wh_questions(sentence: str) -> list[tuple[str, str]]:
    """(question, answer phrase) pairs made from the sentence by asking for each name, place,
    year or number where it stands ("The factory opened in Brekke in 1972." -> "The factory
    opened where in 1972?"): no generator needed, one fact asked per question."""
    out = []
    body = sentence.rstrip(" .!")
    for phrase in key_phrases(body):
        at = body.find(phrase)
        if at < 0 or body[at + len(phrase):].startswith("'s"):  # "X's founder": no question about X here
            continue
        words, cut = _wh_word(phrase, body[:at])
        rest = body[at + len(phrase):]
        clause = re.search(r",\s|;\s|\s(which|who|when|while|where|and it)\s", rest)
        if clause and len(rest[:clause.start()].split()) + len(body[:at].split()) >= 4:
            rest = rest[:clause.start()]  # the clause that holds the fact: shorter, more like a user's question
        question = body[:at - cut] + words + rest
        if at - cut == 0:
            question = question[0].upper() + question[1:]
        out.append((question.rstrip(" ,;:") + "?", phrase))
    return out


_COPULA_LAST = re.compile(r"^(?P<subject>.+?) (?P<verb>is|was|are|were)(?P<adverb> now| still| today)? "
                          r"(?P<wh>who|what)\?$")
_PASSIVE_BY_LAST = re.compile(r"^(?P<subject>.+?) (?:was|were) (?P<verb>\w+ed)(?P<rest> [^,]*?)? by (?P<wh>who|what)\?$")
_APPOSITIVE_LAST = re.compile(r"^(?P<subject>[^,]+), (?:the |an? )?(?:[\w'-]+ ){0,3}?(?P<wh>who|what)\?$")


def _lower_start(phrase: str) -> str:
    """A sentence's opening as the middle of a question: lower case unless it opens with a name."""
    return phrase if re.match(r"[A-Z]\w* [A-Z]|[A-Z]\w*'s\b", phrase) else phrase[0].lower() + phrase[1:]


def question_variants(question: str) -> list[str]:
    """Other wordings of a wh-question made in place (knowledge augmentation, Allen-Zhu & Li 3.1:
    a fact seen under several wordings is recalled under a new one), closer to how people ask:
    the question word fronted where it ends a copula ("The current managing director is who?" ->
    "Who is the current managing director?") or an apposition ("Her successor, the engineer
    who?" -> "Who was her successor?") or a passive ("X was succeeded as director by who?" -> "Who
    succeeded X as director?")."""
    out = []
    m = _COPULA_LAST.match(question)
    if m:
        out.append(f"{m.group('wh').capitalize()} {m.group('verb')} {_lower_start(m.group('subject'))}"
                   f"{m.group('adverb') or ''}?")
    m = _PASSIVE_BY_LAST.match(question)
    if m:  # regular verbs only: their participle is their past tense
        out.append(f"{m.group('wh').capitalize()} {m.group('verb')} {_lower_start(m.group('subject'))}"
                   f"{m.group('rest') or ''}?")
    m = _APPOSITIVE_LAST.match(question)
    if m and 2 <= len(m.group("subject").split()) <= 5:
        out.append(f"{m.group('wh').capitalize()} was {_lower_start(m.group('subject'))}?")
    return [q for q in dict.fromkeys(out) if q != question]


def generated_examples(ask: Callable[[str], str], documents: Sequence[Document], config: KnowledgeConfig,
                       progress: Optional[Callable[[int, int], None]] = None) -> list[dict[str, Any]]:
    """Answers written by the model with the passage in front of it (self-distillation: it answers
    well there), to questions about each sentence; the examples ask the same question without the
    passage. A reply that does not contain the fact asked for is replaced by the sentence itself,
    so a wrong reply is not learned. (Questions written by the 135M default model were unusable
    three times in four, measured: "What is the answer to this question?"; templates write them.)"""
    jobs = []
    for source, text in documents:
        title, body = title_and_body(text, source)
        for para in paragraphs(body):
            sents = sentences(para)
            for i, s in enumerate(sents):
                # The sentence as written (unlike the template questions): measured 5 of 10 this
                # way, 4 of 10 with pronouns resolved and preambles stripped (one run each).
                pairs = wh_questions(s)
                if pairs:
                    question, phrase = pairs[-1] if len(pairs) > 1 else pairs[0]
                    jobs.append((source, f"{title}\n\n{para}", answer_text(sents, i), question, phrase))
    out: list[dict[str, Any]] = []
    start = time.monotonic()
    for n, (source, passage, s, question, phrase) in enumerate(jobs):
        if time.monotonic() - start > config.max_generate_s:
            log.warning("model answers stopped after %.0f s with %d of %d sentences done",
                        config.max_generate_s, n, len(jobs))
            break
        answer = ""
        for context in (passage, s):  # a paragraph too long for the model's context: the sentence alone
            try:
                answer = ask(_GEN_ANSWER_PROMPT.format(passage=context, question=question)).strip()
                break
            except ValueError as exc:  # engine.generate.ContextOverflowError
                log.info("no model answer with this context: %s", exc)
        from .quiz import matched_answer

        if matched_answer(answer, [phrase]) is None or len(answer) > 600:
            answer = s
        out.append(_chat(question, answer, "generated", source))
        if progress is not None:
            progress(n + 1, len(jobs))
    return out


def build_examples(documents: Sequence[Document], config: Optional[KnowledgeConfig] = None,
                   ask: Optional[Callable[[str], str]] = None,
                   progress: Optional[Callable[[int, int], None]] = None) -> list[dict[str, Any]]:
    """All the recipe's examples for `documents` ((source, text) pairs); `ask` enables `generated`."""
    config = config or KnowledgeConfig()
    examples = template_examples(documents, config)
    if config.passage:
        examples += passage_examples(documents, config)
    if config.generate and ask is not None:
        examples += generated_examples(ask, documents, config, progress)
    return examples


# -- the examples file ---------------------------------------------------------------------
def write_examples(examples: Iterable[dict[str, Any]], path: Union[str, Path]) -> Path:
    """One JSON object per line, written atomically."""
    import os
    import tempfile

    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for e in examples:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_example(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError('expected an object {"messages": [...]} or {"text": "..."}')
    if ("messages" in record) == ("text" in record):
        raise ValueError('expected exactly one of "messages" (a conversation) or "text" (plain text)')
    if "text" in record:
        if not isinstance(record["text"], str) or not record["text"].strip():
            raise ValueError("'text' must be non-empty text")
    else:
        _check_messages(record["messages"])
    return record


def read_examples(path: Union[str, Path]) -> list[dict[str, Any]]:
    """The examples of a JSONL file; the first bad line raises DatasetError naming it."""
    path = Path(path).expanduser()
    out = [example for _, example in jsonl_records(path, DatasetError, check_example)]
    if not out:
        raise DatasetError(path, "holds no examples")
    return out


# -- auto quiz -----------------------------------------------------------------------------
def quiz_questions(documents: Sequence[Document], limit: int = 20, seed: int = 0) -> list[Any]:
    """Fill-in-the-blank questions: one name or number blanked in the middle of a sentence."""
    from .quiz import QuizQuestion

    rng = random.Random(seed)
    candidates = []
    for source, text in documents:
        title, body = title_and_body(text, source)
        for para in paragraphs(body):
            for s in sentences(para):
                phrases = [p for p in key_phrases(s) if p.lower() not in title.lower() and s.find(p) > 0]
                if phrases:
                    answer = rng.choice(phrases)
                    candidates.append(QuizQuestion(_QUIZ_PROMPT.format(s=s.replace(answer, "____", 1)), [answer]))
    rng.shuffle(candidates)
    return candidates[:limit]


# -- training data -------------------------------------------------------------------------
EXAMPLES_FILE = "knowledge_examples.jsonl"  # written into the training output folder


def _model_asker(spec: str, device: str) -> Callable[[str], str]:
    """A greedy one-turn chat with a fresh inference copy of the model (the training copy keeps
    its training layout)."""
    from ..engine.generate import Engine
    from ..engine.loader import load_model
    from .quiz import ask

    loaded = load_model(spec, device=device, decode_step="eager")  # ~40 short answers: a compile costs more
    engine = Engine(loaded.model, loaded.tokenizer, context_len=min(2048, loaded.config.max_seq_len))
    return lambda prompt: ask(engine, prompt, max_new_tokens=KnowledgeConfig.max_new_tokens)


def encode_example(example: dict[str, Any], tokenizer: Any) -> tuple[list[int], list[bool]]:
    """(ids, loss mask): a conversation with the loss on the assistant's turns; text on every token."""
    from .prepare import Example, tokenize

    return tokenize([Example(key="", text=example.get("text"), messages=example.get("messages"))], tokenizer)


def split_examples(examples: Sequence[dict[str, Any]], val_fraction: float, seed: int
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): a seeded share of the questions is held out, to measure recall by
    questions not trained on; the raw text always trains (a fact held out of it is never learned)."""
    from .dataset import split_documents

    raw = [e for e in examples if "text" in e]
    questions = [e for e in examples if "text" not in e]
    train_q, val_q = split_documents(questions, val_fraction, seed,
                                     key=lambda e: json.dumps(e["messages"], sort_keys=True, ensure_ascii=False))
    return raw + train_q, val_q


def group_turns(examples: Sequence[dict[str, Any]], turns: int) -> list[dict[str, Any]]:
    """Consecutive single-question conversations joined `turns` at a time into one conversation:
    the chat template's system prompt (a third of a short example's tokens) is paid once.
    Conversations with a system message of their own and plain texts stay as they are."""
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            out.append({"messages": [m for e in pending for m in e["messages"]], "kind": "turns"})
            pending.clear()

    for e in examples:
        if "messages" in e and all(m["role"] != "system" for m in e["messages"]):
            pending.append(e)
            if len(pending) >= turns:
                flush()
        else:
            out.append(e)
    flush()
    return out


def knowledge_data(job: Any, sources: Any, tokenizer: Any, say: Callable[[dict[str, Any]], None],
                   cancel: Any = None, max_generate_s: Optional[float] = None) -> Any:
    """The knowledge recipe's PreparedData for a training job (run.TrainJob) on documents: the
    examples are made (or read from job.examples), written to OUT/knowledge_examples.jsonl,
    split, encoded and packed whole into blocks. None when cancelled while making them.
    `max_generate_s`: the most seconds the model may spend answering (the time budget's share)."""
    from collections import Counter

    from .dataset import fingerprint_texts, pack_examples
    from .prepare import PreparedData
    from .protocol import ExamplesEvent

    documents = [(e.source, e.text or "") for e in sources.examples]
    started = time.monotonic()
    if job.examples:
        examples = read_examples(job.examples)
    else:
        config = KnowledgeConfig(seed=job.seed, generate=job.method != "scratch" and job.model_examples)
        if max_generate_s is not None:  # the time budget's share for the model's answers
            config.max_generate_s = max(1.0, min(config.max_generate_s, max_generate_s))
        ask = _model_asker(job.model, job.device) if config.generate else None

        def progress(done: int, total: int) -> None:
            say(ExamplesEvent(done=done, total=total, elapsed_s=time.monotonic() - started))
            if cancel is not None and cancel.is_set():
                raise _Cancelled

        try:
            examples = build_examples(documents, config, ask, progress)
        except _Cancelled:
            return None
    path = write_examples(examples, Path(job.out) / EXAMPLES_FILE)
    kinds = Counter(e.get("kind", "other") for e in examples)
    say(ExamplesEvent(path=str(path), examples=len(examples), kinds=dict(kinds),
                      seconds=round(time.monotonic() - started, 1)))
    rng = random.Random(job.seed)
    train, val = split_examples(examples, job.val_fraction, job.seed)
    rng.shuffle(train)  # documents and kinds mixed within each block
    n_train = len(train)
    train = group_turns(train, KnowledgeConfig.turns)
    pad = tokenizer.eos_id if tokenizer.eos_id is not None else 0
    train_blocks = pack_examples((encode_example(e, tokenizer) for e in train), job.block_size, pad)
    val_blocks = pack_examples((encode_example(e, tokenizer) for e in val), job.block_size, pad) if val else None
    fingerprint = fingerprint_texts(sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in examples))
    return PreparedData("knowledge", train_blocks, val_blocks, n_train, len(val), fingerprint)


class _Cancelled(Exception):
    pass
