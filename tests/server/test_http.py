"""The server over raw HTTP: OpenAI's error shape for bad requests (and still serving after),
the SSE wire format, a disconnect cancelling its own generation, a busy port, no model."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlparse

import pytest

from chatapp.cli import main
from chatapp.server.app import ServerStartError


def request(server, method, path, body=None, headers=None, raw: bytes = None):
    url = urlparse(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, "/v1" + path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, payload, response


def error_of(payload: bytes) -> dict:
    error = json.loads(payload)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


BAD = [
    (b"{not json", None, "not valid JSON"),
    (json.dumps([1, 2]).encode(), None, "JSON object"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model", "'model' is required"),
    (json.dumps({"model": "M", "messages": "hi"}).encode(), "messages", "non-empty list"),
    (json.dumps({"model": "M", "messages": [{"role": "robot", "content": "x"}]}).encode(), "messages[0].role",
     "must be one of"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "n": 2}).encode(), "n", "'n' must be 1"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}).encode(),
     "temperature", "must be a number"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**9}).encode(),
     "max_tokens", "between 1 and 4096"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 5}).encode(),
     "stop", "up to 4"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}).encode(),
     "top_logprobs", "needs 'logprobs'"),
]


@pytest.mark.parametrize("raw,param,message", BAD)
def test_malformed_bodies_get_a_400_in_openai_shape_and_the_server_keeps_serving(server, raw, param, message):
    raw = raw.replace(b'"M"', json.dumps(server.ids.base).encode())
    status, payload, _ = request(server, "POST", "/chat/completions", raw=raw)
    assert status == 400
    error = error_of(payload)
    assert message in error["message"] and error["param"] == param and error["type"] == "invalid_request_error"
    status, payload, _ = request(server, "POST", "/chat/completions",
                                 {"model": server.ids.base, "messages": [{"role": "user", "content": "hi"}],
                                  "max_tokens": 2})
    assert status == 200 and json.loads(payload)["choices"][0]["message"]["role"] == "assistant"


def test_bounded_body_unknown_route_and_long_prompt(serve):
    server = serve(max_body_bytes=4096)
    status, payload, _ = request(server, "POST", "/completions",
                                 {"model": server.ids.base, "prompt": "x" * 5000})
    assert status == 413 and "larger than 4096 bytes" in error_of(payload)["message"]
    status, payload, _ = request(server, "GET", "/nothing")
    assert status == 404 and error_of(payload)
    status, payload, _ = request(server, "POST", "/completions", {"model": server.ids.base, "prompt": "cat " * 300})
    assert status == 400 and error_of(payload)["code"] == "context_length_exceeded"


def test_sse_wire_format_ends_in_done_and_cors_is_off(server):
    status, payload, response = request(server, "POST", "/chat/completions",
                                        {"model": server.ids.base, "messages": [{"role": "user", "content": "hi"}],
                                         "max_tokens": 4, "stream": True}, headers={"Origin": "http://evil.test"})
    assert status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    assert response.getheader("Access-Control-Allow-Origin") is None
    events = payload.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and chunks[-1]["choices"][0]["delta"] == {}


def test_cors_when_asked_for(serve):
    server = serve(cors_origins=("http://app.test",))
    _, _, response = request(server, "GET", "/models", headers={"Origin": "http://app.test"})
    assert response.getheader("Access-Control-Allow-Origin") == "http://app.test"


def test_raw_requests_need_the_key_on_every_route(serve):
    server = serve(api_key="k")
    for method, path, body in (("GET", "/models", None), ("POST", "/completions", {"model": "x", "prompt": "y"})):
        status, payload, _ = request(server, method, path, body)
        assert status == 401 and error_of(payload)["code"] == "invalid_api_key"
    status, _, _ = request(server, "GET", "/models", headers={"Authorization": "Bearer k"})
    assert status == 200


def test_a_disconnect_cancels_its_generation_within_a_token(server):
    engine = server.backend.engine
    steps = []

    def slow(_module, _args):  # ~20 ms a token: 400 tokens would take 8 s
        steps.append(time.perf_counter())
        time.sleep(0.02)

    hook = engine.model.register_forward_pre_hook(slow)
    eos, engine.eos_ids = engine.eos_ids, set()
    try:
        url = urlparse(server.url)
        sock = socket.create_connection((url.hostname, url.port))
        body = json.dumps({"model": server.ids.base, "prompt": "the cat", "max_tokens": 400, "stream": True,
                           "temperature": 0}).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while b"data: " not in received:  # the stream has begun
            piece = sock.recv(65536)
            assert piece, received
            received += piece
        sock.close()
        closed = time.perf_counter()
        server.idle()
        reply = engine.reply
        assert reply.finish_reason == "cancelled"
        assert reply.stats.new_tokens < 100
        after = [t for t in steps if t > closed]
        assert len(after) <= 5  # stopped within a few tokens of the close being noticed
    finally:
        hook.remove()
        engine.eos_ids = eos
    status, _, _ = request(server, "POST", "/completions", {"model": server.ids.base, "prompt": "a", "max_tokens": 2})
    assert status == 200


def test_a_busy_port_is_a_clear_error(server, serve, model_folder, capsys):
    with pytest.raises(ServerStartError, match="cannot listen on 127.0.0.1:%d" % server.server.port):
        serve(port=server.server.port)
    code = main(["serve", "--model", str(model_folder), "--port", str(server.server.port), "--threads", "1",
                 "--context", "256"])
    assert code == 1 and "is another server using the port?" in capsys.readouterr().err


def test_no_model_loaded(serve, capsys):
    server = serve(backend=None)
    status, payload, _ = request(server, "GET", "/models")
    assert status == 503 and error_of(payload)["code"] == "model_not_loaded"
    assert main(["serve", "--model", "/no/such/model.gguf", "--port", "0"]) != 0
    assert "/no/such/model.gguf" in capsys.readouterr().err


def test_a_template_that_refuses_the_messages_is_a_400(server, monkeypatch):
    import chatapp.text.prompt as prompt
    from chatapp.text.chat_template import ChatTemplateError

    def refuse(*_args, **_kwargs):
        raise ChatTemplateError("Conversation roles must alternate user/assistant/user/assistant/...")

    monkeypatch.setattr(prompt, "render_and_encode", refuse)
    status, payload, _ = request(server, "POST", "/chat/completions",
                                 {"model": server.ids.base, "messages": [{"role": "user", "content": "x"}] * 2})
    error = error_of(payload)
    assert status == 400 and "must alternate" in error["message"] and error["param"] == "messages"
    monkeypatch.undo()
    status, _, _ = request(server, "POST", "/completions", {"model": server.ids.base, "prompt": "a", "max_tokens": 2})
    assert status == 200
