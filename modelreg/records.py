"""Model records: the fields of a model itself (``modelreg model set`` / ``model show``).

A model has ``description``, ``task``, ``subject`` and ``owner`` (text), and any other key a
team wants (typed by the one rule of :mod:`modelreg.values`). They are ``model`` events in the
model's log (``version`` null, ``data: {"fields": {K: V}}``), folded by :mod:`modelreg.state`
like the annotations of versions: later values win per key, mappings merge key by key and a
null value removes a key. Nothing here writes; :class:`modelreg.registry.Registry` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

TEXT_FIELDS = ("description", "task", "subject", "owner")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\Z")
MAX_TEXT = 10_000


def parse_pairs(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` arguments of ``model set``: VALUE typed by the one rule, except that the text
    fields (description, task, subject, owner) keep the text typed (quotes removed); ``null``
    still removes a field. A dotted KEY nests (``links.docs=https://...``)."""
    from .values import parse_pairs as typed

    out = typed(list(pairs), "model field")
    for pair in pairs:
        key, _, raw = pair.partition("=")
        key = key.strip()
        if key in TEXT_FIELDS and out[key] is not None and not isinstance(out[key], str):
            out[key] = raw  # a number or boolean typed in a text field (task=1.0): the text as typed
    return out


def check_fields(fields: Any) -> dict[str, Any]:
    """Validate model fields (library input): at least one, keys ``[A-Za-z0-9_-]`` (nested
    mappings likewise), the text fields text (or null, which removes them). The caller checks
    that values are JSON."""
    if not isinstance(fields, dict) or not fields:
        raise UsageError("model set: give at least one KEY=VALUE")
    _keys(fields, "")
    for key in TEXT_FIELDS:
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"model field {key!r} is text, not {type(value).__name__}")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise UsageError(f"model field {key!r} is longer than {MAX_TEXT} characters")
    return fields


def _keys(mapping: dict[str, Any], where: str) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise UsageError(f"invalid model field name {where + str(key)!r}: use A-Z a-z 0-9 _ - "
                             "(at most 64 characters; a dot nests)")
        if isinstance(value, dict):
            _keys(value, f"{where}{key}.")


@dataclass
class ModelInfo:
    """A model: its fields, and what its versions and stages say about it."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    versions: int = 0
    archived: int = 0
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version
    latest: str | None = None
    first_registered: str | None = None
    last_registered: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **{k: self.fields.get(k) for k in TEXT_FIELDS},
            "fields": self.fields,
            "versions": self.versions,
            "archived": self.archived,
            "stages": self.stages,
            "latest": self.latest,
            "first_registered": self.first_registered,
            "last_registered": self.last_registered,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }

    def lines(self) -> list[tuple[str, str]]:
        """``(label, text)`` rows for ``model show``."""
        from .values import display

        rows = [(k, self.fields[k]) for k in TEXT_FIELDS if k in self.fields]
        rows += [(k, display(v)) for k, v in sorted(self.fields.items()) if k not in TEXT_FIELDS]
        rows.append(("versions", f"{self.versions} ({self.archived} archived)"))
        rows.append(("latest", self.latest or "-"))
        rows.append(("stages", "  ".join(f"{s}={v}" for s, v in self.stages.items()) or "-"))
        rows.append(("registered", f"{self.first_registered or '?'} .. {self.last_registered or '?'}"))
        if self.updated_at:
            rows.append(("updated", f"{self.updated_at} by {self.updated_by}"))
        return rows
