"""Chunking by structure: spans point at the right text, headings and code blocks respected."""

from __future__ import annotations

import random

import pytest

from chatapp.documents.chunking import ChunkOptions, chunk_text
from chatapp.documents.cleaning import clean_text

MARKDOWN = """# Harbour guide

The harbour opened in 1852.

## Lanterns

Red lanterns mark the north pier.
Green lanterns mark the south pier.

```python
def light(pier):

    return "red" if pier == "north" else "green"
```

### Repairs

Lanterns are repaired every spring.

## Boats

Ferries leave at dawn.
"""


def check_spans(text: str, chunks, headings_may_go: bool = False) -> None:
    """Every chunk is the exact slice of its span; spans are ordered and cover every
    non-blank character of the text (but for Markdown heading lines when `headings_may_go`:
    a heading that does not fit beside its section's text is carried as the heading path)."""
    assert chunks, "no chunks"
    covered = [False] * len(text)
    previous_start = -1
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert chunk.text == text[chunk.start:chunk.end]
        assert chunk.text.strip() == chunk.text.strip() and chunk.text.strip()
        assert chunk.start > previous_start
        previous_start = chunk.start
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    if headings_may_go:
        from chatapp.documents.chunking import _ATX_HEADING, iter_lines
        for start, end in iter_lines(text):
            if _ATX_HEADING.match(text, start, end):
                missing = [i for i in missing if not start <= i < end]
    assert missing == [], f"characters in no chunk: {text[missing[0]:missing[0] + 20]!r}"


def test_markdown_sections_carry_their_heading_path():
    text = clean_text(MARKDOWN)
    chunks = chunk_text(text, "markdown", ChunkOptions(max_chars=2000, overlap_chars=0))
    check_spans(text, chunks)
    by_heading = {c.heading: c.text for c in chunks}
    assert list(by_heading) == [("Harbour guide",), ("Harbour guide", "Lanterns"),
                                ("Harbour guide", "Lanterns", "Repairs"), ("Harbour guide", "Boats")]
    assert by_heading[("Harbour guide", "Boats")] == "## Boats\n\nFerries leave at dawn."
    assert "Repairs" not in by_heading[("Harbour guide", "Lanterns")]
    assert chunks[1].heading_path == "Harbour guide > Lanterns"


def test_a_code_block_is_never_cut_at_its_blank_lines():
    text = clean_text(MARKDOWN)
    # Small chunks: every block on its own, but the fenced block stays whole.
    chunks = chunk_text(text, "markdown", ChunkOptions(max_chars=100, overlap_chars=0))
    check_spans(text, chunks)
    code = [c for c in chunks if "def light" in c.text]
    assert len(code) == 1
    assert code[0].text.startswith("```python") and code[0].text.endswith("```")
    assert '"green"' in code[0].text


def test_a_heading_inside_a_code_block_is_code():
    text = "# Real\n\n```sh\n# not a heading\necho hi\n```\n\nAfter."
    chunks = chunk_text(text, "markdown")
    check_spans(text, chunks)
    assert {c.heading for c in chunks} == {("Real",)}


def test_plain_text_is_cut_at_paragraphs():
    paragraphs = [f"Paragraph {i} says something about topic {i}." for i in range(6)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, "text", ChunkOptions(max_chars=100, overlap_chars=0))
    check_spans(text, chunks)
    for chunk in chunks:  # whole paragraphs only
        assert all(part in paragraphs for part in chunk.text.split("\n\n"))
    assert all(c.heading == () for c in chunks)
    assert len(chunks) == 3  # two ~45-character paragraphs fit in 100


def test_code_is_cut_between_definitions():
    text = "\n\n".join(f"def f{i}():\n    return {i}\n" for i in range(30)).rstrip()
    chunks = chunk_text(text, "code", ChunkOptions(max_chars=120, overlap_chars=0))
    check_spans(text, chunks)
    for chunk in chunks:
        assert chunk.text.startswith("def f")
        assert chunk.text.count("def ") == chunk.text.count("return ")


def test_long_paragraphs_are_cut_at_spaces_with_overlap():
    words = [f"word{i}" for i in range(400)]
    text = " ".join(words)
    options = ChunkOptions(max_chars=200, overlap_chars=40)
    chunks = chunk_text(text, "text", options)
    check_spans(text, chunks)
    assert len(chunks) > 10
    for before, after in zip(chunks, chunks[1:]):
        assert after.start < before.end, "no overlap"
        assert before.end - after.start <= options.overlap_chars
        assert text[after.start - 1] == " "  # starts at a word
        assert text[before.end] == " " or before.end == len(text)  # ends at a word


def test_chinese_without_spaces_is_cut_and_spans_hold():
    sentence = "港口在一八五二年开放，红色灯笼标记北码头。"
    text = sentence * 40
    chunks = chunk_text(text, "text", ChunkOptions(max_chars=100, overlap_chars=30))
    check_spans(text, chunks)
    assert all(len(c.text) <= 130 for c in chunks)
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:]))  # overlap at a full stop


def test_blank_text_has_no_chunks():
    assert chunk_text("", "markdown") == []
    assert chunk_text("\n\n  \n", "text") == []


def test_options_are_checked():
    with pytest.raises(ValueError, match="overlap_chars"):
        ChunkOptions(max_chars=100, overlap_chars=100)
    with pytest.raises(ValueError, match="max_chars"):
        ChunkOptions(max_chars=5)


def _random_document(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 25)):
        kind = rng.choice(("heading", "para", "para", "code", "long", "chinese", "blank"))
        if kind == "heading":
            parts.append("#" * rng.randint(1, 4) + " " + rng.choice(("Intro", "Setup", "API", "说明")))
        elif kind == "para":
            parts.append(" ".join(rng.choice(("alpha", "beta", "gamma", "delta", "x")) for _ in range(rng.randint(1, 40))))
        elif kind == "code":
            body = "\n".join(rng.choice(("x = 1", "", "    y()", "# c", "  ")) for _ in range(rng.randint(0, 12)))
            parts.append(f"```\n{body}\n```")
        elif kind == "long":
            parts.append("".join(rng.choice("abc \n") for _ in range(rng.randint(100, 900))))
        elif kind == "chinese":
            parts.append("".join(rng.choice("港口开放灯笼。码头") for _ in range(rng.randint(1, 400))))
        else:
            parts.append("\n\n")
    return clean_text(rng.choice(("\n\n", "\n")).join(parts))


@pytest.mark.parametrize("fmt", ["markdown", "text", "code"])
def test_spans_hold_on_random_documents(fmt):
    rng = random.Random(f"chunks-{fmt}")
    for _ in range(300):
        text = _random_document(rng)
        options = ChunkOptions(max_chars=rng.randint(20, 400), overlap_chars=rng.randint(0, 19))
        chunks = chunk_text(text, fmt, options)
        if not text.strip():
            assert chunks == []
            continue
        check_spans(text, chunks, headings_may_go=fmt == "markdown")
        for chunk in chunks:  # max_chars of its own text, plus at most the overlap
            assert len(chunk.text) <= options.max_chars + options.overlap_chars


def test_a_heading_is_never_a_chunk_alone_when_its_section_has_text():
    """Small chunks: the heading line no longer fits beside the paragraph; it is left out of the
    chunks (its words are their heading path), not made a passage of its own."""
    text = "# The founding of the company\n\n" + "Edda Halvorsen began the company in 1958 in a boathouse. " * 3 + \
           "\n\n# Empty section\n"
    chunks = chunk_text(text, "markdown", ChunkOptions(max_chars=200, overlap_chars=40))
    assert all(not c.text.lstrip().startswith("# The founding") for c in chunks)
    assert chunks[0].heading == ("The founding of the company",) and chunks[0].text.startswith("Edda")
    assert all(c.text == text[c.start:c.end] for c in chunks)
    assert chunks[-1].text == "# Empty section"  # a section with nothing but its heading keeps it
    big = chunk_text(text, "markdown", ChunkOptions(max_chars=2000, overlap_chars=0))
    assert big[0].text.startswith("# The founding")  # when they fit together, the heading stays
