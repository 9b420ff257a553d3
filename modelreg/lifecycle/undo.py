"""The rollback stack of one stage: the moves not undone yet, folded from the stage's moves in causal order."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..log import Event


def undo_stack(moves: list[Event]) -> list[Event]:
    """The moves of one stage that a rollback could still undo, oldest first (the top is last).

    ``moves`` are the stage's move events in causal order. A promote, demote, clear or
    reconcile is pushed. A rollback pops: one written by this modelreg names the moves it
    undid in ``data.undoes`` and removes exactly those (ids no longer on the stack were
    undone on another branch already); one written before ``undoes`` existed removes the
    stack down to the topmost move whose ``from`` is the value it restored, or, when no
    move restored that value, is pushed like any other move.
    """
    stack: list[Event] = []
    for e in moves:
        if e.action != "rollback":
            stack.append(e)
            continue
        undoes = e.data.get("undoes")
        if isinstance(undoes, list):
            gone = {i for i in undoes if isinstance(i, str)}
            stack = [m for m in stack if m.id not in gone]
            continue
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].from_ == e.to:
                del stack[i:]
                break
        else:
            stack.append(e)
    return stack


def rewind(stack: list[Event], target: str) -> list[Event] | None:
    """The moves ``rollback --to`` undoes to bring the stage back to digest ``target``: the
    stack down to the topmost move whose ``from`` is ``target``, newest first; None when no
    move on the stack replaced ``target`` (then it undoes the whole stack)."""
    for i in range(len(stack) - 1, -1, -1):
        if stack[i].from_ == target:
            return list(reversed(stack[i:]))
    return None
