"""Text cleaning for documents (fine-tuning and the library): one pipeline for every format.

Extractors turn a file into plain text; `clean_text` makes that text uniform so that the same
document read from a .txt, a .docx or a Windows editor hashes the same, and so that stray
control characters never reach the tokenizer.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that end a line in some convention. \f (page break, also what some PDF tools
# emit between pages) and \v would otherwise be dropped as control characters and glue two
# lines together.
_LINE_BREAKS = re.compile(r"\r\n|[\r\v\f\x85\u2028\u2029]")

# C0/C1 controls except \t and \n, DEL, a BOM left in the middle of a text (files joined
# with `cat`), and lone surrogates (which could not even be encoded to UTF-8 for hashing).
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ud800-\udfff]")

_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)

# More than two blank lines in a row. Two are kept: PEP 8 separates top-level definitions
# with two, and code is kept as written.
_BLANK_RUN = re.compile(r"\n{4,}")


def clean_text(text: str) -> str:
    """NFC, LF line ends, no control characters but \\t and \\n, no trailing spaces,
    at most two blank lines in a row, no blank lines at either end (indentation of the
    first line is kept)."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _UNWANTED.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_RUN.sub("\n\n\n", text)
    return text.lstrip("\n").rstrip()


def has_real_text(text: str, min_chars: int) -> bool:
    """True when `text` holds at least `min_chars` letters or digits.

    Punctuation, rules (`-----`) and whitespace are not real text, so a file of separators
    or an HTML page that was all script counts as empty. Stops counting as soon as it knows.
    """
    if min_chars <= 0:
        return True
    count = 0
    for ch in text:
        if ch.isalnum():
            count += 1
            if count >= min_chars:
                return True
    return False
