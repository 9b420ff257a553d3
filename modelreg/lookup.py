"""``resolve NAME@STAGE|VERSION`` with the fewest imports: the answer when all is well, else None.

Scripts resolve a stage in loops, so this path must cost little more than starting Python
(docs/bench.md). It reads exactly what :meth:`Registry.resolve` reads (config.yaml's format
and keys, one ref, one version entry, the object's first two lines after hashing it) and
applies the same identity rule, but it never builds an error: whenever anything is not
plainly right (no registry, an unknown or suspicious config key, an empty stage, a word that
is both a stage and a version, a digest or ``latest`` reference, a ref to a manifest nobody
registered, any refusal or OS error), it returns None and the caller asks :class:`Registry`,
whose answer or error is the reference. So both can only agree.
"""

from __future__ import annotations

import os

from . import config, fileio
from .errors import ModelregError
from .manifest import identity
from .names import parse_ref
from .refs import Refs
from .store import ObjectStore

DIRNAME = ".modelreg"
ENV_DIR = "MODELREG_DIR"


def find(start: str | None) -> str | None:
    """The registry directory :func:`registry.find_registry` would choose, or None when it would refuse."""
    explicit = start if start is not None else os.environ.get(ENV_DIR) or None
    lexists = os.path.lexists
    if explicit is not None:
        p = explicit
        if os.path.basename(os.path.normpath(p)) != DIRNAME and lexists(os.path.join(p, DIRNAME)):
            p = os.path.join(p, DIRNAME)
        return p if lexists(os.path.join(p, "config.yaml")) else None
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, DIRNAME)
        if lexists(os.path.join(candidate, "config.yaml")):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def resolve(registry: str | None, ref: str) -> tuple[str, str, str] | None:
    """``(name, version, digest)`` that ``Registry.open(registry).resolve(ref)`` returns, or None
    when this short path does not decide (the caller then asks the library)."""
    if not isinstance(ref, str) or "@" not in ref or ref.startswith("sha256:"):
        return None
    if start_is_odd(registry):
        return None
    try:
        path = find(registry)
        if path is None:
            return None
        fileio.confine(path)
        data = fileio.read_file(os.path.join(path, "config.yaml"), 1 << 20)
        fmt = config._FORMAT_LINE.findall(data)
        if len(fmt) != 1 or not 1 <= int(fmt[0]) <= config.FORMAT:
            return None
        for m in config._TOP_KEY.finditer(data):  # a suspect key: the library parses and decides
            if (m.group(1) or m.group(2) or m.group(3)).decode("utf-8", "replace") not in config.TOP_LEVEL_KEYS:
                return None
        r = parse_ref(ref)
        if r.kind not in ("word", "version"):
            return None
        refs, objects = Refs(path), ObjectStore(os.path.join(path, "objects"))
        name, value = r.name, r.value
        assert name is not None
        version_digest = refs.read_version(name, value)
        if r.kind == "word":
            stage_digest = refs.read_stage(name, value)
            if stage_digest is not None:
                if version_digest is not None:
                    return None  # ambiguous: the library says so
                declared, version = identity(objects.get(stage_digest), f"object {stage_digest}")
                if declared != name or refs.read_version(declared, version) != stage_digest:
                    return None
                return name, version, stage_digest
        if version_digest is None:
            return None
        if identity(objects.get(version_digest), f"object {version_digest}") != (name, value):
            return None
        return name, value, version_digest
    except (ModelregError, OSError, ValueError):
        return None


def start_is_odd(registry: str | None) -> bool:
    """True for a ``--registry`` value the library should interpret itself (empty)."""
    return registry is not None and not registry
