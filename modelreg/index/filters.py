"""Search filters as SQL: a superset of the matching versions, which Python then checks exactly.

For each ``--where`` condition the index computes S (rows that may match: exact for the
usual shapes, numbers and plain strings compared with ``== < <= > >=``) and M (rows whose
value could not be compared with VALUE: the type mismatches :class:`query.Condition` counts
for its stderr note). The candidates are the rows passing the exact filters (``--stage``,
``--staged``, ``--tag``, ``--archived``) that are in every S, or in any M. Python then runs
exactly the loop of :func:`discovery.search` over the candidates, in the same order: a row
left out is in no M and fails some condition, so it would neither match nor be counted.
"""

from __future__ import annotations

from typing import Any

from ..query import Condition, version_key
from .records import BOOL, NUMBER, TEXT, UNSAFE

# Record fields kept in their own columns of `versions` (not in attrs).
COLUMNS = {"name": "v.model", "digest": "v.digest", "license": "v.license", "registered_at": "v.registered_at",
           "fingerprint": "v.fingerprint"}
_OPS = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _attr(path: str, cond: str, params: list[Any], args: list[Any]) -> str:
    params.append(path)
    params.extend(args)
    return f"v.vid IN (SELECT vid FROM attrs WHERE path = ? AND {cond})"


def _kinds(path: str, kinds: tuple[int, ...], params: list[Any]) -> str:
    """Rows whose value at ``path`` is of one of ``kinds`` (one index range per kind)."""
    return " OR ".join(_attr(path, f"kind = {k}", params, []) for k in kinds)


def translate(c: Condition) -> tuple[tuple[str, list[Any]] | None, tuple[str, list[Any]] | None]:
    """``(S, M)`` of one condition as SQL over ``versions v`` with parameters; None for S means every row,
    None for M no row."""
    f, op, lit = c.field, c.op, c.literal
    if op == "!=" or lit is None:
        return None, None
    if f in COLUMNS:
        col = COLUMNS[f]
        if op == "==" and isinstance(lit, str) and version_key(lit) is None:
            return (f"{col} = ?", [lit]), None
        return None, None
    if f == "archived":
        if isinstance(lit, bool) and op in _OPS:
            return (f"v.archived {_OPS[op]} ?", [int(lit)]), None
        return None, None
    p: list[Any] = []
    if op == "~=":
        return ("(" + _kinds(f, (BOOL, NUMBER, TEXT, UNSAFE), p) + ")", p), None
    sql_op = _OPS[op]
    m: list[Any] = []
    if isinstance(lit, bool):
        s = _attr(f, f"kind = {BOOL} AND num {sql_op} ?", p, [int(lit)])
        return (s, p), (_kinds(f, (NUMBER, TEXT, UNSAFE), m), m)
    if isinstance(lit, (int, float)):
        s = "(" + _attr(f, f"kind = {NUMBER} AND num {sql_op} ?", p, [lit]) + " OR " + _kinds(f, (UNSAFE,), p) + ")"
        return (s, p), (_kinds(f, (BOOL, TEXT), m), m)
    if not isinstance(lit, str):
        return None, None
    boolish = lit.strip().lower() in ("true", "false")
    if f == "version" and op != "==":
        return ("(" + _kinds(f, (TEXT,), p) + ")", p), None
    if op == "==":
        parts = [_attr(f, f"kind = {TEXT} AND txt = ?", p, [lit])]
        k = version_key(lit)
        if k is not None:
            parts.append(_attr(f, f"kind = {TEXT} AND vkey = ?", p, [repr(k)]))
        if boolish:
            parts.append(_attr(f, f"kind = {BOOL} AND num = ?", p, [int(lit.strip().lower() == "true")]))
        s = "(" + " OR ".join(parts) + ")"
    else:
        s = "(" + _kinds(f, (TEXT, BOOL) if boolish else (TEXT,), p) + ")"
    if f == "version":
        return (s, p), None
    return (s, p), (_kinds(f, (NUMBER, UNSAFE) if boolish else (BOOL, NUMBER, UNSAFE), m), m)


def candidates(stage: str | None, staged: bool, tag: str | None, archived: bool | None,
               conditions: list[Condition]) -> tuple[str, tuple[Any, ...]]:
    """A SQL condition over ``versions v`` selecting a superset of the versions to check (see above)."""
    exact: list[str] = []
    args: list[Any] = []
    if stage is not None:
        exact.append(_attr("stages", "txt = ?", args, [stage]))
    if staged:
        exact.append("v.stages != '[]'")
    if tag is not None:
        exact.append(_attr("tags", "txt = ?", args, [tag]))
    if archived is not None:
        exact.append("v.archived = ?")
        args.append(int(archived))
    s_parts, s_args, m_parts, m_args = [], [], [], []
    for c in conditions:
        s, m = translate(c)
        if s is not None:
            s_parts.append(s[0])
            s_args += s[1]
        if m is not None:
            m_parts.append(f"({m[0]})")
            m_args += m[1]
    if s_parts:
        where = "(" + " AND ".join(s_parts) + ")"
        if m_parts:
            where = f"({where} OR {' OR '.join(m_parts)})"
        exact.append(where)
        args += s_args + m_args
    return " AND ".join(exact), tuple(args)
