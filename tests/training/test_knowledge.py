"""The knowledge recipe: examples made from documents, their loss mask, the examples file,
packing, --epochs auto, and `chatapp train --recipe knowledge` end to end on a tiny model."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

from helpers.tiny_hf import read_events, tiny_llama_folder, tiny_tokenizer  # noqa: E402

from chatapp.training.dataset import DatasetError, pack_examples  # noqa: E402
from chatapp.training.knowledge import (KnowledgeConfig, build_examples, encode_example,  # noqa: E402
                                        generated_examples, group_turns, key_phrases, quiz_questions,
                                        read_examples, sentences, split_examples, template_examples,
                                        title_and_body, wh_questions, write_examples)
from chatapp.training.quiz import matched_answer  # noqa: E402
from chatapp.training.run import auto_steps  # noqa: E402

DOC = ("# The Brekke mill\n\nThe mill at Brekke was built in 1872 by Anna Berg. It employed 40 people.\n\n"
       "Word spread quickly, and the mill sold flour to Varnholm.\n")


def test_text_analysis():
    title, body = title_and_body(DOC, "docs/mill.md")
    assert title == "The Brekke mill" and "#" not in body
    assert sentences("It was built in 1872 by Anna Berg. It had 2.5 million stones! Too short. A third one.") == [
        "It was built in 1872 by Anna Berg.", "It had 2.5 million stones!", "A third one."]  # < 3 words: dropped
    assert key_phrases("The mill at Brekke was built in 1872 by Anna Berg.") == ["Brekke", "1872", "Anna Berg"]
    assert key_phrases("Word spread quickly to Varnholm.") == ["Varnholm"]  # an opening capital is no name
    assert title_and_body("no heading here", "notes/old_mill.txt")[0] == "old mill"


def test_wh_questions_ask_for_each_fact_where_it_stands():
    pairs = dict((a, q) for q, a in wh_questions("The mill at Brekke was built in 1872 by Anna Berg."))
    assert pairs == {"Brekke": "The mill where was built in 1872 by Anna Berg?",
                     "1872": "The mill at Brekke was built in what year by Anna Berg?",
                     "Anna Berg": "The mill at Brekke was built in 1872 by who?"}
    assert wh_questions("It employed 40 people.") == [("It employed how many people?", "40")]


def test_questions_say_whom_a_pronoun_means_and_stop_at_the_clause():
    from chatapp.training.knowledge import resolve_pronoun

    assert resolve_pronoun("Its founder was Anna Berg.", "Brekke Mill", []) == "Brekke Mill's founder was Anna Berg."
    assert resolve_pronoun("She retired in 1901.", "Brekke Mill", ["Anna Berg built it in 1872."]) == \
        "Anna Berg retired in 1901."
    assert resolve_pronoun("She retired in 1901.", "", ["nobody named here."]) == "She retired in 1901."
    assert resolve_pronoun("Itself a mill.", "Brekke Mill", []) == "Itself a mill."
    pairs = dict((a, q) for q, a in wh_questions("Her successor, the engineer Ragnar Solberg, had run the mill for years."))
    assert pairs == {"Ragnar Solberg": "Her successor, the engineer who?"}  # cut at the clause's end
    assert wh_questions("Brekke Mill's founder was Anna Berg.") == [("Brekke Mill's founder was who?", "Anna Berg")]


def test_question_variants_front_the_question_word():
    from chatapp.training.knowledge import question_variants

    assert question_variants("The current managing director is who?") == ["Who is the current managing director?"]
    assert question_variants("Her successor, the engineer who?") == ["Who was her successor?"]
    assert question_variants("Brekke Mill's best-selling product is now what?") == \
        ["What is Brekke Mill's best-selling product now?"]
    assert question_variants("Anna Berg was succeeded as miller by who?") == ["Who succeeded Anna Berg as miller?"]
    assert question_variants("The mill at Brekke was built in what year by Anna Berg?") == []  # nothing to front
    # each variant trains with the same answer as its question, under the `question` kind
    doc = "# Mill\n\nAnna Berg ran the mill until 1901. She was succeeded as miller by Tomas Vik.\n"
    examples = template_examples([("mill.md", doc)], KnowledgeConfig(variants=True))
    answers = {e["messages"][0]["content"]: e["messages"][1]["content"] for e in examples if e["kind"] == "question"}
    assert answers["Who succeeded Anna Berg as miller?"] == answers["Anna Berg was succeeded as miller by who?"]
    without = template_examples([("mill.md", doc)], KnowledgeConfig())  # off by default (unmeasured)
    assert "Who succeeded Anna Berg as miller?" not in [e["messages"][0]["content"] for e in without
                                                       if "messages" in e]


def test_names_in_many_sentences_get_no_entity_questions():
    doc = ("# Notes\n\nOrla Mills opened in 1901. Orla Mills sold flour to Varnholm. "
           "Orla Mills closed in 1950.\n")
    examples = template_examples([("n.md", doc)], KnowledgeConfig())
    asked = [e["messages"][0]["content"] for e in examples if e["kind"] == "entity"]
    assert not any("Orla Mills" in q for q in asked)  # three answers to one question teach the wrong one
    assert any("Varnholm" in q for q in asked) and any("1901" in q for q in asked)


def test_template_examples_cover_every_fact_without_copying_answers_into_questions():
    examples = template_examples([("mill.md", DOC)], KnowledgeConfig(rounds=2))
    kinds = {e["kind"] for e in examples}
    assert kinds == {"raw", "entity", "question", "cloze", "recall"}
    raw = [e for e in examples if e["kind"] == "raw"]
    assert len(raw) == 1 and raw[0]["text"].startswith("The Brekke mill\n\n") and "1872" in raw[0]["text"]
    for e in examples:
        if e["kind"] in ("entity", "question"):
            question, answer = e["messages"][0]["content"], e["messages"][1]["content"]
            assert e["messages"][0]["role"] == "user" and e["messages"][1]["role"] == "assistant"
            assert answer in sentences(answer) or answer.endswith(".")
    questions = [e for e in examples if e["kind"] == "question"]
    for e in questions:  # the blank's answer is in the reply, not in the question
        q, a = e["messages"][0]["content"], e["messages"][1]["content"]
        missing = [p for p in key_phrases(a) if p not in q]
        assert missing and all(matched_answer(a, [p]) for p in missing)
    assert len(questions) == 5  # one per fact, not repeated in the second round
    about_1872 = [e for e in examples if e["kind"] == "entity" and "1872" in e["messages"][0]["content"]]
    assert len(about_1872) == 2  # one per round, in a fresh wording where the templates allow
    assert template_examples([("mill.md", DOC)], KnowledgeConfig(seed=3)) == \
        template_examples([("mill.md", DOC)], KnowledgeConfig(seed=3))


def test_loss_is_on_answers_only():
    tokenizer = tiny_tokenizer()
    example = {"messages": [{"role": "user", "content": "where did the cat sit?"},
                            {"role": "assistant", "content": "the cat sat on the warm mat."}]}
    ids, mask = encode_example(example, tokenizer)
    learned = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert "the cat sat on the warm mat." in learned and "where did" not in learned
    assert learned.replace("the cat sat on the warm mat.", "").strip() in ("", "<|im_end|>") or \
        len(learned) < len("the cat sat on the warm mat.") + 16  # only the end-of-turn marker besides
    text_ids, text_mask = encode_example({"text": "the cat sat."}, tokenizer)
    assert all(text_mask) and len(text_ids) == len(text_mask)
    two = group_turns([example, example], 2)
    assert len(two) == 1 and len(two[0]["messages"]) == 4
    ids2, mask2 = encode_example(two[0], tokenizer)
    assert tokenizer.decode([t for t, m in zip(ids2, mask2) if m]).count("the cat sat on the warm mat.") == 2


def test_examples_round_trip_through_the_jsonl(tmp_path):
    examples = build_examples([("mill.md", DOC)], KnowledgeConfig(generate=False))
    path = write_examples(examples, tmp_path / "sub" / "examples.jsonl")
    assert read_examples(path) == examples
    assert not list((tmp_path / "sub").glob(".examples.jsonl.*"))  # the temporary file is gone


@pytest.mark.parametrize("line, problem", [
    ("{oops", "not valid JSON"),
    ('{"kind": "raw"}', 'exactly one of "messages"'),
    ('{"text": "a", "messages": []}', 'exactly one of "messages"'),
    ('{"text": "   "}', "'text' must be non-empty"),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant message"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}', "role 'robot'"),
])
def test_bad_example_lines_name_file_and_line(tmp_path, line, problem):
    path = tmp_path / "examples.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        read_examples(path)
    assert f"{path}:2: " in str(info.value) and problem in str(info.value)


def test_pack_examples_keeps_examples_whole_and_fills_rows():
    examples = [([i] * n, [False] * (n // 2) + [True] * (n - n // 2)) for i, n in enumerate([6, 9, 3, 4, 2, 7], 1)]
    blocks = pack_examples(examples, block_size=9, pad_id=0)
    assert blocks.tokens.shape[1] == 10
    for i, (ids, mask) in enumerate(examples, 1):
        rows = [r for r in range(len(blocks)) if (blocks.tokens[r] == i).any()]
        assert len(rows) == 1  # whole, in one row
        row = blocks.tokens[rows[0]]
        where = (row == i).nonzero().flatten()
        assert len(where) == len(ids) and int(where[-1] - where[0]) == len(ids) - 1
        assert blocks.loss_mask[rows[0]][where].tolist() == mask
    assert int((blocks.tokens != 0).sum()) == 31 and len(blocks) == 4  # 31 tokens, rows of 10
    assert not blocks.loss_mask[blocks.tokens == 0].any()  # padding never learned
    long = pack_examples([(list(range(1, 26)), [True] * 25)], block_size=9, pad_id=0)
    assert long.tokens[0].tolist() == list(range(1, 11)) and long.tokens[1, 0] == 10  # overlap by one
    assert pack_examples([], 9, 0) is None


def test_split_keeps_all_raw_text_for_training():
    examples = build_examples([("mill.md", DOC)], KnowledgeConfig(generate=False))
    train, val = split_examples(examples, 0.3, seed=0)
    assert val and all("messages" in e for e in val)
    assert [e for e in examples if "text" in e] == [e for e in train if "text" in e]
    assert len(train) + len(val) == len(examples)


def test_generated_examples_keep_right_answers_and_replace_wrong_ones():
    prompts = []

    def ask(prompt):
        prompts.append(prompt)
        return "It was Anna Berg." if "by who?" in prompt else "No idea."

    examples = generated_examples(ask, [("mill.md", DOC)], KnowledgeConfig())
    by_question = {e["messages"][0]["content"]: e["messages"][1]["content"] for e in examples}
    assert by_question["The mill at Brekke was built in 1872 by who?"] == "It was Anna Berg."
    # a wrong reply is replaced by the sentence, with the one before it when it opens with a pronoun
    assert by_question["It employed how many people?"] == ("The mill at Brekke was built in 1872 by Anna Berg. "
                                                               "It employed 40 people.")

    def small_context(prompt):
        if "The Brekke mill" in prompt:
            raise ValueError("the prompt has 149 tokens but the context holds 128")
        return "Anna Berg built it."

    fallback = generated_examples(small_context, [("mill.md", DOC)], KnowledgeConfig())
    assert [e["messages"][1]["content"] for e in fallback][0] == "Anna Berg built it."  # asked with the sentence
    assert len(prompts) == len(examples) == 3  # one question per sentence with a fact
    for prompt, e in zip(prompts, examples):  # the passage (title and paragraph) was in front of the model
        assert prompt.startswith("Answer the question using the text below.\n\nThe Brekke mill\n\n")
        assert prompt.endswith("Question: " + e["messages"][0]["content"]) and e["kind"] == "generated"
        assert "The Brekke mill" not in e["messages"][0]["content"]  # asked without the passage


def test_passage_examples_ask_with_the_answering_paragraph_among_others():
    from chatapp.engine.retrieval import INSTRUCTION
    from chatapp.training.knowledge import passage_examples

    other = "# Old Varnholm\n\nThe harbour of Varnholm froze in 1901. Ships waited for weeks.\n"
    examples = passage_examples([("mill.md", DOC), ("harbour.md", other)], KnowledgeConfig(distractors=1))
    mill = [e for e in examples if e["source"] == "mill.md"]
    assert mill and all(e["kind"] == "passage" for e in examples)
    first = mill[0]["messages"]
    prompt, answer = first[0]["content"], first[1]["content"]
    assert INSTRUCTION in prompt and prompt.startswith("Question: ")
    assert "The harbour of Varnholm froze in 1901." in prompt  # the other document's paragraph
    assert "The mill at Brekke was built in 1872 by Anna Berg." in prompt  # the answering one
    phrase, _, sentence = answer.partition(". ")  # the phrase asked for, then the sentence (answer_first)
    assert sentence == "The mill at Brekke was built in 1872 by Anna Berg."
    question = prompt.rsplit("Question: ", 1)[1]
    assert (question, phrase) in wh_questions(sentence)  # a question the answer answers
    # The answering paragraph is not always first: both places occur over the examples.
    firsts = {e["messages"][0]["content"].split(INSTRUCTION + "\n\n", 1)[1].startswith("The harbour")
              for e in examples}
    assert firsts == {True, False}
    ids, mask = encode_example(mill[0], tiny_tokenizer())
    assert any(mask) and not all(mask)  # the loss is on the answer only


def test_answer_first_leads_with_the_phrase_asked_for():
    from chatapp.training.knowledge import passage_examples

    plain = template_examples([("mill.md", DOC)], KnowledgeConfig(answer_first=False))
    first = template_examples([("mill.md", DOC)], KnowledgeConfig(answer_first=True))
    assert [e["kind"] for e in plain] == [e["kind"] for e in first]
    pairs = [(a, b) for a, b in zip(plain, first) if a["kind"] == "question"]
    assert pairs
    for a, b in pairs:
        question, said = b["messages"][0]["content"], b["messages"][1]["content"]
        assert question == a["messages"][0]["content"]
        phrase, _, sentence = said.partition(". ")
        assert sentence == a["messages"][1]["content"]  # then the sentence, as without the option
        assert phrase not in question and phrase in sentence  # the blank the question asks for
    assert {b["messages"][1]["content"].split(". ")[0] for _, b in pairs} >= {"1872", "Anna Berg", "Varnholm"}
    for a, b in zip(plain, first):  # other kinds unchanged
        if a["kind"] != "question":
            assert a == b
    other = "# Old Varnholm\n\nThe harbour of Varnholm froze in 1901. Ships waited for weeks.\n"
    docs = [("mill.md", DOC), ("harbour.md", other)]
    for a, b in zip(passage_examples(docs, KnowledgeConfig(distractors=1, answer_first=False)),
                    passage_examples(docs, KnowledgeConfig(distractors=1, answer_first=True))):
        assert a["messages"][0] == b["messages"][0]
        assert b["messages"][1]["content"].endswith(". " + a["messages"][1]["content"])
    for a, b in zip(passage_examples(docs, KnowledgeConfig(passage_layout="library", answer_first=False)),
                    passage_examples(docs, KnowledgeConfig(passage_layout="library", answer_first=True))):
        assert a["messages"][0] == b["messages"][0]
        phrase, _, sentence = b["messages"][1]["content"].partition(". ")
        assert sentence == a["messages"][1]["content"] and phrase in sentence


def test_passage_absent_leaves_the_answering_paragraph_out_of_some_examples():
    from chatapp.training.knowledge import passage_examples

    docs = MILL_DOCS + [("lake.md", "# The lake\n\nThe lake of Lom is 40 metres deep. Trout were put in it in 1950.\n")]
    full = passage_examples(docs, KnowledgeConfig(distractors=2))
    some = passage_examples(docs, KnowledgeConfig(distractors=2, passage_absent=0.5))
    assert len(full) == len(some) >= 8
    left_out = 0
    for a, b in zip(full, some):
        answer = a["messages"][1]["content"]
        assert b["messages"][1]["content"] == answer  # answered all the same, from what it learned
        if a != b:
            left_out += 1
            prompt = b["messages"][0]["content"]
            assert prompt.startswith(a["messages"][0]["content"].split("\n\n")[0])  # the same question
            assert not any(s in prompt for s in sentences(answer))  # no sentence of the answer in front
            assert prompt.count("\n\n") == a["messages"][0]["content"].count("\n\n") - 1  # one passage fewer
    assert 0 < left_out < len(full)
    with pytest.raises(ValueError, match="passage_absent"):
        KnowledgeConfig(passage_absent=1.0)


MILL_DOCS = [
    ("mill.md", "# The Brekke mill\n\nThe mill at Brekke was built in 1872 by Anna Berg. It employed 40 people "
                "and ground rye for the farms of the valley.\n\nAnna Berg ran the mill until 1901. She was "
                "succeeded by her nephew Tomas Vik, who added a second wheel.\n\nThe mill burned down in 1930 "
                "and was rebuilt in stone by the Vik family.\n"),
    ("harbour.md", "# Old Varnholm\n\nThe harbour of Varnholm froze in 1901. Ships waited for weeks.\n\n"
                   "The mill sold its flour to Varnholm bakers.\n"),
]


def _use_time_prompt(folder, question):
    """The user turn chat with documents builds for `question` over the library of `folder`, less
    its "Most relevant" line (chat adds it; the recipe trains without it: engine/relevant.py)."""
    from chatapp.engine.retrieval import fit_passages, open_documents, rank_turn

    retriever = open_documents(str(folder), store_path=folder / "store" / "library.sqlite3")
    try:
        hits = rank_turn(None, retriever, [{"role": "user", "content": question}]).hits
        messages, _sources = fit_passages([{"role": "user", "content": question}], hits, 10**9,
                                          lambda m: 0, best_last=True)
    finally:
        retriever.close()
    prompt = messages[-1]["content"]
    shown, _, repeated = prompt.rpartition("\n\nQuestion: ")
    body, line, _relevant = shown.rpartition("\n\nMost relevant: ")
    assert line, "chat with documents shows the best-matching sentence before the repeated question"
    return f"{body}\n\nQuestion: {repeated}"


def test_library_passage_examples_are_asked_as_chat_with_documents_asks(tmp_path):
    from chatapp.engine.retrieval import INSTRUCTION
    from chatapp.training.knowledge import passage_examples

    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in MILL_DOCS:
        (folder / name).write_text(text, encoding="utf-8")
    examples = passage_examples(MILL_DOCS, KnowledgeConfig(passage_layout="library"))
    assert examples and all(e["kind"] == "passage" for e in examples)
    same_document_distractor = 0
    for e in examples:
        prompt, answer = e["messages"][0]["content"], e["messages"][1]["content"]
        question = prompt.rsplit("Question: ", 1)[1]
        assert INSTRUCTION in prompt and prompt.startswith(f"Question: {question}\n\n")
        # exactly the library's passages for that question, laid out as at use time (best last)
        assert prompt == _use_time_prompt(folder, question)
        # the answer is the phrase asked for (answer_first), then one sentence of the documents
        # holding the fact, not its neighbours
        phrase, _, answer = answer.partition(". ")
        assert answer.count(". ") == 0 and answer.endswith(".")
        facts = [p for q, p in wh_questions(answer) if q == question] or \
                [p for src, text in MILL_DOCS for s in sentences(text.replace("\n", " "))
                 for q, p in wh_questions(s) if q == question]
        assert facts and facts[0] in answer and phrase == facts[0]
        # the best passage (last) holds the answer's words
        last = prompt.rsplit("\n\n", 2)[1]
        assert facts[0] in last
        if e["source"] == "mill.md" and prompt.count("The mill") >= 2:
            same_document_distractor += 1
    assert same_document_distractor  # near misses of the same document beside the answer
    ids, mask = encode_example(examples[0], tiny_tokenizer())
    assert any(mask) and not all(mask)  # the loss is on the answer only
    answer_ids = tiny_tokenizer().encode(examples[0]["messages"][1]["content"])
    assert sum(mask) <= len(answer_ids) + 4  # the answer (and the turn's end) only, no prompt token


def test_library_passage_examples_put_the_fact_in_when_the_search_misses_it():
    from chatapp.documents.library import SearchHit
    from chatapp.training.knowledge import passage_examples

    class Unhelpful:  # a search that never finds the sentence asked about
        def search(self, query, limit):
            return [SearchHit(n, "harbour.md", "", 0, 10, "Ships waited for weeks.", 1.0 / (n + 1), bm25=1.0)
                    for n in range(limit)]

    doc = [("mill.md", MILL_DOCS[0][1])]
    examples = passage_examples(doc, KnowledgeConfig(passage_layout="library", passages=3),
                                retriever=Unhelpful())
    assert examples
    for e in examples:
        prompt = e["messages"][0]["content"]
        blocks = prompt.split("\n\n")
        # three passages: two of the search's, then the sentence's own window nearest the question
        assert blocks[2:4] == ["Ships waited for weeks.", "Ships waited for weeks."]
        assert e["messages"][1]["content"].partition(". ")[2] in blocks[4]  # the phrase, then the sentence
        assert blocks[5].startswith("Question: ")


@pytest.mark.parametrize("bad", [{"passage_layout": "chunks"}, {"passages": 0}, {"passage_questions": 0},
                                 {"distractors": -1}])
def test_bad_passage_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        KnowledgeConfig(**bad)


def test_auto_quiz_questions_blank_a_fact():
    questions = quiz_questions([("mill.md", DOC)], limit=10)
    assert questions
    for q in questions:
        assert "____" in q.question and q.answers[0] not in q.question.split('"', 1)[1]


def test_auto_steps_sizes_the_run_to_the_data():
    def steps(n_blocks, step_s):
        return auto_steps(n_blocks=n_blocks, blocks_per_step=4, step_s=step_s, budget_s=600, epochs=8, min_steps=60)

    assert steps(10, None) == 60  # a small folder: the floor, enough steps to learn
    assert steps(10, 5.0) == 60  # ... when they fit in the budget
    assert steps(10, 20.0) == 30  # the budget wins over the floor: 600 s at 20 s a step
    assert steps(10, 1000.0) == 1  # ... down to one step
    assert steps(100, 1.0) == 200  # 8 passes fit in the budget
    assert steps(10_000, 2.0) == 300  # a large folder: bounded by the budget
    assert steps(10_000, None) == 20_000


# -- end to end --------------------------------------------------------------------------
TINY_DOCS = {"a.md": "# Anna Berg\n\nthe cat sat on the warm mat in Brekke. a dog ran to the old red barn in 1872.\n",
             "b.md": "# Old Varnholm\n\nbirds sing in the tall green trees of Varnholm. we read books by the quiet river.\n"}


def run_cli(argv):
    from chatapp.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("knowledge")
    docs = root / "docs"
    docs.mkdir()
    for name, text in TINY_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return {"model": tiny_llama_folder(root / "model", max_len=512), "docs": docs, "root": root}


def test_train_with_the_knowledge_recipe_end_to_end(tiny):
    out = tiny["root"] / "out"
    code, stdout, stderr = run_cli(["train", "--model", tiny["model"], "--data", tiny["docs"], "--out", out,
                                    "--recipe", "knowledge", "--progress", "jsonl", "--block-size", "64",
                                    "--lr", "1e-2", "--threads", "1", "--time-budget", "5",
                                    "--lora-targets", "q_proj,v_proj,up_proj,down_proj"])
    events = read_events(stdout)
    assert code == 0, stderr
    made = [e for e in events if e["event"] == "examples" and e.get("path")]
    assert len(made) == 1 and Path(made[0]["path"]) == out / "knowledge_examples.jsonl"
    assert set(made[0]["kinds"]) >= {"raw", "entity", "question", "generated"}
    assert any(e["event"] == "examples" and not e.get("path") for e in events)  # progress while the model answers
    dataset = next(e for e in events if e["event"] == "dataset")
    assert dataset["kind"] == "knowledge" and dataset["val_examples"] > 0
    estimate = next(e for e in events if e["event"] == "estimate")
    train_blocks = dataset["train_blocks"]
    # --epochs auto (the default): 8 passes and at least 60 steps, bounded by what is left of the
    # 5-minute budget for the whole run (a tiny model's steps all fit)
    assert estimate["time_budget_s"] == 300 and estimate["total_steps"] == 60
    end = events[-1]
    assert end["status"] == "completed" and end["val_loss_after"] < end["val_loss_before"]
    notes = json.loads((out / "adapter_config.json").read_text())  # a PEFT adapter was written
    assert notes["r"] == 32  # the knowledge recipe's rank: only the layers were given

    # The examples file is reused as it is: the same data, no model answers made again.
    again = tiny["root"] / "again"
    code, stdout, _ = run_cli(["train", "--model", tiny["model"], "--data", tiny["docs"], "--out", again,
                               "--examples", out / "knowledge_examples.jsonl", "--progress", "jsonl",
                               "--block-size", "64", "--max-steps", "2", "--threads", "1"])
    events2 = read_events(stdout)
    assert code == 0
    assert not any(e["event"] == "examples" and not e.get("path") for e in events2)
    assert next(e for e in events2 if e["event"] == "dataset")["fingerprint"] == dataset["fingerprint"]


def test_text_recipe_and_chat_files(tiny, tmp_path):
    from helpers.tiny_hf import write_chat_file

    code, stdout, _ = run_cli(["train", "--model", tiny["model"], "--data", tiny["docs"], "--out", tmp_path / "t",
                               "--recipe", "text", "--progress", "jsonl", "--block-size", "32", "--max-steps", "1",
                               "--threads", "1"])
    events = read_events(stdout)
    assert code == 0 and next(e for e in events if e["event"] == "dataset")["kind"] == "documents"
    assert not any(e["event"] == "examples" for e in events)
    chat = write_chat_file(tmp_path / "chat.jsonl")
    code, stdout, _ = run_cli(["train", "--model", tiny["model"], "--data", chat, "--out", tmp_path / "k",
                               "--recipe", "knowledge", "--progress", "jsonl", "--max-steps", "1"])
    end = read_events(stdout)[-1]
    assert code == 1 and end["status"] == "failed" and "--recipe text" in end["reason"]
    code, _, stderr = run_cli(["train", "--model", tiny["model"], "--data", chat, "--out", tmp_path / "e",
                               "--epochs", "zero"])
    assert code == 2 and "expected a number of passes or 'auto'" in stderr


def test_quiz_command_on_a_tiny_model(tiny, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "where did the cat sit?", "answers": ["mat"]}) + "\n")
    code, stdout, _ = run_cli(["quiz", "--model", tiny["model"], "--questions", questions, "--json",
                               "--max-new-tokens", "8", "--threads", "1"])
    result = json.loads(stdout)
    assert code == 0 and result["total"] == 1 and result["score"] in (0, 1)
    assert result["questions"][0]["correct"] == (matched_answer(result["questions"][0]["reply"], ["mat"]) is not None)
    saved = tmp_path / "auto.jsonl"
    code, stdout, _ = run_cli(["quiz", "--model", tiny["model"], "--questions", "auto", "--data", tiny["docs"],
                               "--save-questions", saved, "--json", "--max-new-tokens", "4", "--threads", "1"])
    assert code == 0 and json.loads(stdout)["total"] == len(saved.read_text().splitlines()) > 0
    code, _, stderr = run_cli(["quiz", "--model", tiny["model"], "--questions", "auto"])
    assert code == 1 and "--data" in stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    code, _, stderr = run_cli(["quiz", "--model", tiny["model"], "--questions", bad])
    assert code == 1 and f"{bad}:1: missing 'answers'" in stderr
