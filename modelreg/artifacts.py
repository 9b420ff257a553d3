"""Artifact orchestration for the registry: describe at registration, verify, fetch.

Everything that touches a file or a store goes through :mod:`modelreg.uris` (the only fsspec
importer); this module only decides what to call, in what order, with which progress bar,
and shapes the results. See docs/artifacts.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import uris
from .errors import IntegrityError, ModelregError, UsageError
from .uris import VerifyResult

ProgressFactory = Callable[[str, int], Callable[[int], None] | None]
"""``factory(label, total_bytes)`` -> a per-chunk callback, or None for no bar."""

StorageOptions = dict[str, dict]

# Statuses of a VerifyResult that mean the recorded bytes are not there (exit 6).
FAILED = frozenset({"missing", "size-mismatch", "hash-mismatch", "not-a-file"})
UNREACHABLE = "unreachable"

_EXT_RE = re.compile(r"^\.[A-Za-z0-9_-]{1,16}$")


# ------------------------------------------------------------------ progress


def _bar(progress: ProgressFactory | None, label: str, total: int | None) -> Callable[[int], None] | None:
    if progress is None or not total:
        return None
    return progress(label, total)


def _close(cb: Callable[[int], None] | None) -> None:
    """Stop a bar that did not reach its total (an error or a size mismatch cut it short)."""
    close = getattr(cb, "close", None)
    if close is not None:
        close()


def _with_bar(progress: ProgressFactory | None, label: str, total: int | None, fn: Callable[[Any], Any]) -> Any:
    cb = _bar(progress, label, total)
    try:
        return fn(cb)
    finally:
        _close(cb)


# ------------------------------------------------------------------ registration


def describe(
    spec: dict[str, Any],
    root: Path,
    progress: ProgressFactory | None = None,
    *,
    check: bool = True,
    compute_hash: bool = False,
    upload_to: str | None = None,
    storage_options: StorageOptions | None = None,
) -> dict[str, Any]:
    """The manifest entry ``{role, uri[, sha256, size]}`` for one artifact spec.

    - Credential-carrying URIs are refused always (even with ``check=False``).
    - Local files are always hashed (``check`` only concerns remote URIs: reading a local file
      needs no network, and registration is the only moment its hash can be taken).
    - Remote URIs: unless ``check=False``, the object must exist and be a file; its size is recorded
      and a SHA-256 if ``compute_hash`` or the store provides one. With ``check=False`` the spec is
      recorded as given, without any I/O.
    - ``upload_to``: local files are copied to that content-addressed store and the store URI recorded.
    - A sha256/size given in the spec must agree with what is found (else IntegrityError).
    """
    uri = spec["uri"]
    uris.check_uri_safe(uri)
    given_sha = spec.get("sha256")
    given_size = spec.get("size")
    if not uris.is_local(uri) and not check:
        if compute_hash:
            raise UsageError("--no-check and --hash contradict each other: hashing reads the artifact")
        return dict(spec)

    if uris.is_local(uri):
        total = _local_size(uri, root)
        info = _with_bar(progress, uri, total, lambda cb: uris.stat_artifact(uri, root=root, progress=cb))
    else:
        kw = {"root": root, "storage_options": storage_options}
        if compute_hash and progress is not None:
            head = uris.stat_artifact(uri, **kw)  # one HEAD, to size the bar before streaming
            info = _with_bar(progress, uri, head.size,
                             lambda cb: uris.stat_artifact(uri, compute_hash=True, progress=cb, **kw))
        else:
            info = uris.stat_artifact(uri, compute_hash=compute_hash, **kw)

    if given_size is not None and given_size != info.size:
        raise IntegrityError(f"artifact {uri}: given size {given_size} does not match the object ({info.size} bytes)")
    if given_sha is not None and info.sha256 is not None and given_sha != info.sha256:
        raise IntegrityError(
            f"artifact {uri}: given sha256 {given_sha[:12]}… does not match the bytes ({info.sha256[:12]}…, "
            f"{info.sha256_source})"
        )
    sha = info.sha256 or given_sha  # a sha256 given for an unhashed remote object is recorded as given
    entry: dict[str, Any] = {"role": spec["role"], "uri": info.uri, "size": info.size}
    if sha is not None:
        entry["sha256"] = sha

    if upload_to is not None and uris.is_local(uri):
        local = uris.resolve_local(info.uri, root)
        target = _with_bar(
            progress, f"upload {info.uri}", info.size,
            lambda cb: uris.upload_artifact(local, upload_to, sha256=info.sha256, progress=cb,
                                            storage_options=storage_options),
        )
        entry["uri"] = uris.normalize_local_uri(target, root) if uris.is_local(target) else target
    return entry


def _local_size(uri: str, root: Path) -> int | None:
    try:
        return uris.resolve_local(uri, root).stat().st_size
    except (OSError, ModelregError):
        return None  # stat_artifact names the problem


# ------------------------------------------------------------------ verify


@dataclass(frozen=True)
class ArtifactResult(VerifyResult):
    """A :class:`uris.VerifyResult` with the role of the artifact it is about."""

    role: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"role": d.pop("role"), **d}


def verify_entry(
    entry: dict[str, Any],
    root: Path,
    *,
    compute_hash: bool = False,
    progress: ProgressFactory | None = None,
    storage_options: StorageOptions | None = None,
    egress: Any = None,
) -> ArtifactResult:
    """Check one manifest artifact entry against its store.

    Missing, mismatched and unreachable artifacts are results; a refused URI or a backend that
    is not installed raises (UsageError), as does a URI the ``egress`` rules refuse (PolicyRefused).
    """
    uri = entry["uri"]
    reads = uris.is_local(uri) or compute_hash  # only then do bytes flow through a bar
    res = _with_bar(
        progress if reads else None, uri, entry.get("size"),
        lambda cb: uris.verify_artifact(
            uri, size=entry.get("size"), sha256=entry.get("sha256"), compute_hash=compute_hash,
            root=root, progress=cb, storage_options=storage_options, egress=egress,
        ),
    )
    return ArtifactResult(**asdict(res), role=entry["role"])


def verify_entries(
    entries: Iterable[dict[str, Any]], root: Path, **kw: Any
) -> list[ArtifactResult]:
    return [verify_entry(e, root, **kw) for e in entries]


def exit_code(results: Iterable[VerifyResult]) -> int:
    """6 if any artifact is missing or different, else 7 if any store was unreachable, else 1/0."""
    statuses = {r.status for r in results if not r.ok}
    if statuses & FAILED:
        return IntegrityError.exit_code
    if UNREACHABLE in statuses:
        return 7
    return 1 if statuses else 0


# ------------------------------------------------------------------ fetch


@dataclass(frozen=True)
class FetchedFile:
    """One artifact written to (or found in) the destination directory."""

    role: str
    uri: str
    path: str
    size: int | None
    sha256: str | None
    status: str
    """"downloaded" (hash verified), "present" (already there with the right hash, not downloaded),
    or "unverified" (no sha256 recorded: downloaded with only the size checked, if one is recorded)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FetchReport:
    """Outcome of fetching every artifact of a version into ``dest``."""

    ref: Any  # registry.Resolved
    dest: str
    files: list[FetchedFile] = field(default_factory=list)

    @property
    def unverified(self) -> list[FetchedFile]:
        return [f for f in self.files if f.status == "unverified"]

    def to_dict(self) -> dict[str, Any]:
        return {**self.ref.to_dict(), "dest": self.dest, "files": [f.to_dict() for f in self.files]}


def fetch_name(entry: dict[str, Any]) -> str:
    """The file name an artifact gets in a fetch destination: its role, plus the URI's extension.

    The role is unique within a version and already safe as a file name; the extension of the
    URI's last path segment is appended unless the role already ends with it. Content-addressed
    store URIs have no extension, so ``checkpoint`` stays ``checkpoint`` and ``model.bin`` stays
    ``model.bin``.
    """
    role = entry["role"]
    last = entry["uri"].split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    ext = PurePosixPath(last).suffix
    if not _EXT_RE.match(ext) or role.lower().endswith(ext.lower()):
        return role
    return role + ext


def fetch_entries(
    ref: Any,
    entries: list[dict[str, Any]],
    dest: str | os.PathLike[str],
    root: Path,
    *,
    progress: ProgressFactory | None = None,
    storage_options: StorageOptions | None = None,
    egress: Any = None,
    allow_unverified: bool = False,
) -> FetchReport:
    """Fetch every entry into ``dest``, all or nothing: on any failure, files this call wrote are removed.

    An entry with no recorded sha256 cannot be checked by content: unless ``allow_unverified``,
    the fetch is refused (IntegrityError) before anything is downloaded.
    """
    unhashed = [e["role"] for e in entries if e.get("sha256") is None]
    if unhashed and not allow_unverified:
        raise IntegrityError(
            f"{ref.name}@{ref.version} artifact {unhashed[0]} has no recorded sha256, so its bytes cannot be "
            "verified; pass --allow-unverified to fetch it anyway (only its size is checked)"
        )
    out = Path(dest)
    if out.exists() and not out.is_dir():
        raise UsageError(f"destination {dest} exists and is not a directory")
    names = [fetch_name(e) for e in entries]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UsageError(f"two artifacts of {ref.name}@{ref.version} would both be fetched as {clash[0]}")
    created = not out.exists()
    written: list[Path] = []
    files: list[FetchedFile] = []
    try:
        for e, name in zip(entries, names):
            path = out / name
            sha, size = e.get("sha256"), e.get("size")
            wrote = _with_bar(
                progress, e["uri"], size,
                lambda cb: uris.fetch_artifact(e["uri"], path, sha256=sha, size=size, root=root, progress=cb,
                                               storage_options=storage_options, egress=egress),
            )
            if wrote:
                written.append(path)
            status = "unverified" if sha is None else ("downloaded" if wrote else "present")
            files.append(FetchedFile(e["role"], e["uri"], str(path), size, sha, status))
    except BaseException:
        for p in written:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        if created:
            try:
                out.rmdir()  # only if empty
            except OSError:
                pass
        raise
    return FetchReport(ref, str(out), files)
