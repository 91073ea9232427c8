"""Two-way tensor name tables: one declarative table per file format and family serves both
reading (their name -> ours) and writing (ours -> theirs).

A table is a list of (their template, our template); in a template `{i}` stands for a layer
index and `{p}` for `weight` or `bias`, e.g. ("blk.{i}.attn_q.{p}", "layers.{i}.attn.q_proj.{p}").
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

FIELDS = {"i": r"\d+", "p": r"weight|bias", "e": r"\d+"}  # e: an expert of a mixture of experts


def _regex(template: str) -> re.Pattern[str]:
    """"blk.{i}.attn_q.{p}" -> a regex capturing i (layer) and p (weight or bias)."""
    pattern = re.escape(template)
    for name, alternatives in FIELDS.items():
        pattern = pattern.replace(rf"\{{{name}\}}", rf"(?P<{name}>{alternatives})")
    return re.compile(pattern)


class NameMap:
    """One table, read either way; None where no template matches."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        self._to_ours = [(_regex(theirs), ours) for theirs, ours in self.pairs]
        self._to_theirs = [(_regex(ours), theirs) for theirs, ours in self.pairs]

    @staticmethod
    def _translate(name: str, table: list[tuple[re.Pattern[str], str]]) -> Optional[str]:
        for regex, target in table:
            m = regex.fullmatch(name)
            if m:
                return target.format(**m.groupdict())
        return None

    def ours(self, theirs: str) -> Optional[str]:
        return self._translate(theirs, self._to_ours)

    def theirs(self, ours: str) -> Optional[str]:
        return self._translate(ours, self._to_theirs)
