"""The message tree of one conversation as plain data: the active path and each message's siblings.

Pure functions over `Message` lists (all of a conversation's messages, in creation order), so the
store reads a conversation with one query and the rules live in one place:
- the children of a parent are its siblings, in creation order;
- among siblings, the active one is on the path; when several claim it (a hand-edited import) the
  latest of them wins, and when none does, the latest sibling: a path never stops early.
"""

from __future__ import annotations

from typing import Optional, Sequence, TypeVar

M = TypeVar("M")  # a Message (anything with id, parent_id and active)


def children_of(messages: Sequence[M]) -> dict[Optional[int], list[M]]:
    """Each parent id (None for the first messages) -> its children, in creation order."""
    known = {m.id for m in messages}
    children: dict[Optional[int], list[M]] = {}
    for m in messages:
        parent = m.parent_id if m.parent_id in known else None  # an orphan is shown as a root
        children.setdefault(parent, []).append(m)
    return children


def chosen(siblings: Sequence[M]) -> M:
    """The sibling on the path (see the module docstring)."""
    active = [m for m in siblings if m.active]
    return (active or list(siblings))[-1]


def active_path(messages: Sequence[M]) -> list[M]:
    """The messages shown and given to the model, first to last."""
    children = children_of(messages)
    path: list[M] = []
    siblings = children.get(None, [])
    while siblings:
        current = chosen(siblings)
        path.append(current)
        siblings = children.get(current.id, [])
    return path


def branch_numbers(messages: Sequence[M]) -> dict[int, tuple[int, int]]:
    """For each message on the active path: (its number among its siblings from 1, how many)."""
    children = children_of(messages)
    numbers: dict[int, tuple[int, int]] = {}
    siblings = children.get(None, [])
    while siblings:
        current = chosen(siblings)
        numbers[current.id] = (siblings.index(current) + 1, len(siblings))
        siblings = children.get(current.id, [])
    return numbers


def descendants(messages: Sequence[M], message_id: int) -> list[int]:
    """`message_id` and every message below it."""
    children = children_of(messages)
    found, todo = [], [message_id]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(m.id for m in children.get(current, []))
    return found
