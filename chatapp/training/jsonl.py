"""Reading JSONL files (training chats, knowledge examples, quiz questions) with errors that name
the file and the line. Torch-free, so the question files can be read by the window too.

    for line_no, record in jsonl_records(path, DatasetError):
        ...   # a record the caller checks; raise error(path, problem, line_no) when it is wrong
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from .. import limits
from ..paths import loads_bounded

# (path, problem, line number or None) -> the caller's exception
ErrorType = Callable[[Union[str, Path], str, Optional[int]], Exception]


def _open_regular(path: Path, error: ErrorType):
    """The file for reading in binary; a FIFO or device (whose open or read would block, or never
    end) is refused from its fstat, opened with O_NONBLOCK so that even the open returns."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror or exc}", None) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(path, "is not a regular file (a FIFO, device or socket?)", None)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def jsonl_records(path: Union[str, Path], error: ErrorType, check: Callable[[Any], Any] = lambda record: record,
                  max_line_bytes: int = limits.JSONL_MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """(line number, check(parsed JSON)) for each non-blank line, read as the caller goes; a file
    that cannot be read or is not a regular file, a line over `max_line_bytes` (never read whole),
    not UTF-8, not JSON (or nested too deep, or with a number too long), holding a lone surrogate
    ("\\ud800"), or a record `check` refuses with ValueError raises `error(path, problem, line)`."""
    path = Path(path)
    with _open_regular(path, error) as f:  # decoded a line at a time, so a bad byte is named by its line
        line_no = 0
        while True:
            raw = f.readline(max_line_bytes + 1)
            if not raw:
                break
            line_no += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise error(path, f"the line is longer than the {max_line_bytes:,} bytes allowed", line_no)
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
            except ValueError as exc:  # Python's own bound on the digits of an int
                raise error(path, f"not valid JSON: a number of more than {sys.get_int_max_str_digits():,} "
                                  f"digits", line_no) from exc
            if "\\u" in line:  # only an escape can spell a lone surrogate; UTF-8 bytes cannot
                try:
                    json.dumps(record, ensure_ascii=False).encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise error(path, f"holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}), which is "
                                      f"not text", line_no) from None
            try:
                checked = check(record)
            except ValueError as exc:
                raise error(path, str(exc), line_no) from exc
            yield line_no, checked
