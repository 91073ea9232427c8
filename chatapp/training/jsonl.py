"""Reading JSONL files (training chats, knowledge examples, quiz questions) with errors that name
the file and the line. Torch-free, so the question files can be read by the window too.

    for line_no, record in jsonl_records(path, DatasetError):
        ...   # a record the caller checks; raise error(path, problem, line_no) when it is wrong
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from ..paths import loads_bounded

# (path, problem, line number or None) -> the caller's exception
ErrorType = Callable[[Union[str, Path], str, Optional[int]], Exception]


def jsonl_records(path: Union[str, Path], error: ErrorType,
                  check: Callable[[Any], Any] = lambda record: record) -> Iterator[tuple[int, Any]]:
    """(line number, check(parsed JSON)) for each non-blank line, read as the caller goes; a file
    that cannot be read, is not UTF-8, has a line that is not JSON, or a record `check` refuses with
    ValueError raises `error(path, problem, line)`."""
    path = Path(path)
    try:
        f = path.open("rb")  # decoded a line at a time, so a bad byte is named by its line
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror or exc}", None) from exc
    with f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(path, f"is not UTF-8 text: {exc.reason}", line_no) from exc
            if not line.strip():
                continue
            try:
                record = loads_bounded(line)  # bounded nesting (chatapp/paths.py)
            except json.JSONDecodeError as exc:
                raise error(path, f"not valid JSON: {exc.msg} (column {exc.colno})", line_no) from exc
            try:
                checked = check(record)
            except ValueError as exc:
                raise error(path, str(exc), line_no) from exc
            yield line_no, checked
