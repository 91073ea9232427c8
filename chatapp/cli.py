"""The headless face of the app: `chatapp [SUBCOMMAND]`.

`chatapp` alone opens the window; each subcommand is one `_add_<name>_parser(subparsers)`
that registers its options and sets `func=_cmd_<name>`; `_cmd_<name>(args) -> int` runs it.
To add a subcommand, write that pair and append the adder to `_SUBCOMMANDS`. Heavy imports
(torch, the engine, the UI) belong inside the `_cmd_` functions, so `chatapp --help` stays fast.

A ModelLoadError anywhere becomes one line, `error: <message>`, and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable, Optional, Sequence

from . import __version__
from .errors import ModelLoadError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


# ---------------------------------------------------------------------------- window

def _cmd_window(args: argparse.Namespace) -> int:
    try:
        from .ui.app import run_window
    except ImportError as exc:  # PySide6 missing: say so instead of a traceback
        print(f"error: the window needs PySide6 ({exc}); install with `pip install chatapp[ui]`",
              file=sys.stderr)
        return EXIT_ERROR
    return run_window()


def _add_self_test_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("self-test", help="open the window offscreen and check one streamed reply",
                              description="Open the window (offscreen unless a display is requested), "
                                          "load the default model, send one message, wait for a streamed "
                                          "reply; print a one-line JSON summary. Exit 0 only on success.")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each step")
    p.add_argument("--show", action="store_true", help="use the real display instead of offscreen")
    p.set_defaults(func=_cmd_self_test)


def _cmd_self_test(args: argparse.Namespace) -> int:
    import os
    if not args.show:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from .ui.selftest import run_self_test
    summary = run_self_test(timeout_s=args.timeout)
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_OK if summary.get("ok") else EXIT_ERROR


# ---------------------------------------------------------------------------- models

def _add_models_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the models on this machine",
                              description="List the default model, models in the local Hugging Face "
                                          "cache, and recently opened models. Never uses the network.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--no-recent", action="store_true", help="leave out recently opened models")
    p.set_defaults(func=_cmd_models)


def format_size(size: Optional[int]) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _models_table(entries) -> str:
    headers = ("NAME", "KIND", "SIZE", "PATH")
    rows = []
    for e in entries:
        path = str(e.path) if e.available else f"{e.path}  [unavailable: {e.problem}]"
        rows.append((e.name, e.kind + (" +images" if e.sees_images else ""), format_size(e.size_bytes), path))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers[:3])]
    lines = []
    for row in (headers, *rows):
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cmd_models(args: argparse.Namespace) -> int:
    from .weights.discovery import list_models

    entries = list_models(include_recent=not args.no_recent)
    if args.json:
        from .engine.weights_option import model_fit

        # each model's memory in every weights option, and whether it fits (fits / tight / does not fit)
        print(json.dumps([{**e.to_json(), "memory": model_fit(e.path)} for e in entries], indent=2,
                         ensure_ascii=False))
    else:
        print(_models_table(entries))
    return EXIT_OK


# ---------------------------------------------------------------------------- parser

def _generation_parsers(subparsers: argparse._SubParsersAction) -> None:
    from .commands.generate import add_bench_parser, add_chat_parser, add_generate_parser
    add_generate_parser(subparsers)
    add_chat_parser(subparsers)
    add_bench_parser(subparsers)


def _training_parsers(subparsers: argparse._SubParsersAction) -> None:
    from .commands.train import register
    register(subparsers)


def _quiz_parser(subparsers: argparse._SubParsersAction) -> None:
    from .commands.quiz import register
    register(subparsers)


def _library_parsers(subparsers: argparse._SubParsersAction) -> None:
    from .commands.library import register
    register(subparsers)


def _serve_parser(subparsers: argparse._SubParsersAction) -> None:
    from .commands.serve import register
    register(subparsers)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_models_parser,
    _generation_parsers,
    _training_parsers,
    _quiz_parser,
    _library_parsers,
    _serve_parser,
    _add_self_test_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatapp",
        description="Chat with a language model on your own machine. Without a subcommand, "
                    "opens the window.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="warning", type=str.lower, choices=_LOG_LEVELS,
                        help="how much to log on stderr (default: warning)")
    parser.set_defaults(func=_cmd_window)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test capture swaps it between calls)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; ignore
        pass


def configure_logging(level: str) -> None:
    """One stderr handler on the root logger, installed once however often main() runs."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def _user_errors(args: argparse.Namespace) -> tuple[type[BaseException], ...]:
    """Errors shown as one line. Engine errors only for commands that loaded the engine."""
    if args.func in (_cmd_models, _cmd_window, _cmd_self_test) \
            or args.func.__module__.endswith(".commands.library"):  # no engine (torch) to import
        return (ModelLoadError,)
    from .commands.common import user_errors
    return (ModelLoadError, *user_errors())


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .frozen import prepare

    prepare()  # freeze_support + spawn: the same start-up for `chatapp`, `python -m` and the bundle
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        if exc.code is None:
            return EXIT_OK
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    root = logging.getLogger()
    level_before = root.level
    configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except _user_errors(args) as exc:
        log.debug("model load error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        # main() run again in one process (tests, the window's self-test) starts from the level it
        # found: a --log-level DEBUG run left behind let a library's late debug lines (an HTTP
        # client closing its connections when collected) through before the next run set its own.
        root.setLevel(level_before)


if __name__ == "__main__":
    sys.exit(main())
