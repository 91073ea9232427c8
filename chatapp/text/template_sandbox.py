"""jinja2's immutable sandbox with bounds on time and memory, for chat templates from model files.

The sandbox stops a template from reaching Python internals, but not from running for ever
(nested loops), building a gigabyte string (`'a' * 10**9`, even while compiling: jinja folds
constant expressions at compile time) or calling `lipsum(10**7)`. Here every rendering gets a
budget (chatapp/limits.py): a deadline, a largest value and a total it may write. Jinja gives
no hook inside loops or around literal text, so the parsed template is instrumented before it
is compiled: each loop iteration and each output statement calls `__chatapp_tick` (with the
size of its literal text), `~` concatenation goes through a bounded join and list/dict/tuple
literals through a size check. Operators that can grow a value (`+ * ** % / //`) are
intercepted (which also stops compile-time folding), and every call, filter and printed value
is checked, before the work when its size can be known in advance, after it otherwise. Going
past a bound raises `TemplateLimitError`.
"""

from __future__ import annotations

import inspect
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jinja2
from jinja2 import nodes, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from .. import limits

TICK, CONCAT, CHECK = "__chatapp_tick", "__chatapp_concat", "__chatapp_check"


class TemplateLimitError(Exception):
    """A template went past one of the bounds in chatapp/limits.py; the message says which."""


@dataclass
class _Budget:
    deadline: float
    value_limit: int  # largest value, in printed characters
    output_limit: int  # everything written (literal text and printed values) in one rendering
    written: int = 0
    sizes: dict = field(default_factory=dict)  # id -> (container, size): each measured once

    @classmethod
    def for_input(cls, input_chars: int) -> "_Budget":
        chars = limits.TEMPLATE_MAX_CHARS + limits.TEMPLATE_CHARS_PER_INPUT_CHAR * input_chars
        return cls(time.monotonic() + limits.TEMPLATE_MAX_SECONDS, chars, chars)


_local = threading.local()


def _budget() -> _Budget:
    budget = getattr(_local, "budget", None)
    return budget if budget is not None else _Budget.for_input(0)  # outside a rendering


def _tick(chars: int = 0) -> str:
    budget = _budget()
    if time.monotonic() > budget.deadline:
        raise TemplateLimitError(f"it ran longer than {limits.TEMPLATE_MAX_SECONDS:g} s (a loop that does not end?)")
    if chars:
        budget.written += chars
        if budget.written > budget.output_limit:
            raise TemplateLimitError(f"it wrote more than {budget.output_limit:,} characters")
    return ""


def measure(value: Any, limit: int, budget: Optional[_Budget] = None) -> int:
    """About how many characters `value` prints as; TemplateLimitError past `limit` characters,
    TEMPLATE_MAX_DEPTH levels of nesting or TEMPLATE_MAX_INT_BITS bits. Walks at most `limit`
    steps, so a list of itself repeated (shared, not copied) is cheap to refuse."""
    if isinstance(value, (str, bytes)):
        size = len(value)
    elif isinstance(value, bool) or value is None:
        size = 5
    elif isinstance(value, int):
        if value.bit_length() > limits.TEMPLATE_MAX_INT_BITS:
            raise TemplateLimitError(f"it computed a number of more than {limits.TEMPLATE_MAX_INT_BITS:,} bits")
        size = value.bit_length() // 3 + 1
    elif not isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
        size = 16
    else:
        cached = budget.sizes.get(id(value)) if budget is not None else None
        if cached is not None and cached[0] is value:
            size = cached[1]
        else:
            size, mutable = _measure_container(value, limit, budget)
            if budget is not None and not mutable:  # templates can change namespaces only
                budget.sizes[id(value)] = (value, size)
    if size > limit:
        raise TemplateLimitError(f"it built a value of more than {limit:,} characters")
    return size


def _children(value: Any) -> Any:
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, dict):
        return [item for pair in value.items() for item in pair]
    return value


def _measure_container(value: Any, limit: int, budget: Optional[_Budget]) -> tuple[int, bool]:
    """(size, whether it holds a namespace). Containers measured before count from the cache."""
    total, mutable = 0, False
    stack = [(value, 0)]
    sizes = budget.sizes if budget is not None else {}
    while stack:
        item, depth = stack.pop()
        cached = sizes.get(id(item)) if item is not value else None
        if cached is not None and cached[0] is item:
            total += cached[1]
        elif isinstance(item, (list, tuple, dict, set, frozenset, Namespace)):
            if depth >= limits.TEMPLATE_MAX_DEPTH:
                raise TemplateLimitError(f"it built values nested more than {limits.TEMPLATE_MAX_DEPTH} deep")
            mutable = mutable or isinstance(item, Namespace)
            children = _children(item)
            total += 2 + 2 * len(children)
            stack.extend((child, depth + 1) for child in children)
        else:
            total += measure(item, limit)
        if total > limit:
            raise TemplateLimitError(f"it built a value of more than {limit:,} characters")
    return total, mutable


def _check(value: Any) -> Any:
    budget = _budget()
    measure(value, budget.value_limit, budget)
    return value


def _check_arguments(budget: _Budget, args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > budget.value_limit:
            raise TemplateLimitError(f"it passed the number {value if value.bit_length() < 64 else 'with ' + str(value.bit_length()) + ' bits'} "
                                     f"to a function (at most {budget.value_limit:,})")
        measure(value, budget.value_limit, budget)


def _check_size(budget: _Budget, size: int) -> None:
    if size > budget.value_limit:
        raise TemplateLimitError(f"it would build a value of more than {budget.value_limit:,} characters")


_NUMBER = re.compile(r"\d+")


def _check_format(budget: _Budget, text: Any) -> None:
    """Widths and precisions written in a format string ('%999999999s', '{:>999999999}')."""
    if isinstance(text, str):
        for digits in _NUMBER.findall(text):
            if len(digits) > 12 or int(digits) > budget.value_limit:
                raise TemplateLimitError(f"its format string asks for a width of {digits[:20]} characters")


def _concat(*parts: Any) -> str:
    budget = _budget()
    texts, total = [], 0
    for part in parts:
        measure(part, budget.value_limit, budget)
        text = part if isinstance(part, str) else str(part)
        total += len(text)
        _check_size(budget, total)
        texts.append(text)
    return "".join(texts)


def _finalize(value: Any) -> Any:
    budget = _budget()
    _tick(measure(value, budget.value_limit, budget))
    return value


def _range(*args: int) -> range:
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = limits.TEMPLATE_MAX_RANGE + 1
    if size > limits.TEMPLATE_MAX_RANGE:
        raise TemplateLimitError(f"it asked for a range of more than {limits.TEMPLATE_MAX_RANGE:,} numbers")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - jinja's names
    if n > limits.TEMPLATE_MAX_LIPSUM_PARAGRAPHS or max > limits.TEMPLATE_MAX_LIPSUM_WORDS:
        raise TemplateLimitError(f"lipsum() is limited to {limits.TEMPLATE_MAX_LIPSUM_PARAGRAPHS} paragraphs of "
                                 f"{limits.TEMPLATE_MAX_LIPSUM_WORDS} words")
    return generate_lorem_ipsum(n, html, min, max)


def _check_str_method(budget: _Budget, method: Any, args: tuple) -> tuple:
    """Sizes of str methods that can multiply their input, known before running them."""
    text, name = method.__self__, getattr(method, "__name__", "")
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = text.count(args[0]) if args[0] else len(text) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        _check_size(budget, len(text) + count * max(0, len(args[1]) - len(args[0])))
    elif name == "join" and args:
        items = list(args[0])
        _check_size(budget, sum(measure(item, budget.value_limit, budget) for item in items) + len(text) * len(items))
        args = (items, *args[1:])
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        _check_size(budget, len(text) + text.count("\t") * max(tab, 0))
    return args


def _filter_size(budget: _Budget, name: str, bound: inspect.BoundArguments) -> None:
    """Sizes of filters that can multiply their input, known before running them."""
    a = bound.arguments
    if name == "indent" and isinstance(a.get("s"), str):
        width = a.get("width", 4)
        width = len(width) if isinstance(width, str) else int(width)
        _check_size(budget, len(a["s"]) + max(width, 0) * (a["s"].count("\n") + 1))
    elif name == "wordwrap" and isinstance(a.get("s"), str):
        wrap = a.get("wrapstring") or "\n"
        _check_size(budget, len(a["s"]) + (len(a["s"]) // max(int(a.get("width", 79)), 1) + 1) * len(wrap))
    elif name == "replace" and isinstance(a.get("s"), str):
        old, new = str(a.get("old", "")), str(a.get("new", ""))
        count = a["s"].count(old) if old else len(a["s"]) + 1
        _check_size(budget, len(a["s"]) + count * max(0, len(new) - len(old)))
    elif name == "format":
        _check_format(budget, a.get("value"))
    elif name == "tojson":
        indent = a.get("indent") or 0
        if isinstance(indent, int) and indent > 0:
            size = measure(a.get("value"), budget.value_limit, budget)
            _check_size(budget, size * (1 + indent * limits.TEMPLATE_MAX_DEPTH // 4))


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with a tick, argument checks and a size check on its result. Marked pass_context,
    which also keeps jinja from running it at compile time on constant arguments."""
    pass_arg = _PassArg.from_obj(func)
    try:
        signature: Optional[inspect.Signature] = inspect.signature(func)
    except (TypeError, ValueError):
        signature = None

    @pass_context
    def bounded(context: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        _tick()
        if name == "join" and args and not isinstance(args[0], (str, list, tuple)):
            args = (list(args[0]), *args[1:])  # a generator (map, select) measured whole, once
        _check_arguments(budget, args, kwargs)
        first = {_PassArg.context: context, _PassArg.eval_context: getattr(context, "eval_ctx", None),
                 _PassArg.environment: getattr(context, "environment", None)}.get(pass_arg) \
            if pass_arg is not None else None
        full = (first, *args) if pass_arg is not None else args
        if signature is not None:
            try:
                bound = signature.bind(*full, **kwargs)
            except TypeError:
                bound = None  # the call itself will say what is wrong
            if bound is not None:
                bound.apply_defaults()
                _filter_size(budget, name, bound)
        return _check(func(*full, **kwargs))

    return bounded


def _stmt_call(name: str, args: list, lineno: int) -> nodes.ExprStmt:
    return nodes.ExprStmt(_call(name, args, lineno), lineno=lineno)


def _call(name: str, args: list, lineno: int) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load", lineno=lineno), args, [], None, None, lineno=lineno)


class _Instrument(NodeTransformer):
    """Puts the budget's checks into a parsed template (see the module docstring)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.body.insert(0, _stmt_call(TICK, [], node.lineno))
        return node

    def visit_Output(self, node: nodes.Output) -> list:
        node = self.generic_visit(node)
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        return [_stmt_call(TICK, [nodes.Const(literal, lineno=node.lineno)], node.lineno), node]

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return _call(CONCAT, list(node.nodes), node.lineno)

    def _checked(self, node: nodes.Node) -> nodes.Node:
        node = self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node
        return _call(CHECK, [node], node.lineno)

    visit_List = visit_Dict = visit_Tuple = _checked


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with a budget on every rendering (see `render`)."""

    # Intercepting these also keeps the compiler from folding e.g. 'a' * 10**9 while compiling.
    intercepted_binops = frozenset({"+", "*", "**", "%", "/", "//"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals.update({"range": _range, "lipsum": _lipsum, TICK: _tick, CONCAT: _concat, CHECK: _check})

    def bound_filters(self) -> None:
        """Wrap every filter (call once all filters are registered)."""
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}

    def _parse(self, source: str, name: Optional[str], filename: Optional[str]) -> nodes.Template:
        if len(source) > limits.TEMPLATE_MAX_SOURCE_CHARS:
            raise TemplateLimitError(f"it is {len(source):,} characters long (at most "
                                     f"{limits.TEMPLATE_MAX_SOURCE_CHARS:,})")
        tree = _Instrument().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if obj is _tick:  # the instrumented checks, once per loop iteration and output: keep them cheap
            return _tick(*args)
        budget = _budget()
        _tick()
        _check_arguments(budget, args, kwargs)
        if isinstance(getattr(obj, "__self__", None), str):
            args = _check_str_method(budget, obj, args)
        return _check(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        _tick()
        if operator == "+" and type(left) is str and type(right) is str:  # what templates do most
            _check_size(budget, len(left) + len(right))
            return left + right
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                    _check_size(budget, len(seq) * times)
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > limits.TEMPLATE_MAX_INT_BITS:
                    raise TemplateLimitError(f"it computed a number of more than {limits.TEMPLATE_MAX_INT_BITS:,} bits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and right * math.log2(abs(left)) > limits.TEMPLATE_MAX_INT_BITS:
                raise TemplateLimitError(f"it computed a number of more than {limits.TEMPLATE_MAX_INT_BITS:,} bits")
        elif operator == "+" and isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
            _check_size(budget, len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_format(budget, left)
            _check_arguments(budget, right if isinstance(right, tuple) else (right,), {})
        return _check(super().call_binop(context, operator, left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format(_budget(), obj)
        return super().getattr(obj, attribute)


def render(template: jinja2.Template, context: dict, input_chars: int) -> str:
    """`template` rendered with `context` within the budget for `input_chars` characters of
    input (messages, tools); TemplateLimitError past it."""
    budget = _Budget.for_input(input_chars)
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    try:
        pieces, size = [], 0
        for piece in template.generate(**context):
            size += len(piece)
            if size > budget.output_limit:
                raise TemplateLimitError(f"it wrote more than {budget.output_limit:,} characters")
            pieces.append(piece)
        _tick()
        return "".join(pieces)
    finally:
        _local.budget = previous
