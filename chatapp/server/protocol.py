"""The OpenAI API's request bodies, checked, and its error shape (no aiohttp, no torch).

`decode_body` reads a request body as bounded JSON; `parse_chat` and `parse_completion` turn
it into a `JobRequest`, or raise `ApiError` naming the field at fault (a wrong type, a value out
of range, text that is not Unicode). Sampling follows the OpenAI API: temperature 1 and top_p
1 by default, no top-k, min-p or repetition penalty unless the request asks (our extension
fields `top_k`, `min_p`, `repetition_penalty`), `frequency_penalty` / `presence_penalty`
additive as OpenAI defines them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..limits import JSON_MAX_DEPTH

MAX_STOPS = 4
# Numbers in a body: no field needs more digits than a 64-bit seed (20); Python itself refuses
# more than 4,300 with an error that names no field and speaks of sys.set_int_max_str_digits.
MAX_NUMBER_DIGITS = 100
MAX_TOP_LOGPROBS = 20  # the OpenAI API's own limit
ROLES = ("system", "user", "assistant", "developer")


class ApiError(Exception):
    """An error answered in the OpenAI shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: Optional[str] = None,
                 code: Optional[str] = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad(message: str, param: Optional[str] = None, code: Optional[str] = None) -> ApiError:
    return ApiError(400, message, param, code)


@dataclass(frozen=True)
class ImagePart:
    """An image from an `image_url` content part: the bytes of its data URL (decoded and checked
    against the image limits in the model's thread, text.images.open_image_bytes)."""

    data: bytes
    name: str


_DATA_URL = re.compile(r"data:(image/[A-Za-z0-9.+-]+)?(;[^,;]*)*;base64,", re.IGNORECASE)


def _image_part(part: dict, param: str, number: int) -> ImagePart:
    from .. import limits

    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise bad(f"{param}.image_url must be {{'url': 'data:image/...;base64,...'}}", param)
    if url.lower().startswith(("http://", "https://", "ftp://", "file:")):
        raise bad(f"{param}: image URLs are not fetched (this server never uses the network); send the image "
                  "inline as a data URL, data:image/png;base64,...", param, code="image_url_not_supported")
    match = _DATA_URL.match(url)
    if not match:
        raise bad(f"{param}: the image must be a base64 data URL (data:image/png;base64,...)", param)
    encoded = url[match.end():]
    if len(encoded) * 3 // 4 > limits.IMAGE_MAX_BYTES + 3:  # before decoding it
        raise bad(f"{param}: the image is about {len(encoded) * 3 // 4:,} bytes; the limit is "
                  f"{limits.IMAGE_MAX_BYTES:,}", param, code="image_too_large")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{param}: the data URL is not valid base64", param) from None
    if not data:
        raise bad(f"{param}: the image is empty", param)
    if len(data) > limits.IMAGE_MAX_BYTES:
        raise bad(f"{param}: the image is {len(data):,} bytes; the limit is {limits.IMAGE_MAX_BYTES:,}", param,
                  code="image_too_large")
    return ImagePart(data, f"{param.split('.')[0]} image {number}")


@dataclass
class Limits:
    max_tokens: int = 4096  # the most a request may ask for
    default_max_tokens: int = 512  # when the request does not say


@dataclass
class JobRequest:
    """One validated request: what the model thread runs (see jobs.py)."""

    kind: str  # "chat" | "completion"
    model: str
    sampling: dict  # keyword arguments of engine.sampling.ApiSamplingSettings
    messages: list[dict] = field(default_factory=list)  # chat
    prompt: str = ""  # completion
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage
    logprobs: Optional[int] = None  # None: off; K: the chosen token and K alternatives
    echo: bool = False  # completion: the prompt's tokens (and their log-probabilities) come first
    documents: Optional[str] = None  # our extension: answer from this document library


def decode_body(raw: bytes) -> Any:
    """A request body as JSON: UTF-8, nested at most JSON_MAX_DEPTH deep, no number longer than
    MAX_NUMBER_DIGITS digits. ApiError 400 (code invalid_json) otherwise. Runs on the event loop
    (the window's too), so the checks are linear in C: json.loads's own recursion limit stops a
    deep body at ~1,000 levels; the parsed value is then measured, stopping at the bound."""
    def refuse(message: str) -> ApiError:
        return ApiError(400, f"the request body is not valid JSON: {message}", code="invalid_json")

    def integer(digits: str) -> int:
        if len(digits) > MAX_NUMBER_DIGITS + 1:  # the sign
            raise ValueError(f"a number of {len(digits.lstrip('-')):,} digits (at most {MAX_NUMBER_DIGITS})")
        return int(digits)

    too_deep = f"nested more than the {JSON_MAX_DEPTH} levels allowed"
    try:
        value = json.loads(raw.decode("utf-8"), parse_int=integer)
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise refuse(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise refuse(too_deep) from None
    except ValueError as exc:  # a number too long
        raise refuse(str(exc)) from None
    if isinstance(value, (dict, list)) and _deeper_than(value, JSON_MAX_DEPTH):
        raise refuse(too_deep)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep in `value` (a loop, not recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _unicode(text: str, param: str) -> str:
    """`text` itself, if it is Unicode text: JSON's escapes can spell a lone surrogate ("\\ud800"),
    which no tokenizer reads and no UTF-8 response can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        name = param if "." in param else f"'{param}'"  # a top-level field is quoted, as elsewhere
        raise bad(f"{name} is not valid Unicode text: a lone surrogate (U+{ord(text[exc.start]):04X}) "
                  f"at character {exc.start}", param) from None
    return text


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    # an int is compared as it is (float() of a 400-digit number overflows)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise bad(f"'{name}' must be a number, got {value!r}", name)
    if not low <= value <= high:
        raise bad(f"'{name}' must be between {low:g} and {high:g}, got {value}", name)
    return float(value)


def _integer(body: dict, name: str, low: int, high: Optional[int] = None) -> Optional[int]:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{name}' must be a whole number, got {value!r}", name)
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad(f"'{name}' must be {limit}, got {value}", name)
    return value


def _boolean(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(f"'{name}' must be true or false, got {value!r}", name)
    return value


def _common(body: Any, limits: Limits, kind: str) -> JobRequest:
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' is required: one of the ids GET /v1/models lists", "model")
    _unicode(model, "model")
    n = _integer(body, "n", 1)
    if n not in (None, 1):
        raise bad(f"'n' must be 1: this server writes one choice per request (got {n})", "n")
    if body.get("best_of") not in (None, 1):
        raise bad("'best_of' must be 1", "best_of")
    max_tokens = _integer(body, "max_completion_tokens", 1, limits.max_tokens)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, limits.max_tokens)
    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop] if stop else []
    elif isinstance(stop, list) and all(isinstance(s, str) and s for s in stop) and len(stop) <= MAX_STOPS:
        stops = list(stop)
    else:
        raise bad(f"'stop' must be a string or a list of up to {MAX_STOPS} non-empty strings", "stop")
    for text in stops:
        _unicode(text, "stop")
    seed = _integer(body, "seed", -(2**63))
    sampling = {
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0) or 1e-9,  # 0: as good as greedy
        "top_k": _integer(body, "top_k", 0) or 0,
        "min_p": _number(body, "min_p", 0.0, 0.0, 0.999),
        "repetition_penalty": _number(body, "repetition_penalty", 1.0, 0.5, 3.0),
        "frequency_penalty": _number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        "presence_penalty": _number(body, "presence_penalty", 0.0, -2.0, 2.0),
        "max_new_tokens": max_tokens or limits.default_max_tokens,
        "repeat_last_n": 0,
        "seed": None if seed is None else seed % (2**63),
        "stop": stops,
    }
    stream = _boolean(body, "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise bad("'stream_options' must be an object", "stream_options")
        if not stream:
            raise bad("'stream_options' is only allowed with 'stream': true", "stream_options")
        include_usage = bool(options.get("include_usage", False))
    documents = body.get("documents")
    if documents is not None and (not isinstance(documents, str) or not documents.strip()):
        raise bad("'documents' must be the name of a document library", "documents")
    if documents is not None:
        _unicode(documents, "documents")
    return JobRequest(kind=kind, model=model, sampling=sampling, stream=stream,
                      include_usage=include_usage, documents=documents)


def parse_chat(body: Any, limits: Limits) -> JobRequest:
    job = _common(body, limits, "chat")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty list of {role, content} objects", "messages")
    clean = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad(f"{param} must be an object with 'role' and 'content'", param)
        role = message.get("role")
        if role not in ROLES:
            raise bad(f"{param}.role must be one of {', '.join(ROLES)}, got {role!r}", f"{param}.role")
        content = message.get("content")
        images: list[ImagePart] = []
        if isinstance(content, list):  # content parts: text, and images (data URLs) in a user message
            texts = []
            for j, part in enumerate(content):
                where = f"{param}.content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    if role != "user":
                        raise bad(f"{where}: images can only be in a user message", where)
                    images.append(_image_part(part, where, len(images) + 1))
                    continue
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise bad(f"{param}.content parts must be {{'type': 'text', 'text': ...}} or "
                              f"{{'type': 'image_url', 'image_url': {{'url': 'data:...'}}}}", f"{param}.content")
                texts.append(part["text"])
            content = "".join(texts)
        if not isinstance(content, str):
            raise bad(f"{param}.content must be text", f"{param}.content")
        _unicode(content, f"{param}.content")
        clean.append({"role": "system" if role == "developer" else role, "content": content,
                      **({"images": images} if images else {})})
    job.messages = clean
    if _boolean(body, "logprobs"):
        job.logprobs = _integer(body, "top_logprobs", 0, MAX_TOP_LOGPROBS) or 0
    elif body.get("top_logprobs") is not None:
        raise bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")
    if job.documents is not None and clean[-1]["role"] != "user":
        raise bad("with 'documents' the last message must be the user's question", "messages")
    return job


def parse_completion(body: Any, limits: Limits) -> JobRequest:
    job = _common(body, limits, "completion")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad("'prompt' must be one non-empty string (lists of prompts and token ids are not served)",
                  "prompt")
    _unicode(prompt, "prompt")
    job.prompt = prompt
    job.logprobs = _integer(body, "logprobs", 0, 5)  # the completions API allows at most 5
    job.echo = _boolean(body, "echo")
    if body.get("suffix") is not None:
        raise bad("'suffix' is not supported", "suffix")
    if job.documents is not None:
        raise bad("'documents' is for /v1/chat/completions", "documents")
    return job
