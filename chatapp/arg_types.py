"""argparse `type=` functions for whole numbers, shared by the commands and the training
options table (training/protocol.py), so a bad value is argparse's one usage line naming the
option in both. Torch-free, Qt-free: any layer may import it.
"""

from __future__ import annotations

import argparse
from typing import Callable, Optional


def bounded_int(low: int, high: Optional[int] = None, what: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]."""
    if not what:
        what = ("a positive whole number" if low == 1 else "0 or a positive whole number" if low == 0
                else f"a whole number of at least {low}")
        if high is not None:
            what += f" up to {high:,}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = "whole number"  # what argparse names in its own messages
    return parse


positive_int = bounded_int(1)
non_negative_int = bounded_int(0)
