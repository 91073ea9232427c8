"""Hostile documents: a .docx whose XML expands far beyond its size on disk is refused from
the zip's directory, before anything is decompressed, in bounded memory."""

from __future__ import annotations

import io
import zipfile

import pytest

from chatapp.documents import extractors
from chatapp.documents.extractors import TooLargeError, check_zip_sizes, extract
from tests.helpers.bounded import run_bounded

docx = pytest.importorskip("docx")


def docx_bytes(text: str = "hello", padding: int = 0) -> bytes:
    """A real .docx; `padding` bytes of whitespace after document.xml's root (still valid XML)."""
    document = docx.Document()
    document.add_paragraph(text)
    plain = io.BytesIO()
    document.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml" and padding:
                with dst.open("word/document.xml", "w", force_zip64=True) as f:
                    f.write(data)
                    chunk = b" " * (1 << 20)
                    for _ in range(padding >> 20):
                        f.write(chunk)
                continue
            dst.writestr(info, data)
    return out.getvalue()


def test_ordinary_docx_is_read():
    assert extract(docx_bytes("a sentence"), extractors.DOCX).text == "a sentence"


def test_docx_expanding_beyond_the_limit_is_refused_before_reading(tmp_path):
    bomb = tmp_path / "bomb.docx"
    bomb.write_bytes(docx_bytes(padding=200 << 20))  # ~200 KB on disk, 200 MB of XML
    assert bomb.stat().st_size < 1 << 20
    result = run_bounded(f"""
        from pathlib import Path
        from chatapp.documents.reading import IngestOptions, read_file
        doc, rep = read_file(Path({str(bomb)!r}), IngestOptions())
        report(doc=doc is not None, kind=rep.kind, reason=rep.reason)
    """, memory=1 << 30, timeout=60)
    assert not result["doc"] and result["kind"] == "too large"
    assert "word/document.xml expands to" in result["reason"]
    assert result["seconds"] < 10 and result["max_rss_mb"] < 400


def test_total_and_member_count_limits():
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        for i in range(5):
            z.writestr(f"part{i}.xml", b"x" * 100)
    with pytest.raises(TooLargeError, match="expands to 500 bytes"):
        check_zip_sizes(data.getvalue(), max_member=1000, max_total=400)
    with pytest.raises(TooLargeError, match="5 parts"):
        check_zip_sizes(data.getvalue(), max_members=4)


def test_not_a_zip_is_our_error():
    with pytest.raises(extractors.ExtractionError, match="BadZipFile"):
        extract(b"PK\x03\x04 not really", extractors.DOCX)
