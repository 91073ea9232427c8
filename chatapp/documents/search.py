"""Turning a question into FTS5 queries, and fusing ranked lists.

Two indexes answer a query (see library.py): a word index (unicode61 tokens, BM25), where
Chinese, Japanese and Korean text is also indexed one character per token so that bigram
phrases match words inside a run of characters; and a trigram index, where a query word
matches inside longer words ("found" finds "founded") and any three characters of Chinese
match. `reciprocal_rank_fusion` merges their rankings (Cormack et al. 2009).

Queries are built from the words of the user's text, each quoted: nothing the user types can
be read as FTS5 syntax.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK = re.compile(f"[{CJK_CHARS}]")
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_WORD = re.compile(r"\w+")

# Very common English words: they match most chunks, cost the most to look up, and BM25
# gives them almost no weight anyway.
STOP_WORDS = frozenset("""
a an and are as at be but by did do does for from had has have he her his how i if in into is it
its me my no not of on or our she so that the their them then there these they this to was we
were what when where which who whom why will with you your
""".split())

MAX_TERMS = 48  # bounds the cost of a query built from a long message plus recent turns
RRF_K = 60


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def cjk_spaced(text: str) -> str:
    """The CJK characters of `text`, one token each (runs separated by newlines), for the word
    index's `cjk` column; '' when the text has none (no cost for other languages)."""
    runs = _CJK_RUN.findall(text)
    return "\n".join(" ".join(run) for run in runs)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _latin_words(text: str) -> list[str]:
    words = []
    for token in _WORD.findall(text.lower()):
        token = _CJK_RUN.sub(" ", token).strip()
        words.extend(token.split())
    return words


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def word_query(text: str) -> str:
    """FTS5 MATCH expression for the word index: OR of the words (stop words left out unless
    nothing else is left) and of CJK character bigrams as phrases; '' when there is nothing."""
    words = _unique(_latin_words(text))
    content = [w for w in words if w not in STOP_WORDS] or words
    terms = [_quote(w) for w in content]
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            terms.append(_quote(run))
        terms.extend(_quote(f"{a} {b}") for a, b in zip(run, run[1:]))
    return " OR ".join(_unique(terms)[:MAX_TERMS])


def trigram_query(text: str) -> str:
    """FTS5 MATCH expression for the trigram index: each content word of 4+ characters as a
    substring, each 3 characters of a CJK run; '' when there is nothing that long."""
    terms = [_quote(w) for w in _unique(_latin_words(text)) if len(w) >= 4 and w not in STOP_WORDS]
    for run in _CJK_RUN.findall(text):
        terms.extend(_quote(run[i:i + 3]) for i in range(len(run) - 2))
    return " OR ".join(_unique(terms)[:MAX_TERMS])


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """(id, score) best first; score is the sum over rankings of 1 / (k + rank), rank from 1.
    Ties keep the order of the first ranking that has them."""
    scores: dict[int, float] = {}
    first_seen: dict[int, tuple[int, int]] = {}
    for which, ranking in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            first_seen.setdefault(item, (which, rank))
    return sorted(scores.items(), key=lambda kv: (-kv[1], first_seen[kv[0]][1], first_seen[kv[0]][0]))


def snippet(text: str, query: str, width: int = 160) -> str:
    """About `width` characters of `text` around the first query word found in it, on one line."""
    lowered = text.lower()
    at = -1
    for word in sorted(_latin_words(query) + _CJK_RUN.findall(query), key=len, reverse=True):
        if word in STOP_WORDS:
            continue
        at = lowered.find(word[:3] if _CJK.match(word) else word)
        if at >= 0:
            break
    start = max(0, at - width // 3) if at >= 0 else 0
    if start > 0:  # begin at a word, not inside one
        space = text.find(" ", start, at if at > start else start + 20)
        start = space + 1 if space >= 0 else start
    piece = " ".join(text[start:start + width].split())
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(text) else "")
