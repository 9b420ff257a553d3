"""Directory artifacts: the file list and its tree digest, walking and hashing a tree, verify and fetch of one.

A directory artifact is one manifest entry whose ``files`` list names every file of the
directory by relative POSIX path, with its size and SHA-256, and whose ``tree`` is the digest
of that list's canonical bytes (docs/format.md, "Directory artifacts"). The file list is
untrusted input when read from a registry: every path is validated before it becomes a path
on disk, and reading or writing never follows a symlink out of the tree.

Heavy and I/O imports happen inside functions: :mod:`modelreg.manifest` imports the pure
part of this module on the read path.
"""

from __future__ import annotations

import errno
import os
import re
import stat as stat_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import IntegrityError, NotFound, PolicyRefused, Unreachable, UsageError

MAX_PATH = 1024
MAX_SEGMENT = 255
LAYOUTS = ("sha256",)
UNKNOWN_SHA = "-"
_SHA_RE = re.compile(r"[0-9a-f]{64}\Z")
# Characters a portable file name may not hold: controls, and what Windows or shells make special.
_BAD_CHARS_RE = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')

ProgressFactory = Callable[[str, int], Callable[[int], None] | None]


# ------------------------------------------------------------------ pure: paths and the tree digest


def is_hidden(name: str) -> bool:
    """The hidden-file rule: a file or directory whose name starts with ``.`` is not part of a tree."""
    return name.startswith(".")


def check_path(path: Any, where: str = "file path") -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a tree, else raise UsageError.

    Refused: empty, absolute, ``\\``, empty/``.``/``..`` segments, hidden segments, control
    characters and characters Windows cannot store, over-long paths or segments.
    """
    if not isinstance(path, str) or not path:
        raise UsageError(f"{where} must be a non-empty string")
    shown = path if len(path) <= 80 else path[:77] + "..."
    shown = shown.encode("unicode_escape").decode("ascii")
    if len(path) > MAX_PATH:
        raise UsageError(f"{where} {shown!r} is longer than {MAX_PATH} characters")
    if path.startswith("/"):
        raise UsageError(f"{where} {shown!r} is absolute; a tree holds relative paths only")
    if _BAD_CHARS_RE.search(path):
        raise UsageError(f"{where} {shown!r} holds a control character or one of \\ : * ? \" < > |")
    for seg in path.split("/"):
        if seg in ("", ".", ".."):
            raise UsageError(f"{where} {shown!r} has an empty, '.' or '..' segment")
        if is_hidden(seg):
            raise UsageError(f"{where} {shown!r} has a hidden segment (hidden files are not part of a tree)")
        if len(seg.encode("utf-8", "surrogatepass")) > MAX_SEGMENT or seg != seg.strip() or seg.endswith("."):
            raise UsageError(f"{where} {shown!r} has a segment that is too long, padded or ends in '.'")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{where} {shown!r} is not valid UTF-8") from None
    return path


def validate_files(files: Any, where: str) -> list[dict[str, Any]]:
    """A manifest's ``files`` list, validated and sorted by path (raises UsageError)."""
    if not isinstance(files, list) or not files:
        raise UsageError(f"{where}.files must be a non-empty list")
    out: dict[str, dict[str, Any]] = {}
    folded: dict[str, str] = {}
    for i, f in enumerate(files):
        w = f"{where}.files[{i}]"
        if not isinstance(f, dict):
            raise UsageError(f"{w} must be a mapping with path, size and sha256")
        unknown = sorted(set(f) - {"path", "size", "sha256"})
        if unknown:
            raise UsageError(f"{w} has unknown field(s) {', '.join(map(str, unknown))}")
        path = check_path(f.get("path"), f"{w}.path")
        size = f.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UsageError(f"{w}.size must be a non-negative integer")
        entry: dict[str, Any] = {"path": path, "size": size}
        sha = f.get("sha256")
        if sha is not None:
            if not isinstance(sha, str) or not _SHA_RE.match(sha):
                raise UsageError(f"{w}.sha256 must be 64 lower-case hex digits")
            entry["sha256"] = sha
        if path in out:
            raise UsageError(f"{where} lists {path!r} twice")
        low = path.lower()
        if low in folded:  # would collide on a case-insensitive filesystem
            raise UsageError(f"{where} lists {folded[low]!r} and {path!r}, which differ only by case")
        folded[low] = path
        out[path] = entry
    paths = sorted(out)
    for a, b in zip(paths, paths[1:]):
        if b.startswith(a + "/"):
            raise UsageError(f"{where} lists {a!r} as a file and as a directory ({b!r})")
    # a file named like a directory prefix elsewhere in the list (sorting puts "a-b" between "a" and "a/x")
    dirs = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    dirs |= {d.rsplit("/", i)[0] for d in list(dirs) for i in range(1, d.count("/") + 1)}
    clash = sorted(dirs & set(paths))
    if clash:
        raise UsageError(f"{where} lists {clash[0]!r} as a file and as a directory")
    return [out[p] for p in paths]


def tree_bytes(files: Iterable[dict[str, Any]]) -> bytes:
    """The canonical bytes of a file list: one ``<sha256 or -> <size> <path>\\n`` line per file, sorted by path."""
    lines = sorted(
        (f["path"].encode("utf-8"), f"{f.get('sha256') or UNKNOWN_SHA} {f['size']} ".encode("ascii")) for f in files
    )
    return b"".join(head + path + b"\n" for path, head in lines)


def tree_digest(files: Iterable[dict[str, Any]]) -> str:
    """The tree digest (64 hex) of a file list: SHA-256 of :func:`tree_bytes`."""
    import hashlib

    return hashlib.sha256(tree_bytes(files)).hexdigest()


def is_tree(entry: dict[str, Any]) -> bool:
    """True for a directory artifact entry (it has a ``files`` list)."""
    return "files" in entry


def validate_tree_entry(a: dict[str, Any], entry: dict[str, Any], where: str) -> None:
    """Fill ``entry`` (role and uri already checked) with a directory artifact's validated fields."""
    if not entry["uri"].endswith("/"):
        raise UsageError(f"{where}.uri of a directory artifact must end with '/'")
    if a.get("sha256") is not None or a.get("name") is not None:
        raise UsageError(f"{where}: a directory artifact has a tree digest and files, not sha256 or name")
    files = validate_files(a.get("files"), where)
    layout = a.get("layout")
    if layout is not None:
        if layout not in LAYOUTS:
            raise UsageError(f"{where}.layout must be one of {', '.join(LAYOUTS)}")
        if any("sha256" not in f for f in files):
            raise UsageError(f"{where}: layout sha256 needs a sha256 for every file")
    total = sum(f["size"] for f in files)
    if a.get("size") is not None and a["size"] != total:
        raise UsageError(f"{where}.size {a['size']} is not the sum of its files' sizes ({total})")
    digest = tree_digest(files)
    if a.get("tree") is not None and a["tree"] != digest:
        raise UsageError(f"{where}.tree does not match its file list (expected {digest[:12]}…)")
    entry.update({"files": files, "size": total, "tree": digest})
    if layout is not None:
        entry["layout"] = layout


def file_uri(entry: dict[str, Any], f: dict[str, Any]) -> str:
    """Where one file of a directory artifact is stored: under the tree's URI, or by content (layout sha256)."""
    base = entry["uri"]
    if entry.get("layout") == "sha256":
        return f"{base}sha256/{f['sha256'][:2]}/{f['sha256'][2:]}"
    if base.startswith("file://"):
        from urllib.parse import quote

        return base + quote(f["path"], safe="/")
    return base + f["path"]


# ------------------------------------------------------------------ walking a local directory


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative POSIX path in the tree
    real: Path  # the file to read (an in-tree symlink's target)
    size: int


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def walk_local(root: Path, shown: str) -> list[LocalFile]:
    """Every file of a local directory (hidden names skipped), refusing what a tree cannot hold.

    Refused (UsageError): a directory with no files, a symlink whose target leaves the tree or
    is a directory, a special file (FIFO, socket, device), a name that is not a safe path.
    """
    root_real = root.resolve()
    out: list[LocalFile] = []

    def walk(d: Path, rel: str) -> int:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except PermissionError:
            raise UsageError(f"cannot read directory {shown}{rel}: permission denied") from None
        found = 0
        for e in entries:
            if is_hidden(e.name):
                continue
            relpath = f"{rel}{e.name}"
            label = f"{shown}{relpath}"
            try:
                check_path(relpath, "file")
            except UsageError as exc:
                raise UsageError(f"cannot register {label}: {exc.message}") from None
            if e.is_symlink():
                target = Path(os.path.realpath(e.path))
                if not _under(target, root_real):
                    raise UsageError(f"{label} is a symlink that leaves the directory (-> {target}); "
                                     "copy the file in or register its target")
                st = os.stat(e.path)
                if stat_mod.S_ISDIR(st.st_mode):
                    raise UsageError(f"{label} is a symlink to a directory; a tree records files only")
                if not stat_mod.S_ISREG(st.st_mode):
                    raise UsageError(f"{label} is not a regular file (a symlink to a special file)")
                out.append(LocalFile(relpath, target, st.st_size))
                found += 1
                continue
            st = e.stat(follow_symlinks=False)
            if stat_mod.S_ISDIR(st.st_mode):
                n = walk(Path(e.path), relpath + "/")
                if n == 0:
                    raise UsageError(f"{label}/ is an empty directory (or holds only hidden files); "
                                     "fetch could not restore it: remove it or put a file in it")
                found += n
            elif stat_mod.S_ISREG(st.st_mode):
                out.append(LocalFile(relpath, Path(e.path), st.st_size))
                found += 1
            else:
                raise UsageError(f"{label} is a special file (FIFO, socket or device), not a regular file")
        return found

    if walk(root, "") == 0:
        raise UsageError(f"directory {shown} has no files (hidden files are not registered)")
    out.sort(key=lambda f: f.path)
    return out


# ------------------------------------------------------------------ hashing in parallel


def workers() -> int:
    """Threads for hashing: one per core (hashlib releases the GIL on large updates)."""
    return max(1, os.cpu_count() or 1)


def _shared_bar(progress: ProgressFactory | None, label: str, total: int) -> Any:
    """One progress callback for the whole tree, safe to call from the hashing threads."""
    if progress is None or not total:
        return None
    cb = progress(label, total)
    if cb is None:
        return None
    import threading

    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            cb(n)

    advance.close = getattr(cb, "close", lambda: None)  # type: ignore[attr-defined]
    return advance


def _close(cb: Any) -> None:
    close = getattr(cb, "close", None)
    if close is not None:
        close()


def parallel(fn: Callable[[Any], Any], items: list[Any], n: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on a thread pool; the first error cancels what has not started and is raised."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(n or workers(), len(items))) as pool:
        futures = [pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def hash_local(files: list[LocalFile], progress: Any = None) -> list[dict[str, Any]]:
    """The file list ``[{path, size, sha256}]`` of local files, hashed in parallel in constant memory each."""
    from .hashing import sha256_file

    def one(f: LocalFile) -> dict[str, Any]:
        try:
            digest, size = sha256_file(f.real, progress)
        except FileNotFoundError:
            raise NotFound(f"{f.path} disappeared while the directory was being registered") from None
        except PermissionError:
            raise UsageError(f"cannot read {f.path}: permission denied") from None
        if size != f.size:
            raise IntegrityError(f"{f.path} changed while the directory was being registered ({f.size} -> {size} bytes)")
        return {"path": f.path, "size": size, "sha256": digest}

    return parallel(one, files)


# ------------------------------------------------------------------ registration


def describe_local(
    spec: dict[str, Any], path: Path, root: Path, progress: ProgressFactory | None, upload_to: str | None,
    storage_options: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The manifest entry of a local directory (and what was uploaded, for the ``upload`` event)."""
    from . import uris

    stored = uris.normalize_local_uri(str(path), root).rstrip("/") + "/"
    shown = stored if stored != "./" else str(path) + "/"
    local = walk_local(path, shown)
    total = sum(f.size for f in local)
    bar = _shared_bar(progress, f"{shown} ({len(local)} files)", total)
    try:
        files = hash_local(local, bar)
    finally:
        _close(bar)
    entry = make_entry(spec, stored, files)
    uploaded: list[dict[str, Any]] = []
    if upload_to is not None:
        entry, uploaded = _upload(entry, local, files, root, progress, upload_to, storage_options)
    return entry, uploaded


def make_entry(spec: dict[str, Any], uri: str, files: list[dict[str, Any]], layout: str | None = None) -> dict[str, Any]:
    files = sorted(files, key=lambda f: f["path"])
    entry: dict[str, Any] = {"role": spec["role"], "uri": uri, "size": sum(f["size"] for f in files),
                             "tree": tree_digest(files), "files": files}
    if layout:
        entry["layout"] = layout
    given_tree = spec.get("tree")
    if given_tree is not None and given_tree != entry["tree"]:
        raise IntegrityError(f"artifact {uri}: given tree {given_tree[:12]}… does not match the files "
                             f"({entry['tree'][:12]}…)")
    given = {f["path"]: f for f in spec.get("files") or []}
    if given:
        found = {f["path"]: f for f in files}
        if set(given) != set(found):
            diff = sorted(set(given) ^ set(found))
            raise IntegrityError(f"artifact {uri}: the given file list does not match the directory ({diff[0]})")
        for p, g in given.items():
            if g.get("size") is not None and g["size"] != found[p]["size"]:
                raise IntegrityError(f"artifact {uri}: given size of {p} does not match the file")
            if g.get("sha256") and found[p].get("sha256") and g["sha256"] != found[p]["sha256"]:
                raise IntegrityError(f"artifact {uri}: given sha256 of {p} does not match the bytes")
            if g.get("sha256") and not found[p].get("sha256"):
                found[p]["sha256"] = g["sha256"]
        entry["tree"] = tree_digest(files)
    return entry


def _upload(
    entry: dict[str, Any], local: list[LocalFile], files: list[dict[str, Any]], root: Path,
    progress: ProgressFactory | None, store: str, storage_options: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Copy each file into the content-addressed store once (identical files share one object)."""
    from . import uris

    by_sha: dict[str, LocalFile] = {}
    for lf, f in zip(local, files):
        by_sha.setdefault(f["sha256"], lf)
    total = sum(f.size for f in by_sha.values())
    bar = _shared_bar(progress, f"upload {entry['uri']} ({len(by_sha)} objects)", total)
    try:
        parallel(lambda item: uris.upload_artifact(item[1].real, store, sha256=item[0], progress=bar,
                                                   storage_options=storage_options), list(by_sha.items()))
    finally:
        _close(bar)
    base = uris.normalize_local_uri(store, root) if uris.is_local(store) else store
    out = {**entry, "uri": base.rstrip("/") + "/", "layout": "sha256"}
    return out, [{"role": entry["role"], "uri": out["uri"], "files": len(files), "objects": len(by_sha),
                  "size": entry["size"]}]


def describe_remote(
    spec: dict[str, Any], uri: str, progress: ProgressFactory | None, compute_hash: bool, storage_options: Any,
) -> dict[str, Any]:
    """The manifest entry of a remote prefix: listed and sized; hashed with ``compute_hash``."""
    from . import uris

    base = uri.rstrip("/") + "/"
    listed = uris.list_tree(base, storage_options=storage_options)
    for f in listed:
        check_path(f["path"], f"file of {base}")
    if compute_hash:
        bar = _shared_bar(progress, f"{base} ({len(listed)} files)", sum(f["size"] for f in listed))

        def one(f: dict[str, Any]) -> dict[str, Any]:
            info = uris.stat_artifact(base + f["path"], root=Path("."), compute_hash=True, progress=bar,
                                      storage_options=storage_options)
            return {"path": f["path"], "size": info.size, "sha256": info.sha256}

        try:
            files = parallel(one, listed, 8)
        finally:
            _close(bar)
    else:
        files = [{k: v for k, v in f.items() if v is not None} for f in listed]
    return make_entry(spec, base, files)


# ------------------------------------------------------------------ verify


def verify(
    entry: dict[str, Any], root: Path, *, compute_hash: bool, progress: ProgressFactory | None,
    storage_options: Any, egress: Any,
) -> dict[str, Any]:
    """Check every file of a directory artifact; report files missing, added, resized or changed.

    Returns ``{status, message, actual_size, problems: [{path, status, message, ...}]}``. A refused
    URI (egress) raises; a missing or unreachable tree is a status.
    """
    from . import uris

    expected = {f["path"]: f for f in entry["files"]}
    problems: list[dict[str, Any]] = []

    def problem(path: str, status: str, message: str, f: dict[str, Any] | None = None, **actual: Any) -> None:
        problems.append({"path": path, "status": status, "message": message,
                         "expected_size": f and f["size"], "actual_size": actual.get("size"),
                         "expected_sha256": f and f.get("sha256"), "actual_sha256": actual.get("sha256")})

    uri = entry["uri"]
    try:
        if entry.get("layout") == "sha256":
            found = None  # a content-addressed store holds other objects too: nothing can be "added"
        elif uris.is_local(uri):
            real = _local_root(uri, root, egress)
            found = {f.path: f.size for f in _walk_for_verify(real, uri)}
        else:
            found = {f["path"]: f["size"] for f in uris.list_tree(uri, storage_options=storage_options, egress=egress)}
    except NotFound as exc:
        return {"status": "missing", "message": exc.message, "actual_size": None, "problems": []}
    except Unreachable as exc:
        return {"status": "unreachable", "message": exc.message, "actual_size": None, "problems": []}

    if found is not None:
        for p in sorted(set(found) - set(expected)):
            problem(p, "added", "not in the registered file list", size=found[p])
    todo = []
    for p, f in expected.items():
        if found is not None and p not in found:
            problem(p, "missing", "in the registered file list but not in the directory", f)
        elif found is not None and found[p] != f["size"]:
            problem(p, "size-mismatch", f"expected {f['size']} bytes, found {found[p]}", f, size=found[p])
        else:
            todo.append(f)
    local = uris.is_local(uri)
    hashing = local or compute_hash
    bar = _shared_bar(progress if hashing else None, f"{uri} ({len(todo)} files)", sum(f["size"] for f in todo))
    unhashed = 0
    nothing_to_compare = 0

    def check(f: dict[str, Any]) -> None:
        nonlocal unhashed, nothing_to_compare
        res = uris.verify_artifact(file_uri(entry, f), size=f["size"], sha256=f.get("sha256"),
                                   compute_hash=compute_hash, root=root, progress=bar,
                                   storage_options=storage_options, egress=egress)
        if res.status in ("ok", "unverified"):
            if res.status == "unverified":
                nothing_to_compare += 1
            elif res.actual_sha256 is None:
                unhashed += 1
            return
        problem(f["path"], res.status, res.message, f, size=res.actual_size, sha256=res.actual_sha256)

    if local and entry.get("layout") != "sha256":
        real = _local_root(uri, root, egress)
        for f in todo:  # the file list cannot lead a read out of the tree (symlinks, ..)
            _inside(real, f["path"], uri, egress)
    try:
        parallel(check, todo, None if hashing else 8)
    finally:
        _close(bar)
    problems.sort(key=lambda x: x["path"])
    n = len(entry["files"])
    if not problems:
        detail = f"{n} files" + ("" if unhashed == 0 else f"; sizes match, {unhashed} not hashed (use --hash)")
        if nothing_to_compare:
            detail += (f"; {nothing_to_compare} have no recorded sha256: nothing to compare"
                       " (register with --hash to record them)")
            return {"status": "unverified", "message": detail, "actual_size": entry["size"], "problems": []}
        return {"status": "ok", "message": detail, "actual_size": entry["size"], "problems": []}
    order = ("missing", "added", "size-mismatch", "hash-mismatch", "not-a-file", "unreachable")
    statuses = sorted({p["status"] for p in problems}, key=lambda s: order.index(s) if s in order else 99)
    counts = ", ".join(f"{sum(1 for p in problems if p['status'] == s)} {s}" for s in statuses)
    names = ", ".join(p["path"] for p in problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
    failed = [s for s in statuses if s != "unreachable"]
    return {"status": failed[0] if failed else "unreachable", "message": f"{counts} of {n} files: {names}",
            "actual_size": None, "problems": problems}


def _local_root(uri: str, root: Path, egress: Any) -> Path:
    from . import uris

    real = uris.resolve_local(uri, root)
    if egress is not None:
        egress.check_local(real, uri)
    try:
        st = real.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"artifact not found: {uri}") from None
    if not stat_mod.S_ISDIR(st.st_mode):
        raise NotFound(f"{uri} is no longer a directory")
    return real


def _inside(real_root: Path, rel: str, uri: str, egress: Any) -> Path:
    """The real path of a listed file, refused if a symlink (or anything else) takes it out of the tree."""
    check_path(rel)
    target = Path(os.path.realpath(real_root / rel))
    if not _under(target, real_root):
        raise PolicyRefused(f"refusing to read {uri}{rel}: a symlink takes it out of the directory (-> {target})")
    if egress is not None:
        egress.check_local(target, uri + rel)
    return target


def _walk_for_verify(real: Path, uri: str) -> list[LocalFile]:
    """The files now in a registered local directory (special files and outside symlinks are reported by the checks)."""
    out: list[LocalFile] = []
    for dirpath, dirnames, filenames in os.walk(real):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        rel_dir = os.path.relpath(dirpath, real)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            if is_hidden(name):
                continue
            rel = name if rel_dir == "." else f"{Path(rel_dir).as_posix()}/{name}"
            try:
                size = os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                size = -1
            out.append(LocalFile(rel, Path(dirpath) / name, size))
    return out


# ------------------------------------------------------------------ fetch


class _Writer:
    """Writes files under one directory without following a symlink below it; remembers what it created."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.created_dirs: list[Path] = []
        self.written: list[Path] = []

    def _dir_fd(self, parts: list[str], create: bool = True) -> int:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.base, flags)
        here = self.base
        try:
            for part in parts:
                here = here / part
                try:
                    nfd = os.open(part, flags | nofollow, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                        self.created_dirs.append(here)
                    except FileExistsError:  # another thread of this fetch made it
                        pass
                    nfd = os.open(part, flags | nofollow, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise UsageError(f"refusing to write under {here}: it is a symlink or not a directory") from None
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def present(self, rel: str, sha256: str | None, size: int | None) -> bool:
        """True if ``rel`` already holds exactly these bytes (a regular file, not followed if a symlink)."""
        if sha256 is None:
            return False
        from .hashing import sha256_stream

        *parents, name = rel.split("/")
        try:
            dfd = self._dir_fd(parents, create=False)  # looking never creates a directory
        except (UsageError, OSError):
            return False
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), dir_fd=dfd)
        except OSError:
            return False
        finally:
            os.close(dfd)
        with os.fdopen(fd, "rb") as f:
            if not stat_mod.S_ISREG(os.fstat(f.fileno()).st_mode):
                return False
            have, have_size = sha256_stream(f)
        return have == sha256 and (size is None or have_size == size)

    def write(self, rel: str, src: Any, sha256: str | None, size: int | None, label: str, progress: Any) -> None:
        """Stream ``src`` into ``rel`` through a temp name, renamed only if the bytes match."""
        import hashlib
        import secrets

        from .hashing import CHUNK

        *parents, name = rel.split("/")
        dfd = self._dir_fd(parents)
        try:
            tmp = f".{name[:200]}.modelreg-tmp-{secrets.token_hex(6)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666, dir_fd=dfd)
            try:
                h = hashlib.sha256()
                got = 0
                with os.fdopen(fd, "wb") as out:
                    while True:
                        chunk = src.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        h.update(chunk)
                        got += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                        if size is not None and got > size:
                            break
                    out.flush()
                    os.fsync(out.fileno())
                actual = h.hexdigest()
                if (sha256 is not None and actual != sha256) or (size is not None and got != size):
                    what = f"expected {size} bytes, got {'more' if size is not None and got > size else got}" \
                        if size is not None and got != size else f"expected sha256 {sha256[:12]}…, got {actual[:12]}…"
                    raise IntegrityError(f"downloaded bytes of {label} do not match: {what}")
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except OSError:
                    pass
                raise
            self.written.append(self.base.joinpath(*parents, name))
            try:
                os.fsync(dfd)
            except OSError:
                pass
        finally:
            os.close(dfd)

    def undo(self) -> None:
        """Remove every file written and every directory created (deepest first, only if empty)."""
        for p in reversed(self.written):
            try:
                p.unlink()
            except OSError:
                pass
        # threads append in the order they finish, not the order of depth: remove the deepest first
        for d in sorted(self.created_dirs, key=lambda d: len(d.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass


def fetch(
    entry: dict[str, Any], out: Path, root: Path, *, progress: ProgressFactory | None, storage_options: Any,
    egress: Any, allow_unverified: bool, writer: _Writer,
) -> list[tuple[str, str, str, int, str | None, str]]:
    """Fetch every file of a directory artifact into ``out/ROLE/<path>``; ``[(uri, rel, path, size, sha256, status)]``.

    ``writer`` records what was written so the caller can undo the whole fetch on a failure.
    """
    from . import uris

    uri = entry["uri"]
    files = entry["files"]
    real_root = None
    if uris.is_local(uri) and entry.get("layout") != "sha256":
        real_root = _local_root(uri, root, egress)
    for f in files:
        check_path(f["path"])

    def rel_of(f: dict[str, Any]) -> str:
        return f"{entry['role']}/{f['path']}"

    done: dict[str, tuple[str, str, str, int, str | None, str]] = {}
    present = parallel(lambda f: writer.present(rel_of(f), f.get("sha256"), f["size"]), files)
    todo = []
    for f, here in zip(files, present):
        if here:
            done[f["path"]] = (file_uri(entry, f), f["path"], str(out / rel_of(f)), f["size"], f.get("sha256"), "present")
        else:
            todo.append(f)
    bar = _shared_bar(progress, f"{uri} ({len(todo)} files)", sum(f["size"] for f in todo))

    def one(f: dict[str, Any]) -> None:
        src_uri = file_uri(entry, f)
        if real_root is not None:
            real = _inside(real_root, f["path"], uri, egress)
            try:
                with uris.open_artifact(str(real), root=root, egress=egress) as src:
                    writer.write(rel_of(f), src, f.get("sha256"), f["size"], src_uri, bar)
            except NotFound:
                raise NotFound(f"artifact {entry['role']}: file {f['path']} not found ({src_uri})") from None
        else:
            with uris.open_artifact(src_uri, root=root, storage_options=storage_options, egress=egress) as src:
                writer.write(rel_of(f), src, f.get("sha256"), f["size"], src_uri, bar)
        status = "downloaded" if f.get("sha256") else "unverified"
        done[f["path"]] = (src_uri, f["path"], str(out / rel_of(f)), f["size"], f.get("sha256"), status)

    try:
        parallel(one, todo)  # a file per core at a time; the first failure stops what has not started
    finally:
        _close(bar)
    return [done[f["path"]] for f in files]
