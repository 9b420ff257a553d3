"""Expected stage values for compare-and-swap: None (no check), EMPTY, a version name or a digest."""

from __future__ import annotations

from typing import Final


class Empty:
    """The type of :data:`EMPTY`."""

    _instance: Empty | None = None

    def __new__(cls) -> Empty:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "modelreg.EMPTY"

    def __reduce__(self) -> str:
        return "EMPTY"


EMPTY: Final = Empty()
"""``expect=modelreg.EMPTY``: the stage must be empty (the CLI's ``--expect none``)."""

Expect = str | Empty | None
"""A stage expectation: ``None`` checks nothing; ``EMPTY`` or ``"none"`` wants an empty stage;
a version name or a ``sha256:`` digest (prefix) wants that version."""


def wants_empty(expect: object) -> bool:
    """True for EMPTY and the CLI spelling ``"none"``."""
    return expect is EMPTY or expect == "none"
