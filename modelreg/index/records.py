"""Search records as SQL rows: each leaf value of a record under its dotted path, typed for comparison."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..query import _PEP440_RE, _SEMVER_RE, version_key

# attrs.kind: how a leaf value is stored; UNSAFE (an integer SQLite would round) is always re-checked
NULL, BOOL, NUMBER, TEXT, UNSAFE = 0, 1, 2, 3, 5
_SAFE_INT = 1 << 53  # beyond this, SQLite's REAL comparisons may round: such values are re-checked in Python


# Fields filtered through their own column of `versions` (modelreg.index.filters.COLUMNS), not attrs.
_IN_COLUMNS = frozenset({"manifest_tags", "name", "digest", "license", "registered_at", "fingerprint", "archived",
                         "parents", "artifacts"})


def leaves(record: dict[str, Any]) -> Iterator[tuple[str, int, Any, str | None, str | None]]:
    """``(path, kind, num, txt, vkey)`` for every scalar a ``--where FIELD`` can reach in ``record``.

    Paths join keys with dots, as the query language's greedy resolution reads them; a list of
    scalars gives one row per element (lists match when an element does); mappings inside lists
    are unreachable by a dotted path and are left out. ``vkey`` is the version order key of the
    ``version`` field, for ``version == 1.0`` to find ``1.0.0``.
    """
    stack: list[tuple[str, Any]] = [(k, v) for k, v in record.items() if k not in _IN_COLUMNS]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            for x in value:
                if not isinstance(x, (dict, list)):
                    yield _leaf(path, x)
        else:
            yield _leaf(path, value)


def _leaf(path: str, x: Any) -> tuple[str, int, Any, str | None, str | None]:
    if x is None:
        return path, NULL, None, None, None
    if isinstance(x, bool):
        return path, BOOL, int(x), None, None
    if isinstance(x, int):
        return (path, NUMBER, x, None, None) if -_SAFE_INT < x < _SAFE_INT else (path, UNSAFE, None, None, None)
    if isinstance(x, float):
        return path, NUMBER, x, None, None
    text = str(x)
    vkey = None
    if path == "version" or _maybe_version(text):
        k = version_key(text)
        vkey = repr(k) if k is not None else None
    return path, TEXT, None, text, vkey


def _maybe_version(text: str) -> bool:
    s = text.strip()
    return bool(s) and (s[0].isdigit() or s[0] in "vV") and bool(_SEMVER_RE.match(s) or _PEP440_RE.match(s))


def fingerprint(params: dict[str, Any] | None) -> str:
    """The training-config fingerprint: ``sha256:`` of the canonical YAML of ``{"params": params}``."""
    from .. import canonical
    from ..hashing import sha256_bytes

    return "sha256:" + sha256_bytes(canonical.dump({"params": params or {}}))


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def version_fields(st: Any, manifest_tags: list[str]) -> dict[str, Any]:
    """What the log says about a version (a :class:`state.VersionState` or None), read defensively."""
    tags = set(manifest_tags)
    if st is not None:
        current = getattr(st, "tags", None)
        if isinstance(current, (set, frozenset, list, tuple)):
            tags |= set(current)
        tags |= set(getattr(st, "tags_added", ()) or ())
        tags -= set(getattr(st, "tags_removed", ()) or ())
    metrics = getattr(st, "metrics", None) if st is not None else None
    bindings = getattr(st, "bindings", None) if st is not None else None
    rating = getattr(st, "rating", None) if st is not None else None
    return {
        "archived": bool(st and st.archived),
        "registered_at": st.registered_at if st else None,
        "tags": sorted(tags),
        "metrics": _copy(metrics) if isinstance(metrics, dict) else {},
        "rating": dict(rating) if isinstance(rating, dict) else {"avg": None, "count": 0},
        "bindings": {p: {k: _copy(v) for k, v in b.items() if k not in ("time", "actor", "updated_by")}
                     for p, b in bindings.items()} if isinstance(bindings, dict) else {},
    }


def manifest_part(reg: Any, model: str, version: str, digest: str) -> dict[str, Any]:
    """The fields of a search record that come from the (immutable) manifest of ``digest``."""
    from ..errors import ModelregError
    from ..registry import Resolved

    m = reg._manifest_of(Resolved(model, version, digest))
    parents = []
    for p in m.get("parents", []):
        entry = {"digest": p["digest"], "relation": p.get("relation"), "name": None, "version": None}
        try:
            ident = reg._identity(p["digest"])
            entry["name"], entry["version"] = ident.name, ident.version
        except ModelregError:
            pass
        parents.append(entry)
    return {
        "name": model,
        "version": version,
        "digest": digest,
        "manifest_tags": list(m.get("tags", [])),
        "meta": m.get("meta", {}),
        "params": m.get("params", {}),
        "license": m.get("license"),
        "parents": parents,
        "parent_names": sorted({p["name"] for p in parents if p["name"]}),
        "fingerprint": fingerprint(m.get("params")) if m.get("params") else None,
        "artifacts": [{k: a.get(k) for k in ("role", "uri", "sha256", "size", "tree")} for a in m.get("artifacts", [])],
    }


_DUMP = {"ensure_ascii": False, "separators": (",", ":")}


def row(reg: Any, model: str, seq: int, version: str, digest: str, part: dict[str, Any], state: Any,
        model_fields: dict[str, Any], stages: list[str], entry: Any) -> tuple[Any, ...]:
    """One row of ``versions`` as the index stores it: ``(version, seq, digest, record, stages,
    record JSON, stages JSON, info JSON, entry JSON)``; ``part`` is :func:`manifest_part`'s."""
    import json

    from ..registry import Resolved

    st = state.versions.get(version)
    record = {**part, **version_fields(st, part.get("manifest_tags", [])), "model": model_fields}
    info = reg._info(Resolved(model, version, digest), None, state, {}, []).to_dict()
    return (version, seq, digest, record, stages, json.dumps(record, **_DUMP), json.dumps(stages),
            json.dumps(info, **_DUMP), None if entry is None else json.dumps(entry))
