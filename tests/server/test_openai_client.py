"""The server driven by the official `openai` client: the same text as `chatapp generate`,
streams that add up, the engine's own log-probabilities, adapters by id, documents, the key."""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")

from chatapp.cli import main  # noqa: E402
from chatapp.engine.sampling import ApiSamplingSettings  # noqa: E402
from chatapp.text.prompt import render_and_encode  # noqa: E402

SEEDED = dict(temperature=0.8, seed=5, max_tokens=12)


def client(server, key="unused"):
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=60)


def cli_result(capsys, model_folder, adapter=None, prompt="the cat sat") -> dict:
    argv = ["generate", "--model", str(model_folder), "--prompt", prompt, "--temperature", "0.8", "--seed", "5",
            "--top-k", "0", "--top-p", "1", "--min-p", "0", "--max-new-tokens", "12", "--threads", "1",
            "--context", "256", "--json"]
    assert main(argv + (["--adapter", str(adapter)] if adapter else [])) == 0
    return json.loads(capsys.readouterr().out)


def test_models_lists_the_model_and_the_model_with_its_adapter(server, adapter_folder):
    ids = [m.id for m in client(server).models.list().data]
    assert ids == [server.ids.base, f"{server.ids.base}+{adapter_folder.name}"]


@pytest.mark.parametrize("with_adapter", [False, True])
def test_completion_equals_chatapp_generate_and_the_stream_adds_up_to_it(server, capsys, model_folder,
                                                                           adapter_folder, with_adapter):
    model = server.ids.adapter if with_adapter else server.ids.base
    cli = cli_result(capsys, model_folder, adapter_folder if with_adapter else None)
    expected = cli["text"]
    api = client(server)
    whole = api.completions.create(model=model, prompt="the cat sat", **SEEDED)
    assert whole.choices[0].text == expected and expected
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (cli["prompt_tokens"], cli["new_tokens"])
    assert whole.choices[0].finish_reason == {"eos": "stop", "stop": "stop", "length": "length"}[cli["finish_reason"]]
    chunks = list(api.completions.create(model=model, prompt="the cat sat", stream=True, **SEEDED))
    assert "".join(c.choices[0].text for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_the_adapter_is_selected_by_id(server):
    api = client(server)
    base = api.completions.create(model=server.ids.base, prompt="the dog", temperature=0, max_tokens=16)
    tuned = api.completions.create(model=server.ids.adapter, prompt="the dog", temperature=0, max_tokens=16)
    assert base.choices[0].text != tuned.choices[0].text
    assert server.backend.has_adapter  # switched back on after the base model's request
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        api.completions.create(model="gpt-4o", prompt="x", max_tokens=2)


def test_two_adapters_under_two_ids_each_answer_as_chatapp_generate_with_it(serve, capsys, model_folder,
                                                                           adapter_folder, second_adapter_folder):
    server = serve(adapters=[str(adapter_folder), str(second_adapter_folder)])
    api = client(server)
    base = server.ids.base
    first, second = f"{base}+{adapter_folder.name}", f"{base}+{second_adapter_folder.name}"
    assert [m.id for m in api.models.list().data] == [base, first, second]
    texts = {}
    for model, folder in ((second, second_adapter_folder), (first, adapter_folder), (base, None),
                          (second, second_adapter_folder)):
        expected = cli_result(capsys, model_folder, folder)["text"]
        texts[model] = api.completions.create(model=model, prompt="the cat sat", **SEEDED).choices[0].text
        assert texts[model] == expected, model
    assert len(set(texts.values())) == 3  # three different models answered
    server.idle()  # the model wears the window's adapter again, and answers as it did
    assert server.backend.worn_adapter == str(adapter_folder) and server.backend.info.adapter == str(adapter_folder)
    assert api.completions.create(model=first, prompt="the cat sat", **SEEDED).choices[0].text == texts[first]


def test_chat_stream_and_usage_match_the_whole_reply(server):
    api = client(server)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the cat?"}]
    whole = api.chat.completions.create(model=server.ids.base, messages=messages, **SEEDED)
    chunks = list(api.chat.completions.create(model=server.ids.base, messages=messages, stream=True,
                                              stream_options={"include_usage": True}, **SEEDED))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert whole.usage.prompt_tokens == len(render_and_encode(server.backend.engine.tokenizer, messages).ids)
    assert whole.choices[0].finish_reason in ("stop", "length")


def test_chat_logprobs_equal_the_engines(server):
    api = client(server)
    messages = [{"role": "user", "content": "a cat"}]
    reply = api.chat.completions.create(model=server.ids.adapter, messages=messages, temperature=0,
                                        max_tokens=10, logprobs=True, top_logprobs=3)
    server.idle()
    engine = server.backend.engine
    ids = render_and_encode(engine.tokenizer, messages).ids
    direct = engine.generate(ids, ApiSamplingSettings(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0,
                                                      repetition_penalty=1.0, max_new_tokens=10), logprobs=3)
    expected = [e for e in direct.logprobs if e.id not in engine.eos_ids]
    got = reply.choices[0].logprobs.content
    assert [g.token for g in got] == [e.token for e in expected]
    assert [g.logprob for g in got] == pytest.approx([e.logprob for e in expected], abs=1e-5)
    assert [t.logprob for g in got for t in g.top_logprobs] == \
        pytest.approx([t.logprob for e in expected for t in e.top], abs=1e-5)
    assert [len(g.top_logprobs) for g in got] == [3] * len(got)
    assert [g.bytes for g in got] == [list(e.bytes) for e in expected]


def test_completion_echo_scores_the_prompt_like_the_engine(server):
    api = client(server)
    reply = api.completions.create(model=server.ids.base, prompt="the cat sat on the mat", echo=True,
                                   logprobs=2, max_tokens=1, temperature=0)
    server.idle()
    engine = server.backend.engine
    ids = engine.tokenizer.encode("the cat sat on the mat")
    server.backend.set_adapter_enabled(False)  # the base model's id was asked for
    try:
        scored = engine.score(ids, top_k=2)
    finally:
        server.backend.set_adapter_enabled(True)
    logprobs = reply.choices[0].logprobs
    assert reply.choices[0].text.startswith("the cat sat on the mat")
    assert logprobs.token_logprobs[0] is None and logprobs.top_logprobs[0] is None
    assert logprobs.token_logprobs[1:len(ids)] == pytest.approx([e.logprob for e in scored], abs=1e-5)
    assert logprobs.tokens[:len(ids)] == [engine.tokenizer.decode([ids[0]])] + [e.token for e in scored]
    assert len(logprobs.tokens) == len(ids) + 1  # and the one new token


def test_documents_answer_with_sources(serve, tmp_path):
    from chatapp.documents.library import LibraryStore

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "cats.md").write_text("# Cats\n\nthe cat sat on the warm mat.", encoding="utf-8")
    db = tmp_path / "library.sqlite3"
    with LibraryStore(db) as store:
        store.add("pets", [folder])
        store.index("pets")
    server = serve(library_db=str(db))
    api = client(server)
    body = dict(model=server.ids.base, messages=[{"role": "user", "content": "where did the cat sit?"}],
                max_tokens=6, temperature=0, extra_body={"documents": "pets"})
    reply = api.chat.completions.create(**body)
    sources = reply.model_extra["sources"]
    assert sources[0]["path"] == str((folder / "cats.md").resolve()) and sources[0]["heading"] == "Cats"
    chunks = list(api.chat.completions.create(stream=True, **body))
    assert chunks[-1].model_extra["sources"] == sources
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == reply.choices[0].message.content
    with pytest.raises(openai.NotFoundError, match="no document library named 'nope'"):
        api.chat.completions.create(**{**body, "extra_body": {"documents": "nope"}})


def test_documents_keep_system_turns_and_give_the_engines_logprobs(serve, tmp_path):
    from chatapp.documents.library import LibraryStore
    from chatapp.engine.retrieval import SEARCH_LIMIT, Source, with_passages

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "cats.md").write_text("# Cats\n\nthe cat sat on the warm mat.", encoding="utf-8")
    (folder / "dogs.md").write_text("# Dogs\n\nthe dog sleeps by the door.", encoding="utf-8")
    db = tmp_path / "library.sqlite3"
    with LibraryStore(db) as store:
        store.add("pets", [folder])
        store.index("pets")
        hits = store.search("pets", "where did the cat sit?", limit=SEARCH_LIMIT)
    server = serve(library_db=str(db))
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"}, {"role": "system", "content": "cite sources"},
                {"role": "user", "content": "where did the cat sit?"}]
    reply = client(server).chat.completions.create(
        model=server.ids.adapter, messages=messages, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2,
        extra_body={"documents": "pets"})
    server.idle()
    engine = server.backend.engine
    sources = [Source(i + 1, h.path, h.heading, h.start, h.end, h.text) for i, h in enumerate(hits)]
    assert [s["path"] for s in reply.model_extra["sources"]] == [s.path for s in sources] and sources
    # both system turns where the client put them (this template allows it), the passages before the question
    expected = messages[:-1] + [{"role": "user", "content": with_passages(messages[-1]["content"], sources)}]
    rendered = render_and_encode(engine.tokenizer, expected)
    ids = rendered.ids
    assert reply.usage.prompt_tokens == len(ids)
    assert engine.tokenizer.decode(ids, skip_special_tokens=False).count("cite sources") == 1
    direct = engine.generate(ids, ApiSamplingSettings(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0,
                                                      repetition_penalty=1.0, max_new_tokens=8), logprobs=2)
    want = [e for e in direct.logprobs if e.id not in engine.eos_ids]
    got = reply.choices[0].logprobs.content
    assert reply.choices[0].message.content == direct.text
    assert [g.token for g in got] == [e.token for e in want] and got
    assert [g.logprob for g in got] == pytest.approx([e.logprob for e in want], abs=1e-5)
    assert [t.logprob for g in got for t in g.top_logprobs] == pytest.approx(
        [t.logprob for e in want for t in e.top], abs=1e-5)


def test_the_key_is_required_when_set(serve):
    server = serve(api_key="s3cret")
    with pytest.raises(openai.AuthenticationError, match="API key"):
        client(server, key="wrong").models.list()
    assert client(server, key="s3cret").models.list().data


def test_streamed_logprobs_and_echo_add_up_to_the_whole_response(server):
    api = client(server)
    chat = dict(model=server.ids.base, messages=[{"role": "user", "content": "a dog"}], temperature=0,
                max_tokens=8, logprobs=True, top_logprobs=2)
    whole = api.chat.completions.create(**chat).choices[0].logprobs.content
    streamed = [e for c in api.chat.completions.create(stream=True, **chat)
                if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole] and whole
    text = dict(model=server.ids.base, prompt="the cat sat", echo=True, logprobs=1, max_tokens=5, temperature=0)
    whole = api.completions.create(**text).choices[0]
    chunks = [c.choices[0] for c in api.completions.create(stream=True, **text)]
    assert "".join(c.text for c in chunks) == whole.text
    assert [t for c in chunks if c.logprobs for t in c.logprobs.tokens] == whole.logprobs.tokens
    assert [o for c in chunks if c.logprobs for o in c.logprobs.text_offset] == whole.logprobs.text_offset
