"""Render a conversation with the model's own Jinja chat template, as Hugging Face does.

Templates come from model files, so they are untrusted code: they run in jinja2's immutable
sandbox, and any attempt to reach an unsafe attribute (`''.__class__`, `x.__globals__`) stops
the render with `ChatTemplateError` instead of quietly printing nothing. Compiling and rendering
are bounded in time and memory (template_sandbox.py, numbers in chatapp/limits.py): a template
that loops for ever or builds gigabytes stops with `ChatTemplateError` too. The environment
matches transformers' (trim_blocks, lstrip_blocks, loop controls, `raise_exception`,
`strftime_now`, a `tojson` that keeps non-ASCII text) so a template renders the same text here.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import lru_cache
from typing import Any, Mapping, Optional, Sequence

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import SecurityError

from .template_sandbox import BoundedSandbox, TemplateLimitError, measure
from .template_sandbox import render as render_bounded

log = logging.getLogger(__name__)

# Used when a model ships no template: ChatML, which SmolLM2, Qwen and many others speak.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplateError(Exception):
    """The chat template could not be compiled or rendered; `reason` says why, `source` names
    the model file or folder it came from (when known), `exceeded_limit` whether it went past
    one of the bounds in chatapp/limits.py."""

    def __init__(self, reason: str, source: Optional[str] = None, exceeded_limit: bool = False,
                 unusable: bool = False, raised_by_template: bool = False) -> None:
        self.reason = reason
        self.raised_by_template = raised_by_template  # the template's own raise_exception(...)
        self.source = source
        self.exceeded_limit = exceeded_limit
        self.unusable = unusable or exceeded_limit  # no conversation can get through this template
        where = f"the chat template of {source}" if source else "the chat template"
        message = f"{where} failed: {reason}"
        if exceeded_limit:
            message += "; a chat template is not allowed that much (chatapp/limits.py)"
        if self.unusable:
            message += ("; this model cannot be chatted with as it is: use another copy of the model, "
                        "or fix its template")
        super().__init__(message)

    def with_source(self, source: str) -> "ChatTemplateError":
        return ChatTemplateError(self.reason, source, self.exceeded_limit, self.unusable, self.raised_by_template)


class _RaisedByTemplate(jinja2.TemplateError):
    """What `raise_exception(message)` raises inside a template."""


class _GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks in some
    templates; rendering only needs its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> list[nodes.Node]:
        next(parser.stream)  # the `generation` name
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class _StrictSandbox(BoundedSandbox):
    """The immutable sandbox, but an unsafe attribute raises at once rather than rendering as
    an empty Undefined (the default only complains when that Undefined is used further)."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is unsafe")


def _raise_exception(message: str) -> None:
    raise _RaisedByTemplate(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: Optional[int] = None,
            separators: Optional[tuple[str, str]] = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(format: str) -> str:  # noqa: A002 - the name templates call it with
    return datetime.now().strftime(format)


@lru_cache(maxsize=1)
def _environment() -> _StrictSandbox:
    env = _StrictSandbox(trim_blocks=True, lstrip_blocks=True,
                         extensions=[_GenerationBlock, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.bound_filters()
    return env


@lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    try:
        return _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ChatTemplateError(f"syntax error on line {exc.lineno}: {exc.message}", unusable=True) from exc
    except TemplateLimitError as exc:
        raise ChatTemplateError(str(exc), exceeded_limit=True) from exc
    except (RecursionError, MemoryError) as exc:
        raise ChatTemplateError(f"too deeply nested or too large to compile ({type(exc).__name__})",
                                exceeded_limit=True) from exc
    except Exception as exc:  # untrusted code: any failure is the template's
        raise ChatTemplateError(f"cannot be compiled: {type(exc).__name__}: {exc}", unusable=True) from exc


def render_chat(template: Optional[str], messages: Sequence[Mapping[str, Any]],
                add_generation_prompt: bool = True, bos_token: str = "", eos_token: str = "",
                **variables: Any) -> str:
    """The prompt text for `messages` ({"role", "content"} dicts), through `template` (ChatML
    when None or blank). `variables` reach the template too (e.g. tools=[...])."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise ChatTemplateError(f"messages must be a list of dicts, not {type(messages).__name__}")
    compiled = _compile(template if template and template.strip() else CHATML_TEMPLATE)
    context = {"tools": None, "documents": None, **variables, "messages": list(messages),
               "add_generation_prompt": add_generation_prompt, "bos_token": bos_token,
               "eos_token": eos_token}
    try:
        input_chars = measure([context["messages"], variables], limit=1 << 62)
        return render_bounded(compiled, context, input_chars)
    except TemplateLimitError as exc:
        raise ChatTemplateError(str(exc), exceeded_limit=True) from exc
    except (RecursionError, MemoryError) as exc:
        raise ChatTemplateError(f"it went too deep or used too much memory ({type(exc).__name__})",
                                exceeded_limit=True) from exc
    except _RaisedByTemplate as exc:
        raise ChatTemplateError(str(exc), raised_by_template=True) from exc
    except SecurityError as exc:
        raise ChatTemplateError(f"blocked by the sandbox: {exc}") from exc
    except Exception as exc:  # untrusted code: any failure is the template's
        raise ChatTemplateError(f"{type(exc).__name__}: {exc}") from exc
