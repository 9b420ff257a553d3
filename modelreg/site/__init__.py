"""The team's static registry site: HTML pages and a read-only JSON API built from a registry (docs/site.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry import Registry
    from .build import BuildReport


def build_site(reg: Registry, out: Any = "site", **options: Any) -> BuildReport:
    """Build the site of ``reg`` into directory ``out`` (see :func:`modelreg.site.build.build`)."""
    from .build import build

    return build(reg, out, **options)
