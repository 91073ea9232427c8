"""Reading the user's documents (for fine-tuning and the library): files and folders in,
clean texts out.

    ingestor = Ingestor(["~/notes", "paper.pdf"], IngestOptions(min_chars=50))
    for document in ingestor.documents():    # one file read at a time
        ...
    ingestor.report.summary()                # "12 files used (340 kB of text), 3 skipped: ..."

Every file met gets one `FileReport` in `ingestor.report`, filled as the walk goes, so a
progress line can be written per file (`on_file`) and the totals read at the end. Folders are
walked in name order, each listed only when the walk reaches it; only one file's bytes and
text are held at a time, plus the sha256 of every text used (for de-duplication).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from . import extractors
from .cleaning import clean_text, has_real_text

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
_READ_BLOCK = 1 << 16  # 64 KB
USED, SKIPPED = "used", "skipped"


class IngestError(Exception):
    """The documents to read cannot be found at all (as opposed to one file being skipped)."""

    def __init__(self, path: Optional[PathLike], problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


@dataclass(frozen=True)
class IngestOptions:
    """What to read. `extensions` None means every supported type (including extension-less
    files known by name, such as README and Makefile); otherwise a set of extensions such as
    {".md", ".txt"}. `follow_symlinks` applies to links met inside folders; a path given
    explicitly is always followed. `min_chars` counts letters and digits after cleaning.
    `fallback_encoding` (e.g. "cp1252") is tried for text that is not UTF-8; by default such a
    file is skipped as undecodable rather than guessed."""

    max_file_bytes: int = 20_000_000  # 20 MB
    extensions: Optional[frozenset[str]] = None
    follow_symlinks: bool = False
    min_chars: int = 10
    skip_hidden: bool = True  # names starting with "." inside folders (.git, .venv, ...)
    skip_dir_names: frozenset[str] = frozenset(("__pycache__", "node_modules"))
    fallback_encoding: Optional[str] = None

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0:
            raise ValueError(f"max_file_bytes must be positive, got {self.max_file_bytes}")
        if self.min_chars < 0:
            raise ValueError(f"min_chars must be >= 0, got {self.min_chars}")
        if self.extensions is not None:
            normalised = frozenset(
                (e if e.startswith(".") else f".{e}").lower() for e in self.extensions
            )
            unknown = sorted(normalised - extractors.SUPPORTED_EXTENSIONS)
            if unknown:
                raise ValueError(
                    f"unsupported extensions {', '.join(unknown)}; supported: "
                    f"{', '.join(sorted(extractors.SUPPORTED_EXTENSIONS))}"
                )
            object.__setattr__(self, "extensions", normalised)
        object.__setattr__(self, "skip_dir_names", frozenset(self.skip_dir_names))
        if self.fallback_encoding is not None:
            import codecs

            codecs.lookup(self.fallback_encoding)  # LookupError now, not at the first file


@dataclass(frozen=True)
class Document:
    path: Path
    text: str  # cleaned
    format: str  # "text", "markdown", "rst", "html", "code", "pdf" or "docx"
    sha256: str  # of the cleaned text in UTF-8


@dataclass
class FileReport:
    """What happened to one file. A skipped file's `kind` is one of "binary", "empty",
    "undecodable", "too large", "duplicate", "unreadable", "unsupported type", "excluded type",
    "symlink", "not a regular file"; its `reason` starts with the kind and adds the detail
    ("duplicate of notes/a.txt", "unreadable: PdfReadError: ...")."""

    path: Path
    status: str  # USED or SKIPPED
    reason: str = ""
    kind: str = ""
    format: str = ""
    size: int = 0  # bytes on disk
    chars: int = 0  # characters of cleaned text
    text_bytes: int = 0  # UTF-8 bytes of cleaned text
    encoding: str = ""
    warning: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    complete: bool = False  # True once every path has been walked

    @property
    def used(self) -> list[FileReport]:
        return [f for f in self.files if f.status == USED]

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status == SKIPPED]

    def skipped_by_kind(self) -> dict[str, int]:
        """Skip counts per kind, most frequent first (ties by name, so the text is stable)."""
        counts = Counter(f.kind for f in self.skipped)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def summary(self) -> str:
        used = self.used
        text_bytes = sum(f.text_bytes for f in used)
        line = f"{_plural(len(used), 'file')} used ({_human_bytes(text_bytes)} of text)"
        by_kind = self.skipped_by_kind()
        if by_kind:
            counts = ", ".join(f"{n} {kind}" for kind, n in by_kind.items())
            line += f", {sum(by_kind.values())} skipped: {counts}"
        else:
            line += ", none skipped"
        warned = sum(1 for f in used if f.warning)
        if warned:
            line += f"; {_plural(warned, 'warning')}"
        return line

    def to_dict(self, include_files: bool = True) -> dict:
        used = self.used
        data = {
            "complete": self.complete,
            "files_used": len(used),
            "files_skipped": len(self.files) - len(used),
            "chars": sum(f.chars for f in used),
            "text_bytes": sum(f.text_bytes for f in used),
            "skipped_by_kind": self.skipped_by_kind(),
            "summary": self.summary(),
        }
        if include_files:
            data["files"] = [f.to_dict() for f in self.files]
        return data


class Ingestor:
    """Walks `paths` (files and folders, recursively) once, yielding a `Document` per file
    used and recording a `FileReport` per file met in `.report` (and passing each to
    `on_file`, if given). Missing paths raise IngestError here, before anything is read."""

    def __init__(
        self,
        paths: Union[PathLike, Iterable[PathLike]],
        options: Optional[IngestOptions] = None,
        on_file: Optional[Callable[[FileReport], None]] = None,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [Path(p).expanduser() for p in paths]
        if not self.paths:
            raise IngestError(None, "no documents given: name a folder or some files")
        for path in self.paths:
            if not path.exists():
                raise IngestError(path, "no such file or folder")
        self.options = options or IngestOptions()
        self.on_file = on_file
        self.report = IngestReport()
        self._started = False
        self._seen_files: set[tuple[int, int]] = set()  # (device, inode): overlapping paths
        self._seen_dirs: set[tuple[int, int]] = set()  # also breaks symlink loops
        self._seen_texts: dict[str, Path] = {}  # sha256 -> first path with that text

    def __iter__(self) -> Iterator[Document]:
        return self.documents()

    def documents(self) -> Iterator[Document]:
        """The generator of documents; an Ingestor walks its paths only once."""
        if self._started:
            raise RuntimeError("this Ingestor has already been iterated; make a new one")
        self._started = True
        return self._documents()

    def candidates(self) -> Iterator[tuple[Path, bool]]:
        """(path, explicit) of every file the walk meets, in walk order, without reading any
        (an unreadable folder is recorded in the report). For an index that reads only the
        files that changed; `documents()` reads them all."""
        for root in self.paths:
            if root.is_dir():
                yield from self._walk(root)
            else:
                yield root, True

    def _documents(self) -> Iterator[Document]:
        for path, explicit in self.candidates():
            document = self._read(path, explicit)
            if document is not None:
                yield document
        self.report.complete = True
        log.info("documents: %s", self.report.summary())

    # -- walking ---------------------------------------------------------------------------

    def _walk(self, root: Path) -> Iterator[tuple[Path, bool]]:
        """(path, explicit) of every non-directory entry under `root`, depth first in name
        order. An explicit stack, not recursion: folder depth is the user's."""
        stack = [self._listing(root)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if self.options.skip_hidden and entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=self.options.follow_symlinks)
            except OSError:
                is_dir = False  # _read reports what is wrong with it
            if is_dir:
                if entry.name not in self.options.skip_dir_names:
                    stack.append(self._listing(path))
            else:
                yield path, False

    def _listing(self, directory: Path) -> Iterator[os.DirEntry]:
        """Entries of one folder in name order; listed when the walk first asks."""
        try:
            info = directory.stat()
            key = (info.st_dev, info.st_ino)
            if key in self._seen_dirs:
                log.debug("%s: folder already walked", directory)
                return
            self._seen_dirs.add(key)
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            self._record(FileReport(directory, SKIPPED, f"unreadable: {_describe(exc)}",
                                    "unreadable", format="folder"))
            return
        yield from entries

    # -- one file ----------------------------------------------------------------------------

    def _read(self, path: Path, explicit: bool) -> Optional[Document]:
        document, file_report = read_file(path, self.options, explicit, self._seen_files)
        if file_report is None:
            return None  # already read through another path
        if document is not None:
            first = self._seen_texts.get(document.sha256)
            if first is not None:
                file_report.status, file_report.kind = SKIPPED, "duplicate"
                file_report.reason = f"duplicate of {first}"
                document = None
            else:
                self._seen_texts[document.sha256] = path
        self._record(file_report)
        return document

    def _record(self, file_report: FileReport) -> None:
        self.report.files.append(file_report)
        if file_report.status == SKIPPED:
            log.debug("skipped %s: %s", file_report.path, file_report.reason)
        if self.on_file is not None:
            self.on_file(file_report)


def read_file(path: Path, options: IngestOptions, explicit: bool = True,
              seen_files: Optional[set[tuple[int, int]]] = None,
              ) -> tuple[Optional[Document], Optional[FileReport]]:
    """Read one file: (Document, its USED report), or (None, a SKIPPED report saying why).

    `explicit` means the user named this path (a symlink is then followed). With `seen_files`,
    a file whose (device, inode) is already in it returns (None, None) and is added otherwise.
    No de-duplication by content here: `Ingestor` does that across one walk.
    """
    opts = options

    def skip(kind: str, reason: str = "", **details) -> tuple[None, FileReport]:
        return None, FileReport(path, SKIPPED, reason or kind, kind, **details)

    fmt = extractors.format_for(path)
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            if not (explicit or opts.follow_symlinks):
                return skip("symlink", "symlink (follow_symlinks is off)")
            info = path.stat()
    except OSError as exc:
        return skip("unreadable", f"unreadable: {_describe(exc)}", format=fmt or "")
    if not stat.S_ISREG(info.st_mode):
        return skip("not a regular file")  # never open a FIFO or a device: it may block
    if seen_files is not None:
        if (info.st_dev, info.st_ino) in seen_files:
            log.debug("%s: already read through another path", path)
            return None, None
        seen_files.add((info.st_dev, info.st_ino))

    suffix = path.suffix.lower()
    if fmt is None:
        if suffix in extractors.BINARY_EXTENSIONS:
            return skip("binary", f"binary: {suffix} file", size=info.st_size)
        what = suffix or "(no extension)"
        return skip("unsupported type", f"unsupported type {what}", size=info.st_size)
    if opts.extensions is not None and suffix not in opts.extensions:
        what = suffix or "(no extension)"
        return skip("excluded type", f"excluded type {what} (not in the allowed extensions)",
                    format=fmt, size=info.st_size)
    if info.st_size > opts.max_file_bytes:
        return skip("too large", f"too large ({_human_bytes(info.st_size)}, limit "
                    f"{_human_bytes(opts.max_file_bytes)})", format=fmt, size=info.st_size)

    try:
        data = _read_bytes(path, opts.max_file_bytes)
    except OSError as exc:
        return skip("unreadable", f"unreadable: {_describe(exc)}", format=fmt, size=info.st_size)
    if data is None:  # grew past the limit since stat
        return skip("too large", format=fmt, size=info.st_size)
    try:
        extracted = extractors.extract(data, fmt, opts.fallback_encoding)
    except extractors.ExtractionError as exc:
        return skip(exc.kind, f"{exc.kind}: {exc}", format=fmt, size=info.st_size)
    del data

    text = clean_text(extracted.text)
    details = dict(format=fmt, size=info.st_size, encoding=extracted.encoding,
                   warning=extracted.warning)
    if not has_real_text(text, opts.min_chars):
        return skip("empty", **details)
    encoded = text.encode("utf-8")
    digest = hashlib.sha256(encoded).hexdigest()
    file_report = FileReport(path, USED, chars=len(text), text_bytes=len(encoded), **details)
    return Document(path=path, text=text, format=fmt, sha256=digest), file_report


def iter_documents(
    paths: Union[PathLike, Iterable[PathLike]], options: Optional[IngestOptions] = None
) -> Iterator[Document]:
    """Documents under `paths`, one at a time (use `Ingestor` to also get the report).
    Raises IngestError at once, not at the first `next`, when a path does not exist."""
    return Ingestor(paths, options).documents()


def ingest(
    paths: Union[PathLike, Iterable[PathLike]], options: Optional[IngestOptions] = None
) -> tuple[list[Document], IngestReport]:
    """All documents in a list, with the complete report. Holds every text in memory: for a
    large folder, iterate an `Ingestor` instead."""
    ingestor = Ingestor(paths, options)
    documents = list(ingestor.documents())
    return documents, ingestor.report


def _read_bytes(path: Path, limit: int) -> Optional[bytes]:
    """The file's bytes, or None if it holds more than `limit` (read at most limit + 1).

    Read in blocks: `read(limit + 1)` would allocate the whole limit (20 MB) for every file,
    however small."""
    blocks, total = [], 0
    with open(path, "rb") as handle:
        while total <= limit:
            block = handle.read(min(_READ_BLOCK, limit + 1 - total))
            if not block:
                break
            blocks.append(block)
            total += len(block)
    return None if total > limit else b"".join(blocks)


def _describe(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _human_bytes(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"
