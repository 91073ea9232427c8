"""Reasoning ("thinking") in replies: Qwen3 writes `<think>...</think>` before its answer.

Qwen3's chat template takes `enable_thinking`: false makes the generation prompt end with an
empty `<think>\\n\\n</think>\\n\\n`, so the model answers at once. The same template keeps earlier
replies' reasoning out of the prompt (it renders only the part after `</think>` for turns before
the last user message), so a conversation is stored with each reply's thinking and the template
decides what the model sees again. `split_thinking` separates a reply (or a streaming one) for
display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
SWITCH = "enable_thinking"  # the template variable Qwen3 reads


@dataclass(frozen=True)
class SplitReply:
    thinking: str  # the reasoning, without its tags; "" when the reply has none
    answer: str  # what follows the reasoning (the whole text when there is none)
    thinking_open: bool = False  # the reasoning has not ended yet (a reply still streaming, or cut off)

    @property
    def has_thinking(self) -> bool:
        return bool(self.thinking) or self.thinking_open


def split_thinking(text: str) -> SplitReply:
    """Split a reply into its reasoning and its answer. A reply that starts with `<think>` (after
    whitespace) reasons until `</think>`; one with only a closing `</think>` (templates that open
    the block in the prompt) reasons up to it. Anything else is all answer."""
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        body = stripped[len(THINK_OPEN):]
        thinking, closed, answer = body.partition(THINK_CLOSE)
        if not closed:
            return SplitReply(thinking=body.strip(), answer="", thinking_open=True)
        return SplitReply(thinking=thinking.strip(), answer=answer.lstrip())
    if THINK_CLOSE in text and THINK_OPEN not in text:
        thinking, _, answer = text.partition(THINK_CLOSE)
        return SplitReply(thinking=thinking.strip(), answer=answer.lstrip())
    return SplitReply(thinking="", answer=text)


def has_thinking_switch(chat_template: Optional[str]) -> bool:
    """Whether a chat template reads `enable_thinking` (Qwen3 and templates like it)."""
    return bool(chat_template) and SWITCH in chat_template


def thinking_variables(chat_template: Optional[str], enable_thinking: Optional[bool]) -> dict[str, Any]:
    """The template variables for the user's thinking setting: {} when there is no setting or
    the template has no switch (it is then left exactly as the model's authors wrote it)."""
    if enable_thinking is None or not has_thinking_switch(chat_template):
        return {}
    return {SWITCH: bool(enable_thinking)}
