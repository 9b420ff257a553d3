"""Ref files: stage pointers (``refs/<model>/<stage>``) and the version map (``versions/<model>/<version>``).

Each ref file holds one line, ``sha256:<64 hex>\\n``. Stage refs move only through
:meth:`Refs.set_stage_if_equals` (compare-and-swap); version entries are created once and
never change. Callers hold the model's lock (see Registry) around every write, so the
read-compare-write is atomic with respect to other writers; readers need no lock because
every write is a rename.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from . import fileio
from .errors import Conflict, IntegrityError, UsageError
from .names import check_model, check_stage, check_version, is_full_digest

REF_MAX = 4096
CONFLICT_MARKERS = (b"<<<<<<<", b"=======", b">>>>>>>")


def parse_ref_bytes(data: bytes, path: Path | str) -> str:
    """The digest held in a ref file's bytes; IntegrityError if they are not exactly one digest line."""
    if any(m in data for m in CONFLICT_MARKERS):
        parts = str(path).replace("\\", "/").split("/")
        if len(parts) >= 3 and parts[-3] == "versions":  # a version registered on both sides: no promote fixes it
            raise IntegrityError(
                f"{path} has unresolved git merge conflict markers (the version was registered on both sides with "
                f"different content): keep one side with 'git checkout --ours -- {path}' (or --theirs) while the "
                "merge is in progress, or write one of its two sha256 lines back to it; modelreg fsck then names "
                "the other side's registration"
            )
        raise IntegrityError(
            f"{path} has unresolved git merge conflict markers: pick a side with "
            "'modelreg promote NAME@VERSION STAGE --force --reason ...' (or check out one side of the file: "
            f"git checkout --ours -- {path}, or --theirs)"
        )
    text = data.decode("ascii", "replace")
    if not text.endswith("\n") or not is_full_digest(text[:-1]):
        raise IntegrityError(f"{path} is torn or malformed: expected one line 'sha256:<64 hex>'")
    return text[:-1]


def _list(directory: Path | str, check: Callable[[str], str]) -> list[str]:
    """The entries of a refs/versions directory, each a valid name (IntegrityError otherwise).

    Dot files (interrupted writes' temp files) are skipped. A name no modelreg could have
    written (a control character, ``..``, ...) arrived by hand or by git: it is refused,
    never printed raw or used as a path.
    """
    try:
        names = fileio.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(_valid(directory, n, check) for n in names if not n.startswith("."))


def _valid(directory: Path | str, name: str, check: Callable[[str], str]) -> str:
    try:
        return check(name)
    except UsageError:
        raise IntegrityError(
            f"{os.path.join(directory, ascii(name)[1:-1])} is not a valid name for that place in a registry "
            "(only modelreg writes there): run 'modelreg fsck'"
        ) from None


class Refs:
    """Stage pointers and the immutable version map of a registry directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.refs_dir = self.root / "refs"
        self.versions_dir = self.root / "versions"

    # --- paths (names validated before they touch a path) ---
    def stage_path(self, model: str, stage: str) -> Path:
        return self.refs_dir / check_model(model) / check_stage(stage)

    def version_path(self, model: str, version: str) -> Path:
        return self.versions_dir / check_model(model) / check_version(version)

    def _read(self, path: Path | str) -> str | None:
        try:
            data = fileio.read_file(path, REF_MAX)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise IntegrityError(f"{path} is a directory, expected a ref file") from None
        return parse_ref_bytes(data, path)

    # --- stages ---
    def read_stage(self, model: str, stage: str) -> str | None:
        """Digest held by a stage, or None when the stage is empty."""
        return self._read(self.stage_path(model, stage))

    def stages(self, model: str) -> dict[str, str]:
        """Every non-empty stage of a model and its digest."""
        out = {}
        for stage in _list(self.refs_dir / check_model(model), check_stage):
            value = self._read(self.refs_dir / model / stage)
            if value is not None:
                out[stage] = value
        return out

    def set_stage_if_equals(self, model: str, stage: str, old: str | None, new: str | None) -> None:
        """Point ``stage`` at ``new`` (None empties it) if it now holds ``old``; Conflict otherwise.

        The caller holds the model's lock.
        """
        path = self.stage_path(model, stage)
        current = self._read(path)
        if current != old:
            raise Conflict(
                f"{model}@{stage} holds {current or 'nothing'}, expected {old or 'nothing'}: "
                "someone else moved it; re-read and retry"
            )
        if new is None:
            fileio.unlink(path, missing_ok=True)
            return
        fileio.makedirs(path.parent)
        fileio.atomic_write(path, f"{new}\n".encode("ascii"))

    def conflict_sides(self, model: str, stage: str) -> list[str] | None:
        """The digests on either side of a stage ref left with git conflict markers; None if it has none."""
        path = self.stage_path(model, stage)
        try:
            data = fileio.read_file(path, REF_MAX)
        except (FileNotFoundError, IsADirectoryError):
            return None
        if not any(m in data for m in CONFLICT_MARKERS):
            return None
        lines = data.decode("ascii", "replace").splitlines()
        return [line for line in lines if is_full_digest(line)]

    def overwrite_conflicted_stage(self, model: str, stage: str, new: str) -> None:
        """Replace a stage ref that holds conflict markers with ``new`` (the caller holds the lock)."""
        if self.conflict_sides(model, stage) is None:
            raise Conflict(f"{model}@{stage} no longer holds conflict markers; re-read and retry")
        path = self.stage_path(model, stage)
        fileio.atomic_write(path, f"{new}\n".encode("ascii"))

    # --- versions ---
    def read_version(self, model: str, version: str) -> str | None:
        """Digest registered under ``version``, or None."""
        return self._read(self.version_path(model, version))

    def version_names(self, model: str) -> list[str]:
        """Names of the registered versions of ``model`` (directory order, sorted)."""
        return _list(self.versions_dir / check_model(model), check_version)

    def versions(self, model: str) -> dict[str, str]:
        """Every version of a model and its digest (one walk to the directory, one open per entry)."""
        base = os.path.join(self.versions_dir, check_model(model))  # str joins: pathlib costs ~3 us a name
        try:
            with fileio.opendir(base) as d:
                out = {}
                for v in sorted(n for n in d.listdir() if not n.startswith(".")):
                    _valid(base, v, check_version)
                    try:
                        data = d.read(v, REF_MAX)
                    except FileNotFoundError:
                        continue
                    except IsADirectoryError:
                        raise IntegrityError(f"{os.path.join(base, v)} is a directory, expected a ref file") from None
                    out[v] = parse_ref_bytes(data, os.path.join(base, v))
                return out
        except (FileNotFoundError, NotADirectoryError):
            return {}

    def has_versions(self, model: str) -> bool:
        """True if ``model`` has a registered version (reads the first entries of its directory, never all)."""
        return fileio.has_entries(self.versions_dir / check_model(model))

    def add_version(self, model: str, version: str, digest: str, variants: list[str] | None = None) -> bool:
        """Record ``version -> digest`` once; True if created, False if already identical.

        Conflict if the version exists with another digest or differs from one only by case
        (see :meth:`check_new_version` for ``variants``). The caller holds the model's lock.
        """
        path = self.version_path(model, version)
        current = self._read(path)
        if current is not None:
            if current == digest:
                return False
            raise Conflict(f"{model}@{version} is already registered with {current}")
        self.check_new_version(model, version, variants)
        fileio.makedirs(path.parent)
        fileio.atomic_write(path, f"{digest}\n".encode("ascii"))
        return True

    def check_new_version(self, model: str, version: str, variants: list[str] | None = None) -> None:
        """Conflict if ``version`` differs only by case from an existing version of ``model``.

        ``variants``: the versions the model's log registers that fold to ``version.lower()``
        (:meth:`modelreg.derived.state.SnapshotState.case_variants`); then the check looks up
        paths only: the all-lower-case name, and each variant. None: list the directory (a
        version entry the log does not know is found too).
        """
        folded = version.lower()
        if variants is None:
            others = [v for v in self.version_names(model) if v.lower() == folded]
        else:
            others = [v for v in {folded, *variants} if self._read(self.version_path(model, v)) is not None]
        for other in sorted(others):
            if other != version:
                raise Conflict(f"{model}@{version} differs only by case from the existing version {other!r}")

    def models(self) -> list[str]:
        """Every model that has at least one registered version."""
        out = []
        for m in _list(self.versions_dir, check_model):
            st = fileio.lstat(self.versions_dir / m)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise fileio.SymlinkError(str(self.versions_dir / m))
            if st is not None and stat.S_ISDIR(st.st_mode):
                out.append(m)
        return out
