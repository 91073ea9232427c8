"""ChatBackend with documents: a real tiny model and a small library, as the window's worker runs it."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from helpers.tiny_hf import SENTENCES, tiny_llama_folder  # noqa: E402

from chatapp.documents.library import LibraryStore  # noqa: E402
from chatapp.engine.backend import Backend, ChatBackend, DocumentsChoice, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=8)


def assert_prompt_is_what_the_model_was_fed(backend, done):
    fed = backend.engine._cached[:done.stats["prompt_tokens"]]  # the ids in the KV cache, prompt first
    assert backend.engine.tokenizer.decode(fed, skip_special_tokens=False) == done.prompt


@pytest.fixture(scope="module")
def backend_and_library(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs-backend")
    folder = tiny_llama_folder(root / "model", max_len=256)
    backend = ChatBackend()
    backend.load(str(folder), LoadOptions(device="cpu", context_len=256, threads=1))
    docs = root / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nthe cat sat on the warm mat. the cat sat on the warm mat.\n")
    (docs / "dogs.md").write_text("# Dogs\n\na dog ran to the old red barn.\n")
    for i in range(6):  # more matching text than the context holds
        (docs / f"long{i}.md").write_text(f"# Long {i}\n\n" + " ".join(SENTENCES) * 2 + " the cat\n")
    db = root / "library.sqlite3"
    with LibraryStore(db) as store:
        store.add("pets", [docs])
        store.index("pets")
    return backend, DocumentsChoice(str(db), "pets")


def test_a_reply_with_documents_carries_its_sources_and_the_exact_prompt(backend_and_library):
    backend, documents = backend_and_library
    assert isinstance(backend, Backend)
    messages = [{"role": "user", "content": "where did the cat sit?"}]
    text = "".join(backend.stream(messages, "be brief", GREEDY, documents=documents))
    done = backend.finished()
    assert done.text == text and done.library == "pets"
    assert done.sources, "the passage about the cat fits and is given"
    assert done.sources[0].path.endswith("cats.md") and done.sources[0].heading == "Cats"
    assert [s.number for s in done.sources] == list(range(1, len(done.sources) + 1))
    # the passage between the question and its repetition, as text: its number and file are shown
    # with the reply, not given to the model
    assert "the cat sat on the warm mat." in done.prompt and done.prompt.count("Question: where did the cat sit?") == 2
    assert "[1]" not in done.prompt and "cats.md" not in done.prompt
    assert "# Cats" not in done.prompt  # heading lines stay out of the prompt (the source keeps them)
    assert done.sources[0].text.startswith("# Cats")
    assert "Question: where did the cat sit?" in done.prompt
    assert_prompt_is_what_the_model_was_fed(backend, done)


def test_the_prompt_never_exceeds_the_context_and_left_out_passages_are_counted(backend_and_library):
    backend, documents = backend_and_library
    history = [{"role": "user", "content": "the cat?"}, {"role": "assistant", "content": "on the mat."},
               {"role": "user", "content": "the cat and the dog and the sun and the birds?"}]
    "".join(backend.stream(history, "", GREEDY, documents=documents))
    done = backend.finished()
    reserve = min(GREEDY.max_new_tokens, 256 // 4)
    assert done.stats["prompt_tokens"] + reserve <= 256
    assert done.left_out >= 1  # six long passages cannot all fit in 256 tokens
    assert len(done.sources) + done.left_out <= 8


def test_a_reply_without_documents_shows_its_prompt_and_no_sources(backend_and_library):
    backend, _documents = backend_and_library
    "".join(backend.stream([{"role": "user", "content": "hello"}], "sys", GREEDY))
    done = backend.finished()
    assert done.sources == () and done.left_out == 0 and done.library == ""
    assert "hello" in done.prompt and "sys" in done.prompt
    assert_prompt_is_what_the_model_was_fed(backend, done)


def test_a_library_that_is_gone_fails_with_its_name(backend_and_library):
    backend, documents = backend_and_library
    gone = DocumentsChoice(documents.db_path, "nothere")
    with pytest.raises(LookupError, match="no library named 'nothere'"):
        list(backend.stream([{"role": "user", "content": "hi"}], "", GREEDY, documents=gone))


def test_a_reply_with_documents_records_token_probabilities_under_the_prompt_shown(backend_and_library):
    """The token view of a grounded reply: each token's log-probability and alternatives, as the
    model gave them after exactly the prompt "What the model saw" shows (passages included)."""
    import math

    import torch

    backend, documents = backend_and_library
    messages = [{"role": "user", "content": "where did the cat sit?"}]
    seen_while_streaming = []
    for _ in backend.stream(messages, "be brief", GREEDY, documents=documents, logprobs=3):
        seen_while_streaming = list(backend.streamed_logprobs())
    done = backend.finished()
    assert done.sources and "the cat sat on the warm mat." in done.prompt
    assert_prompt_is_what_the_model_was_fed(backend, done)
    reply_ids = backend.reply.token_ids
    assert len(done.logprobs) == len(reply_ids) == len(seen_while_streaming) > 0
    prompt_ids = backend.engine._cached[:done.stats["prompt_tokens"]]
    with torch.no_grad():  # the same tokens scored afresh, without the cache: logits after that prompt
        logits = backend.loaded.model(torch.tensor([prompt_ids + reply_ids]))[0].float()
    expected = torch.log_softmax(logits, dim=-1)
    start = len(prompt_ids) - 1
    for i, (entry, token) in enumerate(zip(done.logprobs, reply_ids)):
        assert entry["id"] == token
        assert math.isclose(entry["logprob"], expected[start + i, token].item(), abs_tol=1e-4)
        assert len(entry["top"]) == 3 and entry["top"][0]["id"] == int(expected[start + i].argmax())
        assert entry["top"][0]["id"] == token  # greedy picks the most probable


def test_continuing_a_grounded_reply_from_an_alternative_starts_with_that_token(backend_and_library):
    backend, documents = backend_and_library
    messages = [{"role": "user", "content": "where did the cat sit?"}]
    "".join(backend.stream(messages, "", GREEDY, documents=documents, logprobs=3))
    first = backend.finished()
    alternative = first.logprobs[1]["top"][1]["id"]  # the second most probable at the second token
    forced = (first.logprobs[0]["id"], alternative)
    "".join(backend.stream(messages, "", GREEDY, documents=documents, logprobs=3, forced=forced))
    again = backend.finished()
    assert tuple(backend.reply.token_ids[:2]) == forced and again.sources == first.sources
    assert again.logprobs[1]["sampled_prob"] is None  # taken as given, not sampled
