"""`--thinking` / `--no-thinking` on `chatapp generate` and `chatapp chat`: Qwen3's switch, headless."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chatapp.cli import build_parser
from chatapp.commands.generate import thinking_from_args
from tests.helpers.qwen3_template import QWEN3_STYLE_TEMPLATE

PLAIN = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def _engine(template):
    return SimpleNamespace(tokenizer=SimpleNamespace(chat_template=template))


@pytest.mark.parametrize("command", [["generate", "--prompt", "hi", "--chat"], ["chat"]])
def test_flags_become_the_template_variable(command, capsys):
    parse = build_parser().parse_args
    assert thinking_from_args(parse(command + ["--no-thinking"]), _engine(QWEN3_STYLE_TEMPLATE)) == \
        {"enable_thinking": False}
    assert thinking_from_args(parse(command + ["--thinking"]), _engine(QWEN3_STYLE_TEMPLATE)) == \
        {"enable_thinking": True}
    assert thinking_from_args(parse(command), _engine(QWEN3_STYLE_TEMPLATE)) == {}  # the template decides
    assert capsys.readouterr().err == ""


def test_a_model_without_the_switch_says_the_flag_changes_nothing(capsys):
    args = build_parser().parse_args(["chat", "--no-thinking"])
    assert thinking_from_args(args, _engine(PLAIN)) == {}
    assert "no thinking switch: --no-thinking changes nothing" in capsys.readouterr().err
