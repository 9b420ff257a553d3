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
from .errors import IntegrityError, ModelregError, NotFound, UsageError
from .uris import VerifyResult

ProgressFactory = Callable[[str, int], Callable[[int], None] | None]
"""``factory(label, total_bytes)`` -> a per-chunk callback, or None for no bar."""

StorageOptions = dict[str, dict]

# Statuses of a VerifyResult that mean the recorded bytes are not there (exit 6).
FAILED = frozenset({"missing", "added", "size-mismatch", "hash-mismatch", "not-a-file"})
UNREACHABLE = "unreachable"
PURGED = "purged"  # deleted on purpose by prune --purge, as the version's purge event says (exit 3)

_EXT_RE = re.compile(r"^\.[A-Za-z0-9_-]{1,16}$")
DEFAULT_ROLE = "model"
# A last URI segment that names a version or a content digest, not what the artifact is:
# 1.0.0, v2, 2024-01-02, 20240102, rc1, 3bb2abb6...
_NOT_A_ROLE_RE = re.compile(r"^(v?\d[\w.+-]*|(rc|alpha|beta|dev|post)\d*|[0-9a-f]{7,}|sha256[:_-]?[0-9a-f]*)$", re.I)


def default_role(uri: str) -> str:
    """The role of ``-a URI`` given without ``ROLE=``: the last path segment, lower-cased
    (``tokenizer.json``, ``hf-model`` for ``hf-model/``), unless that segment is a version number or a
    digest, or not a valid role name: then ``model``. So ``s3://bucket/faq-bot/1.0.0`` is ``model``."""
    from .names import check_key

    base = uri.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    if not base or _NOT_A_ROLE_RE.match(base):
        return DEFAULT_ROLE
    try:
        return check_key("artifact role", base)
    except UsageError:
        return DEFAULT_ROLE


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
    entry, _uploaded = describe_with_uploads(spec, root, progress, check=check, compute_hash=compute_hash,
                                             upload_to=upload_to, storage_options=storage_options)
    return entry


def describe_with_uploads(
    spec: dict[str, Any],
    root: Path,
    progress: ProgressFactory | None = None,
    *,
    check: bool = True,
    compute_hash: bool = False,
    upload_to: str | None = None,
    storage_options: StorageOptions | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`describe`, plus what was copied to the store (``[{role, uri, size, ...}]``, for the upload event)."""
    uri = spec["uri"]
    uris.check_uri_safe(uri)
    uris.check_protocol(uri)  # with or without --no-check: unsupported and chained URLs are refused
    given_sha = spec.get("sha256")
    given_size = spec.get("size")
    if not uris.is_local(uri) and not check:
        if compute_hash:
            raise UsageError("--no-check and --hash contradict each other: hashing reads the artifact")
        if uri.endswith("/") and "files" not in spec:
            raise UsageError(f"{uri} is a directory: its files must be listed, which --no-check does not do "
                             "(give them in a --from-file manifest, or drop --no-check)")
        return dict(spec), []

    if uris.is_local(uri):
        from . import trees

        local_dir = _local_dir(uri, root)
        if local_dir is not None:
            return trees.describe_local(spec, local_dir, root, progress, upload_to, storage_options)
        if uri.endswith("/") or "files" in spec:
            if not _local_exists(uri, root):
                raise NotFound(f"artifact not found: {uri}")
            raise UsageError(f"{uri} is not a directory")
    elif uri.endswith("/") or "files" in spec:
        from . import trees

        return trees.describe_remote(spec, uri, progress, compute_hash, storage_options), []
    try:
        return _describe_file(spec, uri, root, progress, compute_hash, upload_to, storage_options, given_sha, given_size)
    except uris.NotAFile:
        if uris.is_local(uri):
            raise
        from . import trees  # an object-store prefix given without its trailing slash

        return trees.describe_remote(spec, uri, progress, compute_hash, storage_options), []


def _describe_file(
    spec: dict[str, Any], uri: str, root: Path, progress: ProgressFactory | None, compute_hash: bool,
    upload_to: str | None, storage_options: StorageOptions | None, given_sha: str | None, given_size: int | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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

    uploaded: list[dict[str, Any]] = []
    if upload_to is not None and uris.is_local(uri):
        local = uris.resolve_local(info.uri, root)
        target = _with_bar(
            progress, f"upload {info.uri}", info.size,
            lambda cb: uris.upload_artifact(local, upload_to, sha256=info.sha256, progress=cb,
                                            storage_options=storage_options),
        )
        entry["uri"] = uris.normalize_local_uri(target, root) if uris.is_local(target) else target
        name = _given_name(uri) or local.name
        entry["name"] = name  # the store's name is a digest: fetch restores this one
        uploaded.append({"role": entry["role"], "uri": entry["uri"], "size": info.size, "name": name})
    return entry, uploaded


def cheap_changes(old: dict[str, Any], new: dict[str, Any], root: Path, upload: bool) -> list[Any]:
    """What differs between a registered manifest and a new one, from what costs no hashing.

    Every field but the artifacts' content; for artifacts: roles, stored URIs (unless uploading,
    where the URI depends on the hash) and sizes of local files and trees (a stat, a walk).
    Empty when nothing cheap differs: the caller then hashes and compares everything.
    """
    from . import manifest

    def rest(m: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in m.items() if k != "artifacts"}

    from .values import legacy_equal

    changes = [] if legacy_equal(rest(old), rest(new)) else manifest.diff(rest(old), rest(new))
    was = {a["role"]: a for a in old.get("artifacts", [])}
    now = {a["role"]: a for a in new.get("artifacts", [])}
    from .manifest import Change

    for role in sorted(set(was) | set(now)):
        a, b = was.get(role), now.get(role)
        if a is None or b is None:
            changes.append(Change(f"artifacts.{role}", a and a["uri"], b and b["uri"]))
            continue
        uri, size = _cheap(b, root)
        if not upload and uri is not None and uri.rstrip("/") != a["uri"].rstrip("/"):
            changes.append(Change(f"artifacts.{role}.uri", a["uri"], uri))
        elif size is not None and a.get("size") is not None and size != a["size"]:
            changes.append(Change(f"artifacts.{role}.size", a["size"], size))
    return changes


def _cheap(spec: dict[str, Any], root: Path) -> tuple[str | None, int | None]:
    """(stored URI, size) of an artifact spec without reading its bytes; None where unknown."""
    uri = spec["uri"]
    if not uris.is_local(uri):
        return uri, spec.get("size")
    try:
        path = uris.resolve_local(uri, root)
        if path.is_dir():
            from . import trees

            stored = uris.normalize_local_uri(str(path), root).rstrip("/") + "/"
            return stored, sum(f.size for f in trees.walk_local(path, stored))
        return uris.normalize_local_uri(str(path), root), path.stat().st_size
    except (ModelregError, OSError):
        return None, None  # describe names the problem


def _given_name(uri: str) -> str | None:
    """The file name the user gave (before symlinks are resolved)."""
    path = uris._file_uri_to_path(uri) if uri.startswith("file://") else Path(uri)
    return path.name or None


def _local_exists(uri: str, root: Path) -> bool:
    try:
        return uris.resolve_local(uri, root).exists()
    except ModelregError:
        return False


def _local_dir(uri: str, root: Path) -> Path | None:
    """The real path of a local URI if it names a directory, else None."""
    try:
        path = uris.resolve_local(uri, root)
    except ModelregError:
        return None
    return path if path.is_dir() else None


def _local_size(uri: str, root: Path) -> int | None:
    try:
        return uris.resolve_local(uri, root).stat().st_size
    except (OSError, ModelregError):
        return None  # stat_artifact names the problem


# ------------------------------------------------------------------ verify


@dataclass(frozen=True)
class ArtifactResult(VerifyResult):
    """A :class:`uris.VerifyResult` with the role of the artifact it is about.

    For a directory artifact, ``files`` lists each file that is missing, added, resized, changed
    or unreadable (``[{path, status, message, expected_size, actual_size, expected_sha256,
    actual_sha256}]``); None for a single file."""

    role: str = ""
    files: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        files = d.pop("files")
        out = {"role": d.pop("role"), **d}
        if files is not None:
            out["files"] = files
        return out


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
    A directory artifact is checked file by file, and files added to it are reported too.
    """
    uri = entry["uri"]
    if "files" in entry:
        from . import trees

        t = trees.verify(entry, root, compute_hash=compute_hash, progress=progress,
                         storage_options=storage_options, egress=egress)
        return ArtifactResult(uri, t["status"] in ("ok", "unverified"), t["status"], entry.get("size"), t["actual_size"],
                              None, None, t["message"], role=entry["role"], files=t["problems"])
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


def as_purged(result: ArtifactResult, purged: dict[str, Any] | None) -> ArtifactResult:
    """A ``missing`` result for an artifact its version's ``purge`` event deleted becomes ``purged``."""
    if purged is None or result.status != "missing":
        return result
    from dataclasses import replace

    return replace(result, status=PURGED, message=f"deleted from the artifact store by prune --purge at "
                                                   f"{purged.get('time') or '?'} (the version is archived)")


def exit_code(results: Iterable[VerifyResult]) -> int:
    """6 if any artifact is missing or different, else 7 if any store was unreachable, else 3 if any
    was purged on purpose, else 1/0."""
    statuses = {r.status for r in results if not r.ok}
    if statuses & FAILED:
        return IntegrityError.exit_code
    if UNREACHABLE in statuses:
        return 7
    if PURGED in statuses:
        return 3
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
    file: str | None = None
    """For a file of a directory artifact: its relative path in the tree."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["file"] is None:
            del d["file"]
        return d


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
    """The file name an artifact gets in a fetch destination: its role, plus the original extension.

    The role is unique within a version and already safe as a file name; the extension of the
    recorded original ``name`` (a file uploaded to the store) or else of the URI's last path
    segment is appended unless the role already ends with it: role ``tokenizer`` uploaded from
    ``tokenizer.json`` comes back as ``tokenizer.json``, ``model.bin`` stays ``model.bin``.
    A directory artifact is fetched into a directory named by its role.
    """
    role = entry["role"]
    if "files" in entry:
        return role
    last = entry.get("name") or entry["uri"].split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    ext = PurePosixPath(last).suffix
    if not _EXT_RE.match(ext) or role.lower().endswith(ext.lower()):
        return role
    return role + ext


def select(ref: Any, entries: list[dict[str, Any]], roles: Iterable[str] | None) -> list[dict[str, Any]]:
    """The entries with the given roles (all when ``roles`` is empty); NotFound names an unknown role."""
    wanted = list(dict.fromkeys(roles or []))
    if not wanted:
        return entries
    have = {e["role"]: e for e in entries}
    for r in wanted:
        if r not in have:
            raise NotFound(f"{ref.name}@{ref.version} has no artifact with role {r!r} (has: {', '.join(have) or 'none'})")
    return [have[r] for r in sorted(wanted)]


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

    A single file goes to ``dest/<fetch_name>``, a directory artifact to ``dest/ROLE/<path>`` for each
    of its files. An entry with no recorded sha256 cannot be checked by content: unless
    ``allow_unverified``, the fetch is refused (IntegrityError) before anything is downloaded.
    """
    from . import trees

    unhashed = [e["role"] for e in entries
                if (e.get("sha256") is None if "files" not in e else any("sha256" not in f for f in e["files"]))]
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
    for e in entries:
        if "files" in e:
            for f in e["files"]:
                trees.check_path(f["path"])  # the file list is untrusted: refuse before writing anything
    created = not out.exists()
    written: list[Path] = []
    files: list[FetchedFile] = []
    writer: trees._Writer | None = None
    try:
        if created:
            out.mkdir(parents=True)
        writer = trees._Writer(out)
        for e, name in zip(entries, names):
            if "files" in e:
                for uri, rel, path, size, sha, status in trees.fetch(
                    e, out, root, progress=progress, storage_options=storage_options, egress=egress,
                    allow_unverified=allow_unverified, writer=writer,
                ):
                    files.append(FetchedFile(e["role"], uri, path, size, sha, status, rel))
                continue
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
        if writer is not None:
            writer.undo()
        if created:
            try:
                out.rmdir()  # only if empty
            except OSError:
                pass
        raise
    return FetchReport(ref, str(out), files)


# ------------------------------------------------------------------ presigned links

MAX_EXPIRES = 7 * 24 * 3600  # S3 SigV4 presigned URLs live at most 7 days


@dataclass(frozen=True)
class SignedLink:
    """A time-limited HTTPS link to one artifact (``files``: one link per file of a directory artifact)."""

    ref: Any  # registry.Resolved
    role: str
    uri: str
    expires: int
    expires_at: str
    url: str | None = None
    files: list[dict[str, str]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {**self.ref.to_dict(), "role": self.role, "uri": self.uri, "expires": self.expires,
             "expires_at": self.expires_at}
        if self.files is not None:
            d["files"] = self.files
        else:
            d["url"] = self.url
        return d


def sign(ref: Any, entries: list[dict[str, Any]], role: str | None, expires: int,
         storage_options: StorageOptions | None, egress: Any = None) -> SignedLink:
    """Sign a link to the artifact ``role`` of a version (the only one when ``role`` is None)."""
    from datetime import datetime, timedelta, timezone

    if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= MAX_EXPIRES:
        raise UsageError(f"--expires must be a number of seconds from 1 to {MAX_EXPIRES} (7 days)")
    if role is None:
        if len(entries) != 1:
            have = ", ".join(e["role"] for e in entries) or "none"
            raise UsageError(f"{ref.name}@{ref.version} has {len(entries)} artifacts ({have}): give --role")
        entry = entries[0]
    else:
        entry = select(ref, entries, [role])[0]
    for u in _uris_of(entry):
        uris.check_uri_safe(u)
        if uris.is_local(u):
            raise UsageError(f"artifact {entry['role']} is a local path ({entry['uri']}): only object stores "
                             "(s3://, gs://) can sign a link; upload it to an artifact_store first")
        if egress is not None and uris._protocol(u) in ("http", "https"):
            raise UsageError(f"{u} is already a plain link: nothing to sign")
    at = (datetime.now(timezone.utc) + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "files" in entry:
        from . import trees

        files = trees.parallel(
            lambda f: {"path": f["path"], "url": uris.sign_url(trees.file_uri(entry, f), expires,
                                                               storage_options=storage_options)},
            entry["files"], 8)
        return SignedLink(ref, entry["role"], entry["uri"], expires, at, files=files)
    return SignedLink(ref, entry["role"], entry["uri"], expires, at,
                      url=uris.sign_url(entry["uri"], expires, storage_options=storage_options))


def _uris_of(entry: dict[str, Any]) -> list[str]:
    if "files" in entry:
        from . import trees

        return [trees.file_uri(entry, f) for f in entry["files"][:1]] or [entry["uri"]]
    return [entry["uri"]]
