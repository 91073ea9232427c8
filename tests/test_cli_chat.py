"""`chatapp chat`: the terminal chat loop, driven with scripted input on a tiny model."""

from __future__ import annotations

import io
import os
import signal

import pytest

from helpers.tiny_hf import tiny_llama_folder

from chatapp.cli import build_parser  # noqa: E402
from chatapp.commands.generate import cmd_chat  # noqa: E402

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_llama_folder(tmp_path_factory.mktemp("chat") / "model")


def run_chat(model, lines, *options, out=None):
    """Run the chat loop over `lines`; (exit code, everything it wrote, prompts shown)."""
    args = build_parser().parse_args(["chat", "--model", str(model), "--temperature", "0", "--threads", "1",
                                      "--system", "be brief", *options])
    out, prompts = out or io.StringIO(), []
    feed = iter(lines)

    def input_fn(prompt):
        prompts.append(prompt)
        return next(feed)  # StopIteration never comes: every script ends with /exit

    return cmd_chat(args, input_fn=input_fn, out=out), out.getvalue(), prompts


class CtrlCOnFirstReply(io.StringIO):
    """Output that presses Ctrl-C (SIGINT to this process) when the first reply text arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.pressed = False

    def write(self, text: str) -> int:
        past_banner = "\n" in self.getvalue()
        written = super().write(text)
        if not self.pressed and past_banner and text.strip():
            self.pressed = True
            os.kill(os.getpid(), signal.SIGINT)
        return written


def test_replies_stream_and_commands_work(model):
    code, text, prompts = run_chat(model, ["hello", "/system talk like a pirate", "/reset", "hello", "/exit"],
                                   "--max-new-tokens", "8")
    assert code == 0 and len(prompts) == 5
    lines = text.splitlines()
    assert lines[0].endswith("/continue, /reset, /system TEXT, /exit. Ctrl-C stops a reply.")
    assert "(system prompt set to: 'talk like a pirate')" in lines
    assert "(conversation cleared)" in lines
    replies = [line for line in lines[1:] if not line.startswith("(")]
    assert len(replies) == 2 and all(replies)


def test_continue_writes_on_from_a_reply_cut_at_the_limit(model):
    _, cut, _ = run_chat(model, ["hello", "/continue", "/exit"], "--max-new-tokens", "6")
    _, whole, _ = run_chat(model, ["hello", "/exit"], "--max-new-tokens", "12")
    first, continued = cut.splitlines()[1:3]
    assert continued.startswith(first) and len(continued) > len(first)
    assert continued == whole.splitlines()[1]  # the same as one reply twice as long
    _, text, _ = run_chat(model, ["/continue", "/exit"])
    assert "(nothing to continue" in text


def test_ctrl_c_stops_the_reply_not_the_program(model):
    out = CtrlCOnFirstReply()
    code, text, prompts = run_chat(model, ["tell me everything", "hello", "/exit"], "--max-new-tokens", "60",
                                   out=out)
    assert out.pressed and code == 0
    assert len(prompts) == 3  # the loop went on: the next message was read and answered
    lines = text.splitlines()
    assert lines[1].endswith(" [stopped]") and len(lines[1]) < 40  # stopped within a token or two
    assert lines[2] and not lines[2].endswith(" [stopped]")
