"""`chatapp serve` as a user runs it: a child process, an OpenAI client, Ctrl-C to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_headless_answers_an_openai_client_and_stops_on_ctrl_c(model_folder):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHATAPP_API_KEY": "k"}
    child = subprocess.Popen([sys.executable, "-m", "chatapp", "serve", "--model", str(model_folder), "--port",
                              str(port), "--threads", "1", "--context", "256"],
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stderr.readline()  # "serving URL (Ctrl-C stops)" once listening
        assert line.startswith(f"serving http://127.0.0.1:{port}/v1"), line + child.stderr.read()
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=60)
        model = api.models.list().data[0].id
        reply = api.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        assert reply.choices[0].message.role == "assistant" and reply.usage.completion_tokens >= 1
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="no", max_retries=0).models.list()
        child.send_signal(signal.SIGINT)
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stderr.close()
    with socket.socket() as s:  # nothing listens there any more
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
