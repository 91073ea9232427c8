"""Turning the bytes of one file into plain text, by format.

`format_for(path)` says which format a file name means; `extract(data, format)` returns its
text (not yet cleaned) or raises one of the `ExtractionError`s below, each of which becomes
one skip reason in the ingest report. pypdf and python-docx are imported only when a PDF or
a .docx is actually read.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Optional

log = logging.getLogger(__name__)

TEXT, MARKDOWN, RST, HTML, CODE, PDF, DOCX = "text", "markdown", "rst", "html", "code", "pdf", "docx"

_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys((".txt", ".text", ".org", ".adoc", ".asciidoc", ".csv", ".tsv"), TEXT),
    **dict.fromkeys((".md", ".markdown"), MARKDOWN),
    ".rst": RST,
    **dict.fromkeys((".html", ".htm", ".xhtml"), HTML),
    **dict.fromkeys((
        ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".c", ".h", ".cc", ".cpp",
        ".cxx", ".hpp", ".hh", ".java", ".kt", ".scala", ".go", ".rs", ".rb", ".php", ".pl",
        ".lua", ".r", ".jl", ".swift", ".m", ".cs", ".hs", ".ml", ".ex", ".exs", ".erl", ".clj",
        ".dart", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".json", ".jsonl", ".yaml",
        ".yml", ".toml", ".ini", ".cfg", ".xml", ".css", ".scss", ".less", ".sql", ".graphql",
        ".proto", ".cmake", ".mk", ".vue", ".svelte", ".tex", ".bib", ".diff", ".patch",
    ), CODE),
    ".pdf": PDF,
    ".docx": DOCX,
}

# Files that are text by name alone (matched case-insensitively, no extension).
_NAMES: dict[str, str] = {
    **dict.fromkeys(("readme", "license", "copying", "changelog", "authors", "notice"), TEXT),
    **dict.fromkeys(("makefile", "dockerfile", "gemfile", "rakefile", "jenkinsfile"), CODE),
}

# Extensions that are certainly not text: reported as "binary" without being opened.
# Office formats we cannot read (.doc, .xlsx, ...) are deliberately absent: for those
# "unsupported type .doc" tells the user more.
BINARY_EXTENSIONS = frozenset((
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tif", ".tiff", ".psd",
    ".mp3", ".wav", ".flac", ".ogg", ".m4a", ".mp4", ".mkv", ".avi", ".mov", ".webm",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".zst",
    ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class", ".jar", ".pyc", ".whl",
    ".bin", ".dat", ".db", ".sqlite", ".sqlite3", ".woff", ".woff2", ".ttf", ".otf",
    ".iso", ".dmg", ".npy", ".npz", ".pt", ".pth", ".safetensors", ".gguf", ".onnx", ".pkl",
    ".parquet",
))

SUPPORTED_EXTENSIONS = frozenset(_EXTENSIONS)
SNIFF_BYTES = 8192
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


class ExtractionError(Exception):
    """The file's content could not be turned into text; `kind` is the report's category."""

    kind = "unreadable"


class TooLargeError(ExtractionError):
    """The content would expand beyond what is read (a zip bomb in a .docx)."""

    kind = "too large"


class BinaryContentError(ExtractionError):
    kind = "binary"


class UndecodableError(ExtractionError):
    kind = "undecodable"


@dataclass(frozen=True)
class Extracted:
    text: str
    encoding: str = ""  # for text formats: the codec that decoded the bytes
    warning: str = ""  # something the user should know although the file was used


def format_for(path: Path) -> Optional[str]:
    """The format a file name means, or None when we do not read it."""
    suffix = path.suffix.lower()
    if suffix:
        return _EXTENSIONS.get(suffix)
    return _NAMES.get(path.name.lower())


def decode_text(data: bytes, fallback_encoding: Optional[str] = None) -> tuple[str, str, str]:
    """(text, encoding, warning) of a text file's bytes.

    A BOM decides the encoding; otherwise UTF-8, strictly. NUL bytes without a BOM mean a
    binary file. Without `fallback_encoding` an invalid UTF-8 file is undecodable rather than
    silently misread; with one, the file is decoded with it and the warning says so.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding, ""
            except UnicodeDecodeError as exc:
                raise UndecodableError(f"invalid {encoding} after its byte-order mark ({exc.reason})") from exc
    if b"\x00" in data[:SNIFF_BYTES]:
        raise BinaryContentError("NUL bytes in the first 8 KB")
    try:
        return data.decode("utf-8"), "utf-8", ""
    except UnicodeDecodeError as exc:
        if fallback_encoding is None:
            raise UndecodableError(f"not UTF-8 (byte {exc.start}) and no byte-order mark") from exc
        try:
            text = data.decode(fallback_encoding)
        except UnicodeDecodeError as exc2:
            raise UndecodableError(f"neither UTF-8 nor {fallback_encoding} (byte {exc2.start})") from exc2
        return text, fallback_encoding, f"not valid UTF-8; decoded as {fallback_encoding}"


def extract(data: bytes, fmt: str, fallback_encoding: Optional[str] = None) -> Extracted:
    """The text of a file in format `fmt`. Raises ExtractionError (or a subclass); any other
    failure of a parser on a corrupt file is wrapped in ExtractionError with its message."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise ValueError(f"no reader for format {fmt!r}")
    if fmt in _BYTE_FORMATS:
        try:
            return reader(data)
        except ExtractionError:
            raise
        except Exception as exc:  # pypdf and python-docx raise many types on corrupt files
            raise ExtractionError(f"{type(exc).__name__}: {exc}") from exc
    text, encoding, warning = decode_text(data, fallback_encoding)
    return Extracted(reader(text), encoding, warning)


def _verbatim(text: str) -> str:
    return text


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page: scripts, styles and tags gone, entities decoded,
    block elements separated by blank lines, <pre> kept as written."""
    parser = _HTMLText()
    parser.feed(markup)
    parser.close()
    return parser.text()


class _HTMLText(HTMLParser):
    _HIDDEN = frozenset(("script", "style", "noscript", "template", "svg"))
    _PARAGRAPH = frozenset((
        "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "title",
        "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "dl", "table",
        "figure", "figcaption", "form", "address", "hr", "body",
    ))
    _LINE = frozenset(("li", "tr", "dt", "dd", "caption"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._pre_opened = False
        self._newlines = 2  # newlines at the end of the output; "start of text" counts as a break

    def handle_starttag(self, tag: str, attrs) -> None:
        self._tag(tag, opening=True)

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag not in self._HIDDEN:  # <script/> opens nothing
            self._tag(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, opening=False)

    def _tag(self, tag: str, opening: bool) -> None:
        if tag in self._HIDDEN:
            self._hidden = self._hidden + 1 if opening else max(0, self._hidden - 1)
            return
        if self._hidden:
            return
        if tag == "pre":
            self._pre = self._pre + 1 if opening else max(0, self._pre - 1)
            self._pre_opened = opening
        if tag == "br" and opening:
            self._emit("\n")
        elif tag in self._PARAGRAPH:
            self._break(2)
        elif tag in self._LINE:
            self._break(1)
        elif tag in ("td", "th") and opening and self._newlines == 0:
            self._emit("\t")

    def handle_data(self, data: str) -> None:
        if self._hidden or not data:
            return
        if self._pre:
            if self._pre_opened and data.startswith("\n"):
                data = data[1:]  # HTML ignores the newline right after <pre>
        else:
            # Outside <pre>, any run of HTML whitespace is one space, even across tags.
            data = _HTML_SPACE.sub(" ", data)
            if self._newlines or (self._parts and self._parts[-1].endswith((" ", "\t"))):
                data = data.lstrip(" ")
        self._pre_opened = False
        if data:
            self._emit(data)

    def _emit(self, text: str) -> None:
        self._parts.append(text)
        stripped = text.rstrip("\n")
        self._newlines = (self._newlines if not stripped else 0) + (len(text) - len(stripped))

    def _break(self, count: int) -> None:
        if self._newlines < count:
            self._emit("\n" * (count - self._newlines))

    def text(self) -> str:
        return "".join(self._parts).rstrip()


def _pdf_text(data: bytes) -> Extracted:
    from pypdf import PdfReader  # imported on first use: heavy, and only PDFs need it

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise ExtractionError("encrypted PDF (needs a password)")
    pages, failed = [], 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            pages.append(page.extract_text() or "")
        except Exception as exc:  # one broken page should not lose the whole document
            failed += 1
            log.warning("PDF page %d unreadable: %s: %s", number, type(exc).__name__, exc)
    if pages == [] and failed:
        raise ExtractionError(f"no page of {failed} could be read")
    warning = f"{failed} of {failed + len(pages)} pages unreadable" if failed else ""
    # Pages are joined as paragraphs; a sentence running across a page break is rare enough.
    return Extracted("\n\n".join(pages), warning=warning)


# A .docx is a zip of XML parts; python-docx reads document.xml whole and lxml builds a tree
# several times its size. The size limit on the file looks at compressed bytes, so the expanded
# sizes are checked here, from the zip's directory, before anything is decompressed (Python's
# zipfile never decompresses past a member's declared size). Real documents: a few MB.
DOCX_MAX_MEMBER_BYTES = 64 << 20  # one part (document.xml of a 500-page book is ~10 MB)
DOCX_MAX_TOTAL_BYTES = 256 << 20  # every part together (images included)
DOCX_MAX_MEMBERS = 10_000


def check_zip_sizes(data: bytes, max_member: int = DOCX_MAX_MEMBER_BYTES,
                    max_total: int = DOCX_MAX_TOTAL_BYTES, max_members: int = DOCX_MAX_MEMBERS) -> None:
    """TooLargeError when the zip in `data` would expand beyond the limits."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # BadZipFile: extract() reports it
        members = archive.infolist()
    if len(members) > max_members:
        raise TooLargeError(f"{len(members):,} parts in the .docx, limit {max_members:,}")
    total = 0
    for member in members:
        if member.file_size > max_member:
            raise TooLargeError(f"{member.filename} expands to {member.file_size:,} bytes, "
                                f"limit {max_member:,}")
        total += member.file_size
    if total > max_total:
        raise TooLargeError(f"the .docx expands to {total:,} bytes, limit {max_total:,}")


def _docx_text(data: bytes) -> Extracted:
    import docx  # python-docx, imported on first use

    check_zip_sizes(data)
    document = docx.Document(io.BytesIO(data))
    blocks = []
    # Body paragraphs and tables in document order; headers and footers are boilerplate.
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            blocks.append(_docx_table_text(block))
        else:
            blocks.append(block.text)
    return Extracted("\n\n".join(b for b in blocks if b.strip()))


def _docx_table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            if cell._tc is not previous:  # a merged cell is returned once per grid column
                cells.append(cell.text)
            previous = cell._tc
        rows.append("\t".join(cells))
    return "\n".join(rows)


_READERS: dict[str, Callable] = {
    TEXT: _verbatim, MARKDOWN: _verbatim, RST: _verbatim, CODE: _verbatim,
    HTML: html_to_text, PDF: _pdf_text, DOCX: _docx_text,
}
_BYTE_FORMATS = frozenset((PDF, DOCX))
