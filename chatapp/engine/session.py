"""A chat session: system prompt + turns, rendered with the model's chat template.

The session re-renders the whole conversation each turn; the engine notices that the new
prompt extends what its KV cache holds, so only the new turn is prefilled. When the
conversation outgrows the context window, the oldest turns are dropped (the system prompt
and the newest user message always stay) and `dropped_messages` says how many.

A reply that stopped before its end (the token limit, or the user's Stop) can be continued:
the conversation is rendered with that reply left open, as Hugging Face's
`continue_final_message` does, and the model writes on from where it stopped.

Messages are encoded as text (text.prompt.render_and_encode): a message that contains a chat
template's markers cannot open a turn; `contained_markers` says when the last prompt had some.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterator, Optional, Sequence

from ..text.prompt import RenderedPrompt, render_and_encode
from .generate import ContextOverflowError, Engine, Reply
from .sampling import SamplingSettings
from .vision import NoVisionError, VisionDecoder, render_with_images

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")


class ChatSession:
    def __init__(self, engine: Engine, system_prompt: str = "",
                 messages: Optional[list[dict]] = None, template_variables: Optional[dict] = None) -> None:
        self.engine = engine
        # extra chat-template variables, e.g. {"enable_thinking": False} (text/thinking.py)
        self.template_variables = dict(template_variables or {})
        self.system_prompt = system_prompt
        self.messages: list[dict] = [dict(m) for m in (messages or [])]
        for m in self.messages:
            if m.get("role") not in ("user", "assistant"):
                raise ValueError(f"message role must be user or assistant, got {m.get('role')!r}")
        self.dropped_messages = 0  # how many old messages the last reply could not see
        self.contained_markers = False  # the last prompt's messages held special-token strings (read as text)
        self.folded_system = False  # the template has no system turn: the system prompt went into a user turn
        self.reply: Optional[Reply] = None
        self._placed: list = []  # the last rendered prompt's images (engine.vision)

    # -- rendering ------------------------------------------------------------------------
    def _with_system(self, messages: list[dict]) -> list[dict]:
        return ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + messages

    def render(self, messages: list[dict], continue_final: bool = False) -> RenderedPrompt:
        """The prompt: the conversation and the opening of the assistant's turn, or with
        `continue_final`, the conversation up to the end of its last (assistant) message."""
        decoder = getattr(self.engine, "model", None)  # tests render with a bare namespace
        if isinstance(decoder, VisionDecoder):
            prompt, self._placed = render_with_images(decoder, self.engine.tokenizer, self._with_system(messages),
                                                      continue_final=continue_final, **self.template_variables)
            return prompt
        if any(m.get("images") for m in messages):
            raise NoVisionError(getattr(getattr(decoder, "config", None), "name", "") or "the loaded model")
        return render_and_encode(self.engine.tokenizer, self._with_system(messages),
                                 add_generation_prompt=not continue_final, continue_final=continue_final,
                                 **self.template_variables)

    def render_ids(self, messages: list[dict], continue_final: bool = False) -> list[int]:
        return self.render(messages, continue_final).ids

    def fit(self, reserve: int, continue_final: bool = False) -> tuple[list[int], int]:
        """Prompt ids for as many recent messages as fit with `reserve` tokens left; (ids, dropped)."""
        limit = self.engine.context_len
        messages = list(self.messages)
        dropped = 0
        keep = 2 if continue_final else 1  # the reply being continued keeps its question
        while True:
            prompt = self.render(messages, continue_final)
            ids = prompt.ids
            if len(ids) + reserve <= limit:
                if isinstance(getattr(self.engine, "model", None), VisionDecoder):  # the images the engine will splice
                    self.engine.model.set_prompt(self.engine, ids, self._placed)
                self.contained_markers = prompt.contained_markers
                self.folded_system = prompt.folded_system
                if prompt.contained_markers:
                    log.info("the conversation contains chat-template markers %s; they are read as text",
                             ", ".join(prompt.markers))
                return ids, dropped
            if len(messages) <= keep:
                raise ContextOverflowError(
                    f"the message is {len(ids)} tokens long with the system prompt, but the context "
                    f"holds {limit} with {reserve} kept for the reply; shorten the message or the "
                    f"system prompt, or choose a longer context length")
            # Drop the oldest message, and an assistant reply left leading the conversation.
            messages.pop(0)
            dropped += 1
            while len(messages) > 1 and messages[0]["role"] == "assistant":
                messages.pop(0)
                dropped += 1

    # -- turns ----------------------------------------------------------------------------
    def respond(self, settings: SamplingSettings, cancel: Optional[threading.Event] = None,
                logprobs: Optional[int] = None, forced: Sequence[int] = ()) -> Iterator[str]:
        """Stream a reply to the messages as they are (the last one is the user's); `logprobs`
        and `forced` (the reply's first tokens) as in Engine.generate_ids."""
        reserve = min(settings.max_new_tokens, self.engine.context_len // 4)
        ids, self.dropped_messages = self.fit(reserve)
        if self.dropped_messages:
            log.info("dropped %d old messages to fit the context", self.dropped_messages)
        yield from self.engine.stream(ids, settings, cancel, logprobs, forced)
        self.reply = self.engine.reply
        # A stopped reply is kept as far as it got, as chat apps do.
        self.messages.append({"role": "assistant", "content": self.reply.text})

    def send(self, text: str, settings: SamplingSettings,
             cancel: Optional[threading.Event] = None, logprobs: Optional[int] = None,
             forced: Sequence[int] = (), images: Sequence = ()) -> Iterator[str]:
        """Add a user message (with `images`, engine.vision.ImageAttachment) and stream the
        assistant's reply (appended when done); `logprobs` and `forced` as in `respond`."""
        if not text.strip() and not images:
            raise ValueError("the message is empty")
        message = {"role": "user", "content": text}
        if images:
            message["images"] = list(images)
        self.messages.append(message)
        try:
            yield from self.respond(settings, cancel, logprobs, forced)
        except (ContextOverflowError, ValueError):
            self.messages.pop()  # the user keeps the text in the composer; the history stays as it was
            raise

    def continue_reply(self, settings: SamplingSettings, cancel: Optional[threading.Event] = None,
                       logprobs: Optional[int] = None) -> Iterator[str]:
        """Stream more of the last assistant reply; the new text is appended to it when done."""
        if not self.messages or self.messages[-1]["role"] != "assistant" or not self.messages[-1]["content"]:
            raise ValueError("there is no reply to continue")
        reserve = min(settings.max_new_tokens, self.engine.context_len // 4)
        ids, self.dropped_messages = self.fit(reserve, continue_final=True)
        yield from self.engine.stream(ids, settings, cancel, logprobs)
        self.reply = self.engine.reply
        self.messages[-1] = {"role": "assistant", "content": self.messages[-1]["content"] + self.reply.text}

    def regenerate(self, settings: SamplingSettings,
                   cancel: Optional[threading.Event] = None) -> Iterator[str]:
        """Replace the last assistant reply with a new one."""
        if not self.messages or self.messages[-1]["role"] != "assistant":
            raise ValueError("there is no reply to regenerate")
        self.messages.pop()
        yield from self.respond(settings, cancel)

    def edit(self, index: int, text: str, settings: SamplingSettings,
             cancel: Optional[threading.Event] = None) -> Iterator[str]:
        """Change user message `index`, forget everything after it, and reply again."""
        if not 0 <= index < len(self.messages) or self.messages[index]["role"] != "user":
            raise ValueError(f"message {index} is not a user message")
        del self.messages[index:]
        yield from self.send(text, settings, cancel)

    def reset(self) -> None:
        self.messages.clear()
        self.dropped_messages = 0

