"""Export a conversation to Markdown or versioned JSON; import the JSON back as a new conversation.

Each reply written by the app keeps the system prompt it was written under in its
`settings` ("system_prompt"); Markdown shows it beside a reply when it differs from the
conversation's current one.

JSON format (version 3):
    {"format": "chatapp.conversation", "version": 3, "title": str, "system_prompt": str,
     "model": str, "created_at": ISO 8601, "messages": [{"role", "content", "created_at",
     "state", "model", "settings", "stats", "finish_reason", "parent", "active",
     "images": [{"name", "sha256", "data": base64}]}]}
Version 3 added `images` (a message's attached images, the file's bytes in base64; optional, and
checked against `sha256` when that is given); version 2 files have none and import as before.
`messages` holds every branch of the message tree in order of creation: `parent` is the index
of the message it follows (null for a first message; always an earlier index), `active` whether
it is the version shown among its siblings. A message without `parent` follows the one before
it, so version 1 files (one path, no `parent`) import as they always did. `format`, `version`,
`title` and `messages` (each with `role` and `content`) are required; the rest have defaults, so
hand-written files import. Markdown shows the path shown only. Files are written atomically.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import ModelLoadError
from ..paths import atomic_write_text, read_json
from .attachments import Attachment
from .db import (PREVIOUS, ROLES, STATES, Conversation, ConversationStore, Message, NewMessage, PathLike,
                 StorageError)

log = logging.getLogger(__name__)

FORMAT = "chatapp.conversation"
VERSION = 3
_ROLE_HEADINGS = {"user": "User", "assistant": "Assistant", "system": "System"}
_STATE_NOTES = {"cancelled": "*(stopped)*", "failed": "*(failed)*", "streaming": "*(unfinished)*"}
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _close_open_fence(text: str) -> str:
    """`text` plus a closing fence when it ends inside a code block (a reply stopped mid-code),
    so the headings after it still render; the text itself is kept verbatim."""
    open_fence: Optional[str] = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if not match:
            continue
        fence = match.group(1)
        if open_fence is None:
            open_fence = fence
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not line.strip()[len(fence):]:
            open_fence = None
    return text if open_fence is None else text.rstrip("\n") + "\n" + open_fence


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in (text or "(none)").splitlines())


def conversation_markdown(conv: Conversation, messages: Sequence[Message]) -> str:
    parts = [f"# {conv.title}", f"*{_iso(conv.created_at)[:16].replace('T', ' ')} UTC*"]
    if conv.system_prompt:
        parts += ["## System prompt", _close_open_fence(conv.system_prompt)]
    for m in messages:
        heading = f"## {_ROLE_HEADINGS[m.role]}"
        if m.role == "assistant" and m.model:
            heading += f" ({m.model})"
        parts.append(heading)
        used = m.settings.get("system_prompt") if m.role == "assistant" else None
        if used is not None and used != conv.system_prompt:  # the prompt was changed after this reply
            parts.append("*System prompt for this reply:*\n\n" + _quote(used))
        parts.append(_close_open_fence(m.content))
        if m.state in _STATE_NOTES:
            parts.append(_STATE_NOTES[m.state])
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _images_json(images: Sequence[Attachment]) -> list[dict]:
    import base64

    return [{"name": image.name, "sha256": image.sha256, "data": base64.b64encode(image.data).decode("ascii")}
            for image in images]


def conversation_dict(conv: Conversation, messages: Sequence[Message],
                      images: Optional[dict[int, list[Attachment]]] = None) -> dict[str, Any]:
    """`messages`: the whole tree in order of creation (`ConversationStore.tree`), or one path;
    `images`: {message id: its images} (`ConversationStore.conversation_attachments`)."""
    index = {m.id: i for i, m in enumerate(messages)}
    images = images or {}
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": conv.title,
        "system_prompt": conv.system_prompt,
        "model": conv.model,
        "created_at": _iso(conv.created_at),
        "messages": [{
            "role": m.role, "content": m.content, "created_at": _iso(m.created_at), "state": m.state,
            "model": m.model, "settings": m.settings, "stats": m.stats, "finish_reason": m.finish_reason,
            "parent": index.get(m.parent_id), "active": m.active,
            **({"images": _images_json(images[m.id])} if images.get(m.id) else {}),
        } for m in messages],
    }


def export_markdown(store: ConversationStore, conversation_id: int, path: PathLike) -> None:
    conv = store.get_conversation(conversation_id)
    _write(Path(path), conversation_markdown(conv, store.messages(conversation_id)))


def export_json(store: ConversationStore, conversation_id: int, path: PathLike) -> None:
    conv = store.get_conversation(conversation_id)
    data = conversation_dict(conv, store.tree(conversation_id), store.conversation_attachments(conversation_id))
    _write(Path(path), json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise StorageError(f"could not write the export ({exc.strerror or exc})", path) from exc
    log.info("exported conversation to %s", path)


# -- import -------------------------------------------------------------------------------
class _Invalid(Exception):
    """A problem in the file's content; becomes StorageError naming the file."""


# An export of a long conversation is a few MB; JSON nesting is read_json's bound (limits.py).
IMPORT_MAX_BYTES = 256 << 20


def _check_text(data: Any, where: str = "") -> None:
    """_Invalid naming the field when a string holds a lone surrogate ("\\ud800" in the JSON):
    Python accepts it, SQLite and every UTF-8 writer do not."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Invalid(f"field {where or '(top level)'} holds an unpaired surrogate "
                           f"({data[exc.start]!r} at character {exc.start}), which is not text") from None
    elif isinstance(data, dict):
        for key, value in data.items():
            _check_text(key, f"{where + '.' if where else ''}(a key)")
            _check_text(value, f"{where + '.' if where else ''}{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_text(value, f"{where}[{i}]")


def _field(obj: dict, key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in obj or (obj[key] is None and default is not ...):
        if default is ...:
            raise _Invalid(f"missing field {where}{key}")
        return default
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Invalid(f"field {where}{key} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _time(obj: dict, where: str) -> Optional[datetime]:
    text = _field(obj, "created_at", str, where, None)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))  # 3.10 does not take "Z"
    except ValueError:
        raise _Invalid(f"field {where}created_at is not an ISO 8601 time: {text!r}") from None


def _parent(obj: dict, index: int, where: str) -> Optional[int]:
    if "parent" not in obj:
        return PREVIOUS
    parent = obj["parent"]
    if parent is None:
        return None
    if not isinstance(parent, int) or isinstance(parent, bool) or not 0 <= parent < index:
        raise _Invalid(f"field {where}parent must be the index of an earlier message or null, not {parent!r}")
    return parent


# The stats the window reads back when it shows a reply (ui/chat_controller.py: its status line,
# context counter, "What the model saw", the token view): their types are checked here, so a
# hostile file cannot break the opening of its conversation later.
_STAT_COUNTS = ("prompt_tokens", "prefilled_tokens", "new_tokens", "context_used", "left_out")
_STAT_NUMBERS = ("ttft_s", "prefill_tok_s", "decode_tok_s")


def _is_number(value: Any, low: float, high: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)


def _token(entry: Any, where: str, alternatives: bool) -> None:
    """One entry of stats.tokens (engine.backend.logprob_entry), or one of its alternatives."""
    if not isinstance(entry, dict):
        raise _Invalid(f"field {where} must be an object")
    if not isinstance(entry.get("id"), int) or isinstance(entry.get("id"), bool) or entry["id"] < 0:
        raise _Invalid(f"field {where}.id must be a token id (a whole number of at least 0)")
    if not isinstance(entry.get("token"), str):
        raise _Invalid(f"field {where}.token must be str")
    if not _is_number(entry.get("logprob"), -math.inf, 1.0):  # exp() of it is a probability
        raise _Invalid(f"field {where}.logprob must be a log-probability (a number of at most 0)")
    if not alternatives:
        return
    if entry.get("sampled_prob") is not None and not _is_number(entry["sampled_prob"], 0.0, 1.001):  # float32 rounding
        raise _Invalid(f"field {where}.sampled_prob must be a probability between 0 and 1, or null")
    top = entry.get("top", [])
    if not isinstance(top, list):
        raise _Invalid(f"field {where}.top must be list")
    for i, alt in enumerate(top):
        _token(alt, f"{where}.top[{i}]", alternatives=False)


def _stats(obj: dict, where: str) -> dict:
    stats = _field(obj, "stats", dict, where, {})
    for key in _STAT_COUNTS:
        value = stats.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise _Invalid(f"field {where}stats.{key} must be a whole number of at least 0, not {value!r}")
    for key in _STAT_NUMBERS:
        if stats.get(key) is not None and not _is_number(stats[key], 0.0, math.inf):
            raise _Invalid(f"field {where}stats.{key} must be a number of at least 0, not {stats[key]!r}")
    if "prompt" in stats and not isinstance(stats["prompt"], str):
        raise _Invalid(f"field {where}stats.prompt must be str")
    if "tokens" in stats:
        if not isinstance(stats["tokens"], list):
            raise _Invalid(f"field {where}stats.tokens must be list")
        for i, entry in enumerate(stats["tokens"]):
            _token(entry, f"{where}stats.tokens[{i}]", alternatives=True)
    return stats


def _message(obj: Any, index: int, version: int = VERSION) -> NewMessage:
    where = f"messages[{index}]."
    if not isinstance(obj, dict):
        raise _Invalid(f"messages[{index}] must be an object")
    role = _field(obj, "role", str, where)
    if role not in ROLES:
        raise _Invalid(f"field {where}role must be one of {', '.join(ROLES)}, not {role!r}")
    state = _field(obj, "state", str, where, "complete")
    if state not in STATES:
        raise _Invalid(f"field {where}state must be one of {', '.join(STATES)}, not {state!r}")
    return NewMessage(role=role, content=_field(obj, "content", str, where), created_at=_time(obj, where),
                      state=state, model=_field(obj, "model", str, where, ""),
                      settings=_field(obj, "settings", dict, where, {}),
                      stats=_stats(obj, where),
                      finish_reason=_field(obj, "finish_reason", str, where, ""),
                      parent=_parent(obj, index, where) if version >= 2 else PREVIOUS,
                      active=_field(obj, "active", bool, where, True),
                      images=_images(obj, where) if version >= 3 else ())


def _images(obj: dict, where: str) -> tuple[Attachment, ...]:
    import base64
    import binascii

    found = []
    for i, item in enumerate(_field(obj, "images", list, where, [])):
        at = f"{where}images[{i}]."
        if not isinstance(item, dict):
            raise _Invalid(f"field {where}images[{i}] must be an object")
        try:
            data = base64.b64decode(_field(item, "data", str, at), validate=True)
        except binascii.Error:
            raise _Invalid(f"field {at}data is not base64") from None
        try:
            image = Attachment(data, _field(item, "name", str, at, ""))
        except ValueError as exc:
            raise _Invalid(f"field {at}data: {exc}") from None
        digest = _field(item, "sha256", str, at, None)
        if digest is not None and digest != image.sha256:
            raise _Invalid(f"field {at}data does not match its sha256 (the image is damaged)")
        found.append(image)
    return tuple(found)


def parse_conversation(data: Any) -> tuple[dict[str, Any], list[NewMessage]]:
    """Validate an export; returns the conversation's fields and its messages. Raises _Invalid."""
    if not isinstance(data, dict):
        raise _Invalid("not a JSON object")
    if data.get("format") != FORMAT:
        raise _Invalid(f"not a chatapp conversation export (format is {data.get('format')!r}, "
                       f"expected {FORMAT!r})")
    version = _field(data, "version", int, "")
    if version > VERSION:
        raise _Invalid(f"format version {version} is newer than this app reads ({VERSION}); update the app")
    if version < 1:
        raise _Invalid(f"unknown format version {version}")
    raw_messages = _field(data, "messages", list, "")
    header = {"title": _field(data, "title", str, ""),
              "system_prompt": _field(data, "system_prompt", str, "", ""),
              "model": _field(data, "model", str, "", ""),
              "created_at": _time(data, "")}
    return header, [_message(m, i, version) for i, m in enumerate(raw_messages)]


def import_json(store: ConversationStore, path: PathLike) -> Conversation:
    """A new conversation from a JSON export; StorageError naming the file and the problem."""
    path = Path(path)
    try:  # bounded: a regular file, at most IMPORT_MAX_BYTES, nested at most limits.JSON_MAX_DEPTH
        data = read_json(path, max_bytes=IMPORT_MAX_BYTES)
    except ModelLoadError as exc:  # MissingFileError, CorruptFileError
        problem = "cannot read the file (it does not exist)" if exc.problem == "does not exist" else exc.problem
        raise StorageError(problem, path) from None
    try:
        _check_text(data)
        header, messages = parse_conversation(data)
    except _Invalid as exc:
        raise StorageError(str(exc), path) from None
    conv = store.import_conversation(messages=messages, **header)
    log.info("imported %d messages from %s as conversation %d", len(messages), path, conv.id)
    return conv
