"""Cutting a cleaned document into passages for search and prompts, by its structure.

    chunks = chunk_text(document.text, document.format)
    chunks[0].text == document.text[chunks[0].start:chunks[0].end]   # always

Markdown is cut at headings first (each chunk carries its heading path, e.g.
("Install", "On Linux")), then at blank lines between paragraphs; a fenced code block is one
block, never cut at its blank lines. Other formats are cut at blank lines (paragraphs, or the
blank lines between definitions in code). Blocks are packed into chunks of at most
`max_chars`; a block longer than that is cut at line ends, then at spaces, then anywhere (text
without spaces, such as Chinese). Each chunk after the first of a section starts up to
`overlap_chars` earlier, at a word start, so that a sentence cut in two is whole in one chunk.
A chunk's text is always the exact slice `text[start:end]` of the text it came from. A heading
line goes into its section's first chunk when they fit together, and is never a chunk of its
own unless its section has nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

MARKDOWN = "markdown"

_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_BLANK = re.compile(r"[ \t]*$")
_SENTENCE_ENDS = frozenset("。！？；")


@dataclass(frozen=True)
class ChunkOptions:
    """`max_chars`: the most characters of new text in a chunk (about 4 characters a token
    in English, 1-2 in Chinese); `overlap_chars`: how far a chunk may reach back into the one
    before it. The defaults are sized for the prompt of a small model: measured with the default
    135M model on benchmarks/knowledge_docs, three passages of at most 300 characters answered
    7/10 questions, two of at most 1,000 characters 4/10 (the answer was in them 9/10 times)."""

    max_chars: int = 300
    overlap_chars: int = 75

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError(f"max_chars must be at least 20, got {self.max_chars}")
        if not 0 <= self.overlap_chars < self.max_chars:
            raise ValueError(f"overlap_chars must be in [0, max_chars), got {self.overlap_chars}")


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offsets in the cleaned text: text == source[start:end]
    end: int
    heading: tuple[str, ...] = ()  # Markdown heading path, outermost first

    @property
    def heading_path(self) -> str:
        return " > ".join(self.heading)


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    heading: tuple[str, ...]
    opens_section: bool = False  # a heading line: the section it opens starts a new chunk


def chunk_text(text: str, fmt: str = "text", options: Optional[ChunkOptions] = None) -> list[Chunk]:
    """Chunks of `text` (already cleaned) in document order; [] for blank text."""
    options = options or ChunkOptions()
    blocks = _markdown_blocks(text) if fmt == MARKDOWN else _paragraph_blocks(text)
    chunks: list[Chunk] = []
    section: list[_Block] = []
    for block in blocks:
        if section and (block.opens_section or block.heading != section[0].heading):
            chunks.extend(_pack(text, section, options))
            section = []
        section.append(block)
    if section:
        chunks.extend(_pack(text, section, options))
    return chunks


def iter_lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, the newline excluded."""
    start = 0
    length = len(text)
    while start <= length:
        end = text.find("\n", start)
        if end < 0:
            end = length
        yield start, end
        start = end + 1


def _paragraph_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    para_start = None
    para_end = 0
    for start, end in iter_lines(text):
        if _BLANK.match(text, start, end):
            if para_start is not None:
                blocks.append(_Block(para_start, para_end, ()))
                para_start = None
        else:
            if para_start is None:
                para_start = start
            para_end = end
    if para_start is not None:
        blocks.append(_Block(para_start, para_end, ()))
    return blocks


def _markdown_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    headings: list[tuple[int, str]] = []  # (level, title) of the open headings
    path: tuple[str, ...] = ()
    para_start: Optional[int] = None
    para_end = 0
    fence: Optional[str] = None  # the opening fence's characters while inside a code block
    fence_start = 0

    def close_paragraph() -> None:
        nonlocal para_start
        if para_start is not None:
            blocks.append(_Block(para_start, para_end, path))
            para_start = None

    for start, end in iter_lines(text):
        line = text[start:end]
        if fence is not None:
            match = _FENCE.match(line)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line[match.end():].strip():
                blocks.append(_Block(fence_start, end, path))
                fence = None
            continue
        match = _FENCE.match(line)
        if match:
            close_paragraph()
            fence, fence_start = match.group(1), start
            continue
        match = _ATX_HEADING.match(line)
        if match:
            close_paragraph()
            level, title = len(match.group(1)), (match.group(2) or "").strip()
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, title))
            path = tuple(t for _, t in headings)
            blocks.append(_Block(start, end, path, opens_section=True))
            continue
        if _BLANK.match(line):
            close_paragraph()
        else:
            if para_start is None:
                para_start = start
            para_end = end
    close_paragraph()
    if fence is not None:  # an unclosed fence runs to the end, as CommonMark says
        blocks.append(_Block(fence_start, len(text.rstrip()), path))
    return blocks


def _pack(text: str, section: list[_Block], options: ChunkOptions) -> Iterator[Chunk]:
    """Chunks of one section (blocks under one heading path)."""
    heading = section[0].heading
    pieces: list[tuple[int, int]] = []
    for block in section:
        pieces.extend(_split_long(text, block.start, block.end, options.max_chars))
    spans: list[tuple[int, int]] = []
    for start, end in pieces:
        if spans and end - spans[-1][0] <= options.max_chars:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    if len(spans) > 1 and section[0].opens_section and spans[0] == (section[0].start, section[0].end):
        # A heading line with no room for its text beside it is no passage (it ranked first
        # for questions naming the section's subject and filled a passage with nothing); its
        # words are the heading path every chunk of the section carries and is searched by.
        spans = spans[1:]
    previous_start = -1
    for start, end in spans:
        natural = start
        if previous_start >= 0 and options.overlap_chars:
            start = _word_start(text, max(previous_start + 1, natural - options.overlap_chars), natural)
        previous_start = natural
        yield Chunk(text[start:end], start, end, heading)


def _split_long(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """(start, end) pieces of text[start:end], each at most `limit` characters, cut at the
    last line end, else the last space, else exactly at the limit."""
    while end - start > limit:
        cut = text.rfind("\n", start + 1, start + limit + 1)
        if cut <= start:
            cut = _last_space(text, start + 1, start + limit + 1)
        if cut <= start:
            cut = start + limit
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > start:
            yield start, piece_end
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        yield start, end


def _last_space(text: str, lo: int, hi: int) -> int:
    for i in range(hi - 1, lo - 1, -1):
        if text[i] in " \t":
            return i
    return -1


def _word_start(text: str, lo: int, natural: int) -> int:
    """The first position in [lo, natural] that starts a word or a sentence (after whitespace
    or a Chinese full stop); `natural` when there is none (a partial word is no overlap)."""
    for i in range(max(lo, 1), natural):
        if (text[i - 1].isspace() or text[i - 1] in _SENTENCE_ENDS) and not text[i].isspace():
            return i
    return natural
