"""Reading documents for fine-tuning: every format, every skip reason, cleaning, streaming.

All fixtures are made here in tmp_path: a hand-written PDF (xref offsets computed), a .docx
written with python-docx, and files of deliberately broken bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import unicodedata
from pathlib import Path

import docx
import pypdf
import pytest

from chatapp.documents import reading as documents_module
from chatapp.documents.cleaning import clean_text, has_real_text
from chatapp.documents.reading import (
    Document,
    IngestError,
    IngestOptions,
    Ingestor,
    ingest,
    iter_documents,
)
from chatapp.documents.extractors import (
    BinaryContentError,
    UndecodableError,
    decode_text,
    html_to_text,
)

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF showing `lines` in Helvetica, with a correct cross-reference table."""
    ops = ["BT", "/F1 18 Tf", "72 720 Td"]
    for i, line in enumerate(lines):
        if i:
            ops.append("0 -28 Td")  # next line, 28 points lower
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"  # every entry is exactly 20 bytes
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref_at)
    return bytes(out)


def make_docx(path: Path) -> None:
    document = docx.Document()
    document.add_heading("Quarterly notes", level=1)
    document.add_paragraph("First paragraph of the letter.")
    document.add_paragraph("")
    table = document.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "Name", (0, 1): "Value", (1, 0): "alpha", (1, 1): "1"}.items():
        table.cell(r, c).text = value
    document.add_paragraph("Closing words.")
    document.save(str(path))


def junk(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(size))


HTML = """<!DOCTYPE html>
<html><head><title>Trip report</title>
<style>body { color: red; } p::after { content: "STYLE"; }</style>
<script>var secret = "SCRIPT"; if (a < b) { alert(1); }</script>
</head>
<body>
  <h1>Day one</h1>
  <p>We walked   to the <b>old</b> harbour &amp; back.<br>It rained.</p>
  <ul><li>bread</li><li>cheese</li></ul>
  <noscript>Enable JavaScript</noscript>
  <pre>
def f():
    return 1
</pre>
  <table><tr><th>Item</th><th>Cost</th></tr><tr><td>Tea</td><td>3</td></tr></table>
</body></html>
"""

PY_SOURCE = (
    "import os\r\n"
    "\r\n"
    "\r\n"
    "def main():\x07\r\n"
    "\tif os.sep:   \r\n"
    "\t\treturn 'ok'\r\n"
    "\r\n\r\n\r\n\r\n\r\n"
    "main()\r\n"
)


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    cafe_nfd = unicodedata.normalize("NFD", "Café")
    (root / "plain.txt").write_bytes(f"{cafe_nfd} au lait, said the note.   \n".encode())
    (root / "plain_copy.txt").write_bytes(f"{cafe_nfd} au lait, said the note.\r\n\r\n".encode())
    (root / "bom8.txt").write_bytes(b"\xef\xbb\xbfUTF-8 with a byte-order mark.\n")
    (root / "bom16.txt").write_bytes("UTF-16 text: \u00fcber \u65e5\u672c\n".encode("utf-16"))
    (root / "crlf.txt").write_bytes(
        b"line one\r\nline two\rline three\x1b[0m\x7f\x00\r\n\r\n\r\n\r\n\r\n\r\n\ttabbed\x0cpage two"
        .replace(b"\x00", b"")  # NUL would (rightly) make it binary
    )
    (root / "notes.md").write_text("# Title\n\nSome *markdown* text.  \n\n- item\n", encoding="utf-8")
    (root / "page.html").write_text(HTML, encoding="utf-8")
    (root / "tool.py").write_bytes(PY_SOURCE.encode())
    (root / "report.pdf").write_bytes(minimal_pdf(["Hello from a PDF.", "Second line (kept)."]))
    make_docx(root / "letter.docx")
    (root / "image.png").write_bytes(PNG_HEADER + b"\x00" * 64)
    (root / "disguised.txt").write_bytes(PNG_HEADER + b"\x00" * 64)
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.txt").write_bytes(b"  \n\t\r\n   \n")
    (root / "rules.md").write_text("----------\n==========\n* * *\n", encoding="utf-8")
    (root / "latin1.txt").write_bytes("na\u00efve caf\u00e9 r\u00e9sum\u00e9 text".encode("latin-1"))
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n" + junk(600, seed=1))
    (root / "broken.docx").write_bytes(junk(600, seed=2))
    (root / "data.xyz").write_text("what is this", encoding="utf-8")
    (root / "README").write_text("A readme file without an extension.\n", encoding="utf-8")
    sub = root / "sub" / "deeper"
    sub.mkdir(parents=True)
    (sub / "nested.rst").write_text("Nested\n======\n\nFound by the recursive walk.\n", encoding="utf-8")
    hidden = root / ".git"
    hidden.mkdir()
    (hidden / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "tool.cpython-311.pyc").write_bytes(b"\x00" * 16)
    return root


EXPECTED = {  # name: (status, kind, reason)
    "README": ("used", "", ""),
    "blank.txt": ("skipped", "empty", "empty"),
    "bom16.txt": ("used", "", ""),
    "bom8.txt": ("used", "", ""),
    "broken.docx": ("skipped", "unreadable", "unreadable: BadZipFile: File is not a zip file"),
    "broken.pdf": ("skipped", "unreadable", None),  # pypdf's wording: checked below
    "crlf.txt": ("used", "", ""),
    "data.xyz": ("skipped", "unsupported type", "unsupported type .xyz"),
    "disguised.txt": ("skipped", "binary", "binary: NUL bytes in the first 8 KB"),
    "empty.txt": ("skipped", "empty", "empty"),
    "image.png": ("skipped", "binary", "binary: .png file"),
    "latin1.txt": ("skipped", "undecodable", "undecodable: not UTF-8 (byte 2) and no byte-order mark"),
    "letter.docx": ("used", "", ""),
    "notes.md": ("used", "", ""),
    "page.html": ("used", "", ""),
    "plain.txt": ("used", "", ""),
    "plain_copy.txt": ("skipped", "duplicate", None),  # names plain.txt's path: checked below
    "report.pdf": ("used", "", ""),
    "rules.md": ("skipped", "empty", "empty"),
    "sub/deeper/nested.rst": ("used", "", ""),
    "tool.py": ("used", "", ""),
}


def run(root, **options):
    ingestor = Ingestor(root, IngestOptions(**options))
    docs = list(ingestor.documents())
    return docs, ingestor.report


def by_name(report, root):
    return {f.path.relative_to(root).as_posix(): f for f in report.files}


def test_every_file_gets_the_expected_status_and_reason(corpus):
    docs, report = run(corpus)
    files = by_name(report, corpus)
    # .git/ and __pycache__/ are not walked; every other file is reported exactly once
    assert sorted(files) == sorted(EXPECTED)
    assert len(report.files) == len(EXPECTED)
    for name, (status, kind, reason) in EXPECTED.items():
        got = files[name]
        assert (name, got.status, got.kind) == (name, status, kind)
        if reason is not None:
            assert got.reason == reason, name
    assert files["plain_copy.txt"].reason == f"duplicate of {corpus / 'plain.txt'}"
    assert files["broken.pdf"].reason.startswith("unreadable: Pdf")
    assert files["broken.pdf"].format == "pdf"
    assert report.complete is True

    # documents come out in walk order (names sorted, depth first) and match the report
    used = [name for name in sorted(EXPECTED) if EXPECTED[name][0] == "used"]
    assert [d.path.relative_to(corpus).as_posix() for d in docs] == used
    for doc in docs:
        entry = files[doc.path.relative_to(corpus).as_posix()]
        assert entry.chars == len(doc.text)
        assert entry.text_bytes == len(doc.text.encode("utf-8"))
        assert doc.sha256 == hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
        assert entry.format == doc.format


def test_formats_and_encodings_are_detected(corpus):
    _, report = run(corpus)
    files = by_name(report, corpus)
    assert {n: files[n].format for n in (
        "README", "bom16.txt", "notes.md", "page.html", "tool.py", "report.pdf",
        "letter.docx", "sub/deeper/nested.rst", "data.xyz", "image.png")} == {
        "README": "text", "bom16.txt": "text", "notes.md": "markdown", "page.html": "html",
        "tool.py": "code", "report.pdf": "pdf", "letter.docx": "docx",
        "sub/deeper/nested.rst": "rst", "data.xyz": "", "image.png": "",
    }
    assert files["plain.txt"].encoding == "utf-8"
    assert files["bom8.txt"].encoding == "utf-8-sig"
    assert files["bom16.txt"].encoding == "utf-16"
    assert files["report.pdf"].encoding == ""
    assert files["plain.txt"].size == (corpus / "plain.txt").stat().st_size


def test_cleaned_texts_are_exact(corpus):
    docs = {d.path.name: d for d in iter_documents(corpus)}
    assert docs["plain.txt"].text == "Caf\u00e9 au lait, said the note."  # NFC, trailing spaces gone
    assert docs["bom8.txt"].text == "UTF-8 with a byte-order mark."  # no BOM left
    assert docs["bom16.txt"].text == "UTF-16 text: \u00fcber \u65e5\u672c"
    # CR and CRLF -> LF, escape/DEL dropped, 5 blank lines -> 2, tab kept, form feed -> newline
    assert docs["crlf.txt"].text == "line one\nline two\nline three[0m\n\n\n\ttabbed\npage two"
    assert docs["notes.md"].text == "# Title\n\nSome *markdown* text.\n\n- item"
    assert docs["tool.py"].text == (
        "import os\n\n\ndef main():\n\tif os.sep:\n\t\treturn 'ok'\n\n\nmain()"
    )
    assert docs["page.html"].text == (
        "Trip report\n\nDay one\n\nWe walked to the old harbour & back.\nIt rained.\n\n"
        "bread\ncheese\n\ndef f():\n    return 1\n\nItem\tCost\nTea\t3"
    )
    assert docs["report.pdf"].text == "Hello from a PDF.\nSecond line (kept)."
    assert docs["letter.docx"].text == (
        "Quarterly notes\n\nFirst paragraph of the letter.\n\nName\tValue\nalpha\t1\n\nClosing words."
    )
    assert docs["nested.rst"].text == "Nested\n======\n\nFound by the recursive walk."
    assert all(isinstance(d, Document) for d in docs.values())


def test_hand_written_pdf_is_valid_for_pypdf_in_strict_mode():
    data = minimal_pdf(["One (a) \\ two", "Three"])
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)  # strict: a wrong xref offset raises
    assert len(reader.pages) == 1
    assert reader.pages[0].extract_text() == "One (a) \\ two\nThree"
    xref_at = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[xref_at:xref_at + 5] == b"xref\n"


def test_file_over_the_size_limit_is_skipped_without_reading(tmp_path, monkeypatch):
    (tmp_path / "big.txt").write_text("x" * 5000 + " words", encoding="utf-8")
    (tmp_path / "small.txt").write_text("small but real text", encoding="utf-8")
    reads = []
    real = documents_module._read_bytes
    monkeypatch.setattr(documents_module, "_read_bytes", lambda p, n: reads.append(p.name) or real(p, n))
    docs, report = run(tmp_path, max_file_bytes=4000)
    big = by_name(report, tmp_path)["big.txt"]
    assert (big.status, big.kind, big.reason) == ("skipped", "too large", "too large (5.0 kB, limit 4.0 kB)")
    assert big.size == 5006
    assert reads == ["small.txt"]
    assert [d.text for d in docs] == ["small but real text"]


def test_file_that_grows_past_the_limit_after_stat_is_too_large(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("short text, under the limit", encoding="utf-8")
    monkeypatch.setattr(documents_module, "_read_bytes", lambda p, n: None)
    _, report = run(tmp_path)
    assert (report.files[0].kind, report.files[0].reason) == ("too large", "too large")


def test_fallback_encoding_is_used_only_when_asked_and_reported(corpus):
    _, report = run(corpus, fallback_encoding="cp1252")
    entry = by_name(report, corpus)["latin1.txt"]
    assert (entry.status, entry.encoding) == ("used", "cp1252")
    assert entry.warning == "not valid UTF-8; decoded as cp1252"
    assert "; 1 warning" in report.summary()


def test_decode_text_rules():
    assert decode_text(b"\xef\xbb\xbfhi") == ("hi", "utf-8-sig", "")
    with pytest.raises(BinaryContentError):
        decode_text("hi".encode("utf-16-le"))  # UTF-16 without a BOM is not guessed
    assert decode_text("caf\u00e9".encode("cp1252"), "cp1252") == (
        "caf\u00e9", "cp1252", "not valid UTF-8; decoded as cp1252")
    with pytest.raises(UndecodableError, match="invalid utf-16 after its byte-order mark"):
        decode_text(b"\xff\xfea\x00b")  # odd length
    assert decode_text("\ufeffx".encode("utf-32-le")) == ("x", "utf-32", "")


def test_permission_error_is_reported_as_unreadable(tmp_path, monkeypatch):
    (tmp_path / "locked.txt").write_text("secret but real text", encoding="utf-8")
    (tmp_path / "open.txt").write_text("public and real text", encoding="utf-8")
    real = documents_module._read_bytes

    def read(path, limit):
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, limit)

    monkeypatch.setattr(documents_module, "_read_bytes", read)
    docs, report = run(tmp_path)
    locked = by_name(report, tmp_path)["locked.txt"]
    assert (locked.status, locked.kind, locked.reason) == (
        "skipped", "unreadable", "unreadable: PermissionError: Permission denied")
    assert [d.path.name for d in docs] == ["open.txt"]


def test_documents_are_yielded_lazily(tmp_path, monkeypatch):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"contents of file {name}", encoding="utf-8")
    (tmp_path / "zz").mkdir()
    reads = []
    real = documents_module._read_bytes
    monkeypatch.setattr(documents_module, "_read_bytes", lambda p, n: reads.append(p.name) or real(p, n))

    ingestor = Ingestor(tmp_path)
    stream = ingestor.documents()
    assert reads == [] and ingestor.report.files == []  # nothing read before the first next()
    first = next(stream)
    assert first.path.name == "a.txt"
    assert reads == ["a.txt"]
    assert [f.path.name for f in ingestor.report.files] == ["a.txt"]
    assert ingestor.report.complete is False
    # a folder is listed only when the walk reaches it: a file made now is still found
    (tmp_path / "zz" / "late.txt").write_text("written after the first yield", encoding="utf-8")
    rest = [d.path.name for d in stream]
    assert rest == ["b.txt", "c.txt", "late.txt"]
    assert reads == ["a.txt", "b.txt", "c.txt", "late.txt"]
    assert ingestor.report.complete is True
    with pytest.raises(RuntimeError, match="already been iterated"):
        ingestor.documents()


def test_on_file_is_called_per_file_as_the_walk_goes(tmp_path):
    (tmp_path / "a.txt").write_text("first real document", encoding="utf-8")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    seen = []
    ingestor = Ingestor([tmp_path], on_file=lambda f: seen.append((f.path.name, f.status, len(docs))))
    docs = []
    for doc in ingestor:
        docs.append(doc)
    # a.txt is reported before it is yielded, b.bin after a.txt was consumed
    assert seen == [("a.txt", "used", 0), ("b.bin", "skipped", 1)]


def test_missing_path_raises_ingest_error_naming_it(tmp_path):
    missing = tmp_path / "no" / "such-folder"
    with pytest.raises(IngestError) as caught:
        iter_documents(missing)  # eager: before any next()
    assert caught.value.path == missing
    assert str(caught.value) == f"{missing}: no such file or folder"
    with pytest.raises(IngestError, match="such-folder"):
        ingest([tmp_path, missing])
    with pytest.raises(IngestError, match="no documents given"):
        Ingestor([])


def test_summary_and_json_report(corpus):
    docs, report = ingest(corpus)
    assert len(docs) == 11
    text_bytes = sum(len(d.text.encode("utf-8")) for d in docs)
    assert 100 < text_bytes < 1000
    assert report.summary() == (
        f"11 files used ({text_bytes} B of text), 10 skipped: 3 empty, 2 binary, 2 unreadable, "
        "1 duplicate, 1 undecodable, 1 unsupported type"
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["files_used"] == 11 and data["files_skipped"] == 10
    assert data["chars"] == sum(len(d.text) for d in docs)
    assert list(data["skipped_by_kind"].items()) == [
        ("empty", 3), ("binary", 2), ("unreadable", 2), ("duplicate", 1), ("undecodable", 1),
        ("unsupported type", 1)]
    assert data["complete"] is True
    first = data["files"][0]
    assert first == {"path": str(corpus / "README"), "status": "used", "reason": "", "kind": "",
                     "format": "text", "size": 36, "chars": 35, "text_bytes": 35,
                     "encoding": "utf-8", "warning": ""}
    assert "files" not in report.to_dict(include_files=False)


def test_summary_sizes_and_plurals(tmp_path):
    (tmp_path / "one.txt").write_text("word " * 400, encoding="utf-8")
    _, report = run(tmp_path)
    assert report.summary() == "1 file used (2.0 kB of text), none skipped"
    report_empty = Ingestor(tmp_path).report
    assert report_empty.summary() == "0 files used (0 B of text), none skipped"


def test_allowed_extensions_and_option_validation(corpus):
    docs, report = run(corpus, extensions={"md", ".TXT"})
    assert {d.path.name for d in docs} == {"plain.txt", "bom8.txt", "bom16.txt", "crlf.txt", "notes.md"}
    files = by_name(report, corpus)
    assert files["tool.py"].reason == "excluded type .py (not in the allowed extensions)"
    assert files["README"].reason == "excluded type (no extension) (not in the allowed extensions)"
    assert IngestOptions(extensions={"MD"}).extensions == frozenset({".md"})
    with pytest.raises(ValueError, match=r"unsupported extensions \.xyz"):
        IngestOptions(extensions={".xyz"})
    with pytest.raises(ValueError, match="max_file_bytes"):
        IngestOptions(max_file_bytes=0)
    with pytest.raises(ValueError, match="min_chars"):
        IngestOptions(min_chars=-1)
    with pytest.raises(LookupError):
        IngestOptions(fallback_encoding="no-such-codec")
    assert IngestOptions().max_file_bytes == 20_000_000


def test_min_chars_counts_letters_and_digits(tmp_path):
    (tmp_path / "short.txt").write_text("Hi there!!!  ---", encoding="utf-8")  # 7 letters
    _, report = run(tmp_path, min_chars=8)
    assert report.files[0].kind == "empty"
    docs, _ = run(tmp_path, min_chars=7)
    assert [d.text for d in docs] == ["Hi there!!!  ---"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_are_skipped_unless_followed_and_loops_end(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "doc.txt").write_text("the real document text", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "other.md").write_text("another document outside", encoding="utf-8")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.txt").symlink_to(real / "doc.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)

    docs, report = run(root)
    assert docs == []
    assert {f.path.name: f.reason for f in report.files} == {
        "link.txt": "symlink (follow_symlinks is off)",
        "linkdir": "symlink (follow_symlinks is off)",
        "loop": "symlink (follow_symlinks is off)",
    }
    docs, report = run(root, follow_symlinks=True)
    assert sorted(d.path.relative_to(root).as_posix() for d in docs) == ["link.txt", "linkdir/other.md"]
    assert len(report.files) == 2  # the loop back to root is not walked again
    # a link given explicitly is followed even with follow_symlinks off
    docs, _ = ingest([root / "link.txt"])
    assert [d.text for d in docs] == ["the real document text"]


def test_explicit_files_and_overlapping_paths_are_read_once(corpus):
    docs, report = ingest([corpus / "notes.md", corpus / "sub", corpus / "notes.md", corpus / "sub" / "deeper"])
    assert [d.path.name for d in docs] == ["notes.md", "nested.rst"]
    assert len(report.files) == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    _, report = run(tmp_path)  # would block forever if the FIFO were opened
    assert (report.files[0].kind, report.files[0].reason) == ("not a regular file", "not a regular file")


def test_clean_text_rules():
    assert clean_text("a\r\nb\rc\x0bd\u2028e") == "a\nb\nc\nd\ne"
    assert clean_text("x\x00\x01\x1f\x7f\x9f\ufeffy\tz") == "xy\tz"
    assert clean_text("e\u0301") == "\u00e9"
    assert clean_text("\n\n  indented  \n\n\n\n\n\nend \t\n\n") == "  indented\n\n\nend"
    assert clean_text("a\n\n\nb") == "a\n\n\nb"  # two blank lines are kept
    assert clean_text("lone \ud800surrogate") == "lone surrogate"
    assert has_real_text("--- a1 ---", 2) and not has_real_text("--- a ---", 2)
    assert has_real_text("", 0)


def test_html_to_text_details():
    assert html_to_text("<p>a<script>x</script>b</p><p>c &lt; d</p>") == "ab\n\nc < d"
    assert html_to_text("<div>one <i>two</i>\n   three</div>") == "one two three"
    assert html_to_text("<svg><text>drawn</text></svg><p>kept</p>") == "kept"
    assert html_to_text("<p>unclosed <style>p{}") == "unclosed"
