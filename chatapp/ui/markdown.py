"""Split a Markdown reply into prose and fenced code blocks, for separate rendering.

Code blocks get their own monospace widget with a copy button; prose is rendered by Qt's
Markdown support. An unclosed fence (a reply still streaming) is a code block in progress.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)")


@dataclass
class Segment:
    kind: str  # "text" or "code"
    text: str
    language: str = ""
    closed: bool = True


def split_markdown(source: str) -> list[Segment]:
    segments: list[Segment] = []
    prose: list[str] = []
    code: list[str] = []
    fence = ""
    language = ""
    for line in source.split("\n"):
        match = FENCE.match(line)
        if not fence and match:
            if prose:
                segments.append(Segment("text", "\n".join(prose)))
                prose = []
            fence, language, code = match.group(1), match.group(2), []
        elif fence and line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            segments.append(Segment("code", "\n".join(code), language))
            fence = ""
        elif fence:
            code.append(line)
        else:
            prose.append(line)
    if fence:
        segments.append(Segment("code", "\n".join(code), language, closed=False))
    elif prose and "\n".join(prose).strip():
        segments.append(Segment("text", "\n".join(prose)))
    return [s for s in segments if s.kind == "code" or s.text.strip()]
