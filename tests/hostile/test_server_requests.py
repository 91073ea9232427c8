"""The API server's request bodies as an attacker writes them: nested a million deep, numbers of
thousands of digits, lone surrogates, wrong types and values anywhere. Each ends in a 400 in
OpenAI's error shape naming the field, in bounded time, and the server keeps serving; the
model thread is never asked for anything (no model is loaded in these tests)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("aiohttp")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from chatapp.server.app import ApiServer, ModelIds, ServerConfig  # noqa: E402
from chatapp.server.protocol import (MAX_NUMBER_DIGITS, ApiError, JobRequest, Limits, decode_body,  # noqa: E402
                                     parse_chat, parse_completion)

MODEL = "tiny"
USER = [{"role": "user", "content": "hi"}]


def _post_all(bodies: list[bytes], path: str = "/v1/chat/completions") -> list[tuple[int, dict, float]]:
    """POST each raw body to a server whose model thread records what it is asked to run."""
    submitted = []

    async def go():
        server = ApiServer(ServerConfig(port=0), submitted.append, lambda: ModelIds(base=MODEL))
        async with TestClient(TestServer(server.build_app())) as client:
            answers = []
            for body in bodies:
                start = time.perf_counter()
                response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
                answers.append((response.status, await response.json(), time.perf_counter() - start))
            models = await client.get("/v1/models")  # still serving
            assert models.status == 200 and (await models.json())["data"][0]["id"] == MODEL
            return answers

    answers = asyncio.run(go())
    assert submitted == []  # nothing reached the model thread
    return answers


def _body(**fields) -> bytes:
    return json.dumps({"model": MODEL, "messages": USER, **fields}).encode()


HOSTILE = [  # raw body, the param named (None: the body itself), words of the message
    (b"[" * 500_000 + b"]" * 500_000, None, "nested more than the 64 levels allowed"),
    (b'{"model": "tiny", "messages": ' + b"[" * 100 + b"]" * 100 + b"}", None, "nested more than the 64 levels allowed"),
    (b'{"a": ' * 140_000 + b"1" + b"}" * 140_000, None, "nested more than the 64 levels allowed"),
    (b"[" * 64 + b"]" * 64, None, "the request body must be a JSON object"),  # deep enough, still read
    (b'{"model": "tiny", "seed": ' + b"9" * 5000 + b', "messages": []}', None,
     f"a number of 5,000 digits (at most {MAX_NUMBER_DIGITS})"),
    (b'{"model": "tiny", "messages": [], "x": -' + b"1" * 200 + b"}", None, "a number of 200 digits"),
    (b"\xff\xfe{}", None, "not UTF-8"),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content",
     "lone surrogate (U+D800) at character 1"),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}',
     "messages[0].content", "lone surrogate (U+DFFF)"),
    (b'{"model": "tiny\\ud83d", "messages": [{"role": "user", "content": "x"}]}', "model", "'model' is not valid Unicode text: a lone surrogate"),
    (b'{"model": "tiny", "stop": ["ok", "\\udc00"], "messages": [{"role": "user", "content": "x"}]}',
     "stop", "lone surrogate (U+DC00)"),
    (_body(temperature=10**400), None, "a number of 401 digits (at most 100)"),
    (_body(temperature=10**99), "temperature", "between 0 and 2"),
    (_body(top_p=-10**99), "top_p", "between 0 and 1"),
    (_body(temperature=1e400), "temperature", "must be a number"),  # json.dumps writes Infinity
    (_body(max_tokens=10**18), "max_tokens", "between 1 and 4096"),
    (_body(max_tokens=-1), "max_tokens", "between 1 and 4096"),
    (_body(max_completion_tokens=0), "max_completion_tokens", "between 1 and 4096"),
    (_body(n=10**6), "n", "'n' must be 1"),
    (_body(n=-3), "n", "at least 1"),
    (_body(n="2"), "n", "whole number"),
    (_body(top_k=-1), "top_k", "at least 0"),
    (_body(seed=-(2**64)), "seed", "at least"),
    (_body(logprobs=True, top_logprobs=10**9), "top_logprobs", "between 0 and 20"),
    (_body(logprobs=True, top_logprobs=-1), "top_logprobs", "between 0 and 20"),
    (_body(stream="yes"), "stream", "true or false"),
    (_body(stream_options=[1]), "stream_options", "must be an object"),
    (_body(stop=["x"] * 1000), "stop", "up to 4"),
    (_body(stop={"a": 1}), "stop", "up to 4"),
    (_body(documents=["lib"]), "documents", "name of a document library"),
    (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": {"text": "x"}}]}).encode(),
     "messages[0].content", "must be text"),
    (json.dumps({"model": MODEL, "messages": [None]}).encode(), "messages[0]", "must be an object"),
    (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x"}] * 3 + [7]}).encode(),
     "messages[3]", "must be an object"),
    (json.dumps({"model": 5, "messages": USER}).encode(), "model", "'model' is required"),
]


def test_hostile_chat_bodies_get_a_400_naming_the_field_quickly_and_the_server_keeps_serving():
    answers = _post_all([raw for raw, _, _ in HOSTILE])
    for (raw, param, words), (status, payload, seconds) in zip(HOSTILE, answers):
        error = payload["error"]
        assert status == 400, (raw[:80], payload)
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        assert words in error["message"] and error["param"] == param, (raw[:80], error)
        assert seconds < 2.0, (raw[:80], seconds)


def test_completion_bodies_with_hostile_fields():
    cases = [
        ({"prompt": "\ud800x"}, "prompt", "'prompt' is not valid Unicode text: a lone surrogate (U+D800) at character 0"),
        ({"prompt": "x", "logprobs": 10**9}, "logprobs", "between 0 and 5"),
        ({"prompt": "x", "logprobs": -1}, "logprobs", "between 0 and 5"),
        ({"prompt": ["a", "b"]}, "prompt", "one non-empty string"),
        ({"prompt": [1, 2, 3]}, "prompt", "one non-empty string"),
        ({"prompt": "x", "max_tokens": 2**70}, "max_tokens", "between 1 and 4096"),
        ({"prompt": "x", "echo": 1}, "echo", "true or false"),
    ]
    # json.dumps escapes a lone surrogate as \ud800, which is what a client sends
    answers = _post_all([json.dumps({"model": MODEL, **body}).encode() for body, _, _ in cases], "/v1/completions")
    for (body, param, words), (status, payload, _) in zip(cases, answers):
        assert status == 400 and payload["error"]["param"] == param, (body, payload)
        assert words in payload["error"]["message"], (body, payload)


def test_a_body_over_the_size_limit_is_refused_unread():
    from chatapp.server.app import ServerConfig

    limit = ServerConfig().max_body_bytes  # 32 MiB: room for images as data URLs
    (status, payload, seconds), = _post_all([b'{"model": "tiny", "messages": "' + b"x" * (limit + 1024) + b'"}'])
    assert status == 413 and f"larger than {limit} bytes" in payload["error"]["message"] and seconds < 5


def test_decode_body_bounds_a_megabyte_of_brackets_in_time_and_memory():
    from helpers.bounded import run_bounded

    result = run_bounded("""
        from chatapp.server.protocol import ApiError, decode_body
        import time
        start = time.perf_counter()
        try:
            decode_body(b"[" * (1 << 20))
        except ApiError as exc:
            report(message=exc.message, status=exc.status, took=time.perf_counter() - start)
    """, memory=1 << 30, timeout=60)
    assert result["status"] == 400 and "nested more than the 64 levels allowed" in result["message"]
    assert result["took"] < 0.5 and result["max_rss_mb"] < 400


SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "ok \udbff"])  # st.text() never makes these
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | SURROGATES,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=4), max_leaves=20)
FIELDS = ["model", "messages", "n", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
          "min_p", "stop", "seed", "stream", "stream_options", "logprobs", "top_logprobs", "documents",
          "prompt", "echo", "suffix", "best_of", "presence_penalty", "frequency_penalty", "repetition_penalty"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=8) | JSON,
       chat=st.booleans(), base=st.booleans())
def test_any_json_body_is_a_job_or_a_400(body, chat, base):
    if base and isinstance(body, dict):  # a valid request with hostile fields on top
        body = {"model": MODEL, "messages": USER, "prompt": "p", **body}
    try:
        job = (parse_chat if chat else parse_completion)(body, Limits())
    except ApiError as exc:
        assert exc.status == 400 and exc.message
        return
    assert isinstance(job, JobRequest) and 1 <= job.sampling["max_new_tokens"] <= 4096
    texts = [m["content"] for m in job.messages] + [job.prompt, job.model] + job.sampling["stop"]
    assert all(isinstance(t, str) and t.encode("utf-8") is not None for t in texts)


@given(text=st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_decode_body_reads_any_text_or_says_why_not(text):
    try:
        decode_body(text.encode("utf-8", "surrogatepass"))
    except ApiError as exc:
        assert exc.status == 400 and exc.code == "invalid_json"


def test_a_half_sent_body_does_not_hold_the_servers_stop():
    """A client that sends headers and a piece of its body, then nothing: stopping the server (the
    window's switch, its quit, Ctrl-C) took aiohttp's 60 s shutdown timeout; now a few seconds."""
    import socket

    from chatapp.server.app import SHUTDOWN_TIMEOUT_S

    async def go() -> float:
        server = ApiServer(ServerConfig(port=0), lambda job: None, lambda: ModelIds(base=MODEL))
        await server.start()
        client = socket.create_connection(("127.0.0.1", server.port))
        try:
            client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            await asyncio.sleep(0.3)  # the server has the request under way
            start = time.perf_counter()
            await server.stop()
            return time.perf_counter() - start
        finally:
            client.close()

    assert asyncio.run(go()) < SHUTDOWN_TIMEOUT_S + 3
