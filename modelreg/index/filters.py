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
DRIVE_MAX = 5000  # fewer candidates than this: fetched one by one and sorted; more: the versions walked in order


Alt = tuple[str, str, list[Any]]  # (path, condition on attrs, its parameters): one index range


def _kinds(path: str, kinds: tuple[int, ...]) -> list[Alt]:
    return [(path, f"kind = {k}", []) for k in kinds]


def translate(c: Condition) -> tuple[list[Alt] | None, list[Alt]]:
    """``(S, M)`` of one ``--where`` condition on attrs: S the alternatives a matching row has one of
    (None: any row may match), M the alternatives that make a row's value incomparable with VALUE."""
    f, op, lit = c.field, c.op, c.literal
    if op == "!=" or lit is None or f in COLUMNS or f == "archived":
        return None, []
    if op == "~=":
        return _kinds(f, (BOOL, NUMBER, TEXT, UNSAFE)), []
    sql_op = _OPS[op]
    if isinstance(lit, bool):
        return [(f, f"kind = {BOOL} AND num {sql_op} ?", [int(lit)])], _kinds(f, (NUMBER, TEXT, UNSAFE))
    if isinstance(lit, (int, float)):
        return [(f, f"kind = {NUMBER} AND num {sql_op} ?", [lit]), *_kinds(f, (UNSAFE,))], _kinds(f, (BOOL, TEXT))
    if not isinstance(lit, str):
        return None, []
    boolish = lit.strip().lower() in ("true", "false")
    if f == "version" and op != "==":
        return _kinds(f, (TEXT,)), []
    if op == "==":
        s: list[Alt] = [(f, f"kind = {TEXT} AND txt = ?", [lit])]
        k = version_key(lit)
        if k is not None:
            s.append((f, f"kind = {TEXT} AND vkey = ?", [repr(k)]))
        if boolish:
            s.append((f, f"kind = {BOOL} AND num = ?", [int(lit.strip().lower() == "true")]))
    else:
        s = _kinds(f, (TEXT, BOOL) if boolish else (TEXT,))
    if f == "version":
        return s, []
    return s, _kinds(f, (NUMBER, UNSAFE) if boolish else (BOOL, NUMBER, UNSAFE))


def _select(alts: list[Alt], args: list[Any]) -> str:
    """The vids having one of ``alts`` (a UNION of index ranges)."""
    parts = []
    for path, cond, a in alts:
        parts.append(f"SELECT vid FROM attrs WHERE path = ? AND {cond}")
        args += [path, *a]
    return " UNION ".join(parts)


def _exists(alts: list[Alt], args: list[Any]) -> str:
    """A row (``c.vid``) has one of ``alts``: a lookup in the attrs_vid index."""
    parts = []
    for path, cond, a in alts:
        # INDEXED BY: one (vid, path) lookup per candidate; without statistics SQLite may otherwise scan
        # the whole value range of the path for every candidate
        parts.append(f"EXISTS (SELECT 1 FROM attrs a INDEXED BY attrs_vid WHERE a.vid = c.vid AND a.path = ? AND {cond})")
        args += [path, *a]
    return "(" + " OR ".join(parts) + ")"


def _columns(c: Condition) -> tuple[str, list[Any]] | None:
    """An exact-or-wider condition over ``versions v`` for the fields kept in columns; None: any row."""
    f, op, lit = c.field, c.op, c.literal
    if op == "!=" or lit is None:
        return None
    if f in COLUMNS and op == "==" and isinstance(lit, str) and version_key(lit) is None:
        return f"{COLUMNS[f]} = ?", [lit]
    if f == "archived" and isinstance(lit, bool) and op in _OPS:
        return f"v.archived {_OPS[op]} ?", [int(lit)]
    return None


def candidates(con: Any, stage: str | None, staged: bool, tag: str | None, archived: bool | None,
               conditions: list[Condition]) -> tuple[str, tuple[Any, ...], str, tuple[Any, ...]]:
    """``(vids, vid_params, exact, exact_params)``: a SELECT of candidate vids (empty: every row) and a
    condition over ``versions v`` (the exact filters, and the conditions on column fields)."""
    exact: list[str] = []
    args: list[Any] = []
    if stage is not None:
        exact.append("v.vid IN (SELECT vid FROM attrs WHERE path = 'stages' AND kind = 3 AND txt = ?)")
        args.append(stage)
    if staged:
        exact.append("v.stages != '[]'")
    if tag is not None:
        exact.append("v.vid IN (SELECT vid FROM attrs WHERE path = 'tags' AND kind = 3 AND txt = ?)")
        args.append(tag)
    if archived is not None:
        exact.append("v.archived = ?")
        args.append(int(archived))
    s_list: list[list[Alt]] = []
    m_list: list[Alt] = []
    col_parts: list[tuple[str, list[Any]]] = []
    for c in conditions:
        s, m = translate(c)
        if s is not None:
            s_list.append(s)
        m_list += m
        col = _columns(c)
        if col is not None:
            col_parts.append(col)
    vids, vargs = "", []
    if s_list:  # rows in every S, or in any M (see the module docstring)
        def size(alts: list[Alt]) -> int:  # rows of the index ranges, counted up to a cap
            n = 0
            for path, cond, a in alts:
                q = f"SELECT count(*) FROM (SELECT 1 FROM attrs WHERE path = ? AND {cond} LIMIT {DRIVE_MAX})"
                n += con.execute(q, [path, *a]).fetchone()[0]
            return n

        sizes = {id(alts): size(alts) for alts in s_list}
        s_list.sort(key=lambda alts: sizes[id(alts)])  # the rarest drives; the others are lookups per candidate
        few = sizes[id(s_list[0])] < DRIVE_MAX
        driver = _select(s_list[0], vargs)
        rest = [_exists(alts, vargs) for alts in s_list[1:]]
        vids = f"SELECT vid FROM ({driver}) c" + (" WHERE " + " AND ".join(rest) if rest else "")
        if m_list:
            vids = f"SELECT vid FROM ({vids}) UNION {_select(m_list, vargs)}"
        if not few:  # many candidates: walk the versions in order and probe the candidate set instead
            exact.insert(0, f"v.vid IN ({vids})")
            args[:0] = vargs
            vids, vargs = "", []
    if col_parts:
        cond = " AND ".join(x for x, _ in col_parts)
        if m_list:  # a row with an incomparable value is checked whatever the column says
            m_args: list[Any] = []
            cond = f"(({cond}) OR v.vid IN ({_select(m_list, m_args)}))"
            exact.append(cond)
            for _, a in col_parts:
                args += a
            args += m_args
        else:
            exact.append(cond)
            for _, a in col_parts:
                args += a
    return vids, tuple(vargs), " AND ".join(exact), tuple(args)
