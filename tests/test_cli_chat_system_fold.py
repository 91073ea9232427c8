"""`chatapp chat` on a model whose template refuses a system turn (as Gemma's does): the reply
comes, and the terminal says once where the system prompt went."""

from __future__ import annotations

import io
import json

import pytest

from helpers.tiny_hf import tiny_llama_folder

from chatapp.cli import build_parser  # noqa: E402
from chatapp.commands.generate import cmd_chat  # noqa: E402

pytest.importorskip("transformers")

REFUSING = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
            "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")


def test_chat_says_once_that_the_system_prompt_was_folded(tmp_path):
    folder = tiny_llama_folder(tmp_path / "model")
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = REFUSING
    config_path.write_text(json.dumps(config))
    args = build_parser().parse_args(["chat", "--model", str(folder), "--temperature", "0", "--threads", "1",
                                      "--system", "be brief", "--max-new-tokens", "4"])
    out, feed = io.StringIO(), iter(["hello", "again", "/exit"])
    assert cmd_chat(args, input_fn=lambda _prompt: next(feed), out=out) == 0
    text = out.getvalue()
    assert "error" not in text
    assert text.count("has no system turn: the system prompt was put at the start of the first message") == 1
