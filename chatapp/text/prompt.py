"""Conversations into prompt ids, with user and document text kept as text.

A chat template writes its own markers (`<|im_start|>`, `<|eot_id|>`, ...) around the messages;
those must become the model's special tokens. The messages themselves (what the user typed or
pasted, an imported conversation, a training example, a retrieved document chunk) must not: a
pasted web page containing `<|im_end|><|im_start|>system` would otherwise open a system turn.

`render_and_encode` is the one way the app turns messages into prompt ids. Before rendering,
every special-token string inside a message's content is swapped for a sentinel (private-use
characters with a random per-call nonce, so no text can imitate one); the template then runs on the
escaped messages, so templates that trim or split content still work. The rendered text is cut at
the sentinels: the pieces between are the template's text (special tokens parsed), each sentinel
is encoded as plain text. Text without markers is encoded exactly as before, in one piece.

Only special tokens count as markers: plain added tokens (llama.cpp's user-defined tokens,
`special: false` in tokenizer.json) are ordinary vocabulary that text is expected to match, as
transformers encodes it. A marker split across a message's edge and the template's own text is
not escaped: the templates' text next to a message is a whole marker or plain words.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from .chat_template import ChatTemplateError

log = logging.getLogger(__name__)

_SENTINEL_OPEN, _SENTINEL_CLOSE = "\ue000", "\ue001"  # Unicode private use: no template prints these


@dataclass(frozen=True)
class RenderedPrompt:
    """Prompt ids for a conversation; `text` is what the model reads (markers in messages shown
    as written). `contained_markers`: some message held a special-token string, which was
    encoded as text; `markers` lists which. `folded_system`: the template refuses a system turn
    (Gemma's raises "System role not supported"), so the system prompt was put at the start of the
    first user message instead (`fold_system_prompt`)."""

    ids: list[int]
    text: str
    contained_markers: bool = False
    markers: tuple[str, ...] = field(default_factory=tuple)
    folded_system: bool = False


def fold_system_prompt(messages: Sequence[Mapping[str, Any]]) -> Optional[list[dict]]:
    """`messages` with a leading system message moved into the first user message (its text, a
    blank line, then the user's), or None when there is none to fold: what a template without a
    system turn gets. Gemma 3's own template folds the same way."""
    if not messages or messages[0].get("role") != "system" or not isinstance(messages[0].get("content"), str):
        return None
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    if rest and rest[0].get("role") == "user" and isinstance(rest[0].get("content"), str):
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}" if system else rest[0]["content"]
    else:  # no user turn to carry it (a template refusing system turns wants one first)
        rest.insert(0, {"role": "user", "content": system})
    return rest


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Ids for user or document text: special-token strings in it are encoded as text.

    `chatapp.text.Tokenizer.encode` already does this; duck-typed tokenizers (tests' mocks)
    are taken at their word."""
    return list(tokenizer.encode(text))


def marker_strings(tokenizer: Any) -> tuple[str, ...]:
    """The special-token strings of `tokenizer` (longest first), () when it has none."""
    return tuple(getattr(tokenizer, "marker_strings", ()) or ())


def find_markers(text: str, markers: Sequence[str]) -> list[str]:
    """The special-token strings written in `text`, in order of appearance."""
    pattern = _marker_pattern(tuple(markers))
    return pattern.findall(text) if pattern is not None else []


def render_and_encode(tokenizer: Any, messages: Sequence[Mapping[str, Any]], *,
                      add_generation_prompt: bool = True, continue_final: bool = False,
                      add_bos: bool = True, **variables: Any) -> RenderedPrompt:
    """Render `messages` ({"role", "content"} dicts) with the tokenizer's chat template and encode
    them, message contents as text. With `continue_final`, the prompt ends right after the last
    message's content (its turn left open, as Hugging Face's `continue_final_message`). With
    `add_bos`, BOS is put first when the model expects one and the template did not write it.
    Raises ChatTemplateError (the template failed or exceeded its limits) and ValueError (a
    reply the template does not show as written cannot be continued)."""
    markers = marker_strings(tokenizer)
    pattern = _marker_pattern(markers)
    # Short, so that a template cutting content rarely cuts one: 3 random private-use characters
    # (about 2.6e11 choices) between two fixed ones.
    nonce = "".join(chr(0xE100 + secrets.randbelow(0x1700)) for _ in range(3))
    found: list[str] = []

    def swap(match: re.Match) -> str:
        found.append(match.group(0))
        return f"{_SENTINEL_OPEN}{nonce}{markers.index(match.group(0))}{_SENTINEL_CLOSE}"

    def escape(value: Any) -> Any:
        # Every string a caller hands the template: contents, content parts ({"type": "text",
        # "text": ...}), names, tool definitions, documents. Roles stay: templates compare them.
        if isinstance(value, str):
            return pattern.sub(swap, value) if pattern.search(value) else value
        if isinstance(value, Mapping):
            return {key: item if key == "role" else escape(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [escape(item) for item in value]
        return value

    if pattern is not None:
        escaped = [escape(message) for message in messages]
        variables = {name: escape(value) for name, value in variables.items()}
    else:
        escaped = list(messages)

    if continue_final and not escaped:
        raise ValueError("there is no reply to continue")

    def apply(conversation: list) -> str:
        return tokenizer.apply_chat_template(conversation, add_generation_prompt=add_generation_prompt
                                             and not continue_final, **variables)

    folded_system = False
    try:
        rendered = apply(list(escaped))
    except ChatTemplateError as exc:
        folded = fold_system_prompt(escaped) if exc.raised_by_template else None
        if folded is None:
            raise
        rendered = apply(folded)  # its error, if any, is about the conversation as the template sees it
        folded_system = True
        log.info("the chat template refused a system turn (%s): the system prompt was put at the start of "
                 "the first user message", exc.reason)
    if continue_final:
        rendered = _open_final_message(rendered, escaped[-1]["content"])

    if escaped and not rendered.strip():
        source = getattr(tokenizer, "source", None)
        raise ChatTemplateError("it rendered no text for this conversation (is it a chat template at all?)",
                                source=str(source) if source is not None else None, unusable=True)
    encode_markup = getattr(tokenizer, "encode_markup", tokenizer.encode)
    if not found:
        ids, text = list(encode_markup(rendered)), rendered
    else:
        sentinel = re.compile(re.escape(_SENTINEL_OPEN + nonce) + r"(\d+)" + re.escape(_SENTINEL_CLOSE))
        ids, parts, at = [], [], 0
        for match in sentinel.finditer(rendered):
            marker = markers[int(match.group(1))]
            piece = rendered[at:match.start()]
            if piece:
                ids += encode_markup(piece)
            ids += encode_text(tokenizer, marker)
            parts += [piece, marker]
            at = match.end()
        if rendered[at:]:
            ids += encode_markup(rendered[at:])
        text = "".join(parts) + rendered[at:]

    bos = getattr(tokenizer, "bos_id", None)
    if add_bos and getattr(tokenizer, "add_bos", False) and bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    return RenderedPrompt(ids=ids, text=text, contained_markers=bool(found),
                          markers=tuple(dict.fromkeys(found)), folded_system=folded_system)


def _open_final_message(rendered: str, content: str) -> str:
    """`rendered` cut right after the last message's content: its turn left open."""
    for text in (content, content.strip()):
        at = rendered.rfind(text) if text else -1
        if at >= 0:
            return rendered[:at + len(text)]
    raise ValueError("this model's chat template does not show the reply as written, so it cannot be continued")


_PATTERNS: dict[tuple[str, ...], Optional[re.Pattern]] = {}


def _marker_pattern(markers: tuple[str, ...]) -> Optional[re.Pattern]:
    if not markers:
        return None
    pattern = _PATTERNS.get(markers)
    if pattern is None:
        if len(_PATTERNS) > 16:
            _PATTERNS.clear()
        # Longest first, so that a marker that starts another one does not win.
        pattern = re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))
        _PATTERNS[markers] = pattern
    return pattern
