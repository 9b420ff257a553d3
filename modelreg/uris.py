"""Artifact URIs: safety checks, local-path rules, and stat/open/fetch/upload/verify over fsspec.

This is the only module in modelreg that talks to fsspec, and it imports fsspec (and every
storage backend) lazily inside functions, so importing modelreg stays fast and works without
the optional backends installed.

Local-path rule: a local artifact inside the project root (the directory holding `.modelreg/`)
is stored as a POSIX path relative to that root; anything outside is stored as `file:///abs`.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import importlib.util
import os
import re
import secrets
import stat as stat_mod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from modelreg.errors import IntegrityError, ModelregError, NotFound, Unreachable, UsageError
from modelreg.hashing import CHUNK, sha256_file, sha256_stream

Progress = Callable[[int], None]
StorageOptions = dict[str, dict]

S3_ENDPOINT_ENV = "MODELREG_S3_ENDPOINT_URL"

# protocol -> (importable module that backs it, pip package, modelreg extra); None = built into fsspec
_BACKENDS: dict[str, tuple[str, str, str] | None] = {
    "memory": None,
    "s3": ("s3fs", "s3fs", "s3"),
    "gs": ("gcsfs", "gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcsfs", "gcs"),
    "hf": ("huggingface_hub", "huggingface_hub", "hf"),
    "http": ("aiohttp", "aiohttp", "http"),
    "https": ("aiohttp", "aiohttp", "http"),
}
# storage_options may be keyed by either spelling of a protocol
_OPTION_ALIASES = {"gcs": "gs", "gs": "gcs", "https": "http", "http": "https"}

# Words that make a query parameter, fragment parameter or option name a secret or a request
# signature: `X-Amz-Signature`, `access_token`, `client_secret`, `private_token`, `auth`,
# `password`, `sig` (Azure SAS), `Signature` (GCS V2, CloudFront)... Names are split into words
# at `_`, `-`, `.` and camelCase humps, so `accessToken` and `X-Amz-Security-Token` both match.
_SECRET_WORDS = frozenset({
    "token", "secret", "password", "passwd", "pwd", "passphrase", "signature", "sig", "credential",
    "credentials", "auth", "authorization", "apikey", "cookie", "jwt", "bearer",
})
# "...key" is a secret only after these words (`api_key`, `access_key`, `AWSAccessKeyId`) or alone.
_KEY_QUALIFIERS = frozenset({"api", "access", "secret", "private", "account", "subscription", "master", "signing"})
_SECRET_NAMES = frozenset({"key", "googleaccessid", "x-goog-algorithm", "sid", "sessionid", "jsessionid", "phpsessid"})
# Well-known token shapes, refused wherever they appear in a URI (a path segment, a user name).
_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9])(?:hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}"
    r"|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Za-z0-9])"
)
_HUMP_RE = re.compile(r"([a-z0-9])([A-Z])")


def is_secret_name(name: str) -> bool:
    """True if a query parameter or option name says its value is a secret or a signature."""
    flat = name.strip().lower()
    if flat in _SECRET_NAMES or re.sub(r"[^a-z0-9]", "", flat) in _SECRET_NAMES:
        return True
    words = [w for w in re.split(r"[^a-z0-9]+", _HUMP_RE.sub(r"\1_\2", name.strip()).lower()) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    for i, w in enumerate(words):
        before = w[:-3] if w != "key" else (words[i - 1] if i > 0 else "")
        if w.endswith("key") and any(before.endswith(q) for q in _KEY_QUALIFIERS):
            return True
    return False


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_CHAINED_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*::.*://")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ArtifactInfo:
    """What is known about one artifact without trusting anything but the store."""

    uri: str
    """The URI as it should be stored: unchanged for remote URIs, the local-path rule for local ones."""
    size: int
    sha256: str | None
    """Lower-case hex, or None if not known without reading the bytes."""
    sha256_source: str
    """"computed" (we hashed the bytes), "store" (the store vouches for it), or "none"."""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one artifact against its recorded size and hash."""

    uri: str
    ok: bool
    status: str
    """One of "ok", "missing", "size-mismatch", "hash-mismatch", "unreachable", "not-a-file" (and "purged",
    set by the registry for an artifact its version's purge event deleted)."""
    expected_size: int | None
    actual_size: int | None
    expected_sha256: str | None
    actual_sha256: str | None
    message: str


class NotAFile(UsageError):
    """The URI names a directory or an object-store prefix."""


_NotAFile = NotAFile


# --------------------------------------------------------------------------- URI basics


def _protocol(uri: str) -> str | None:
    m = _SCHEME_RE.match(uri)
    return m.group(1).lower() if m else None


def is_local(uri: str) -> bool:
    """True for a plain filesystem path or a file:// URI."""
    if _CHAINED_RE.match(uri):
        return False
    proto = _protocol(uri)
    return proto is None or proto == "file"


def _params(text: str) -> Iterator[str]:
    """Parameter names in a query string or fragment, split at `&` and `;` alike."""
    for part in re.split(r"[&;]", text):
        if part:
            yield unquote(part.partition("=")[0])


def check_uri_safe(uri: str) -> None:
    """Raise UsageError if the URI carries credentials: user info (any scheme, ``hf://hf_TOKEN@…`` too),
    a secret or signed parameter in the query (``&`` or ``;`` separated), the fragment or a path
    segment's ``;params``, or a well-known token anywhere. The secret itself is never echoed.

    The one check for every URL modelreg accepts or reads: artifact URIs (typed or read from
    the registry), ``artifact_store``, URLs in storage options, ``bind --endpoint``.
    """
    if not isinstance(uri, str):
        raise UsageError("a URI must be a string")
    if _TOKEN_RE.search(uri):
        raise UsageError("refusing a URI that contains an access token; configure credentials in the environment instead")
    if is_local(uri):
        return
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise UsageError(f"malformed URI: {exc}") from None
    if "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        raise UsageError(
            f"refusing a URI with credentials in its user-info part (before '@{host}'); "
            "configure credentials in the environment or storage options instead"
        )
    names = [*_params(parts.query), *_params(parts.fragment)]
    for segment in parts.path.split("/"):
        names.extend(_params(segment.partition(";")[2]) if ";" in segment else [])
    for name in names:
        if is_secret_name(name):
            raise UsageError(
                f"refusing a URI with a secret or signed parameter '{name[:40]}'; "
                "store an unsigned URI and configure credentials in the environment instead"
            )


def check_protocol(uri: str) -> None:
    """Raise UsageError for a chained fsspec URL or a protocol modelreg does not support.

    Needs no backend and no network: ``register --no-check`` applies it too."""
    if _CHAINED_RE.match(uri):
        raise UsageError(f"chained fsspec URLs are not supported: {uri.split('://')[0]}://")
    proto = _protocol(uri)
    if proto is not None and proto != "file" and proto not in _BACKENDS:
        raise UsageError(
            f"unsupported protocol {proto}:// (supported: {', '.join(sorted(p + '://' for p in _BACKENDS))})"
        )


def _require_sha256(sha256: str) -> str:
    value = (sha256 or "").lower()
    if not _SHA256_RE.match(value):
        raise UsageError(f"not a sha256 hex digest: {sha256!r}")
    return value


# --------------------------------------------------------------------------- local paths


def _file_uri_to_path(uri: str) -> Path:
    rest = uri[len("file://") :]
    host, slash, path = rest.partition("/")
    if host not in ("", "localhost"):
        raise UsageError(f"file:// URIs with a host are not supported: {uri}")
    return Path(unquote(slash + path))


def _as_file_uri(path: Path) -> str:
    return "file://" + quote(path.as_posix(), safe="/")


def normalize_local_uri(uri: str, root: str | os.PathLike[str]) -> str:
    """Return the stored form of a local path: POSIX-relative inside root, file:///abs outside.

    Relative input paths are taken relative to the current working directory.
    """
    if not is_local(uri):
        raise UsageError(f"not a local path: {uri}")
    path = _file_uri_to_path(uri) if _protocol(uri) == "file" else Path(uri)
    real = (Path.cwd() / path).resolve()
    root_real = Path(root).resolve()
    if real == root_real or root_real in real.parents:
        return real.relative_to(root_real).as_posix()
    return _as_file_uri(real)


def resolve_local(uri: str, root: str | os.PathLike[str]) -> Path:
    """Return the real filesystem path of a stored local URI (relative ones are relative to root).

    A relative URI that resolves outside root (via `..` or a symlink) is refused.
    """
    if not is_local(uri):
        raise UsageError(f"not a local path: {uri}")
    if _protocol(uri) == "file":
        path = _file_uri_to_path(uri)
        if not path.is_absolute():
            raise UsageError(f"file:// URI must hold an absolute path: {uri}")
        return path.resolve()
    path = Path(uri)
    if path.is_absolute():
        return path.resolve()
    root_real = Path(root).resolve()
    real = (root_real / path).resolve()
    if real != root_real and root_real not in real.parents:
        raise UsageError(f"relative artifact path escapes the project directory: {uri}")
    return real


def _local_file(uri: str, root: str | os.PathLike[str], egress: Any = None) -> Path:
    path = resolve_local(uri, root)
    if egress is not None:  # a URI read from the registry: only regular files in allowed places
        egress.check_local(path, uri)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFound(f"artifact not found: {uri}") from None
    except NotADirectoryError:
        raise NotFound(f"artifact not found: {uri}") from None
    except PermissionError:
        raise Unreachable(f"cannot access {uri}: permission denied") from None
    if stat_mod.S_ISDIR(st.st_mode):
        raise _NotAFile(f"{uri} is a directory, not a file")
    if not stat_mod.S_ISREG(st.st_mode):
        raise _NotAFile(f"{uri} is not a regular file")
    return path


# --------------------------------------------------------------------------- error mapping

# exception class names (anywhere in the MRO) that mean "could not talk to the store"
_UNREACHABLE_NAMES = {
    "ClientConnectorCertificateError": "TLS failure",
    "ClientConnectorSSLError": "TLS failure",
    "ClientSSLError": "TLS failure",
    "SSLError": "TLS failure",
    "ConnectTimeoutError": "timed out",
    "ReadTimeoutError": "timed out",
    "ConnectionTimeoutError": "timed out",
    "ServerTimeoutError": "timed out",
    "FSTimeoutError": "timed out",
    "EndpointConnectionError": "could not connect to endpoint",
    "ClientConnectorError": "connection failed",
    "ServerDisconnectedError": "server disconnected",
    "ClientOSError": "connection failed",
    "ConnectionClosedError": "connection closed",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__])  # type: ignore[list-item]
        for attr in ("os_error", "original_error"):  # aiohttp / botocore keep the OSError here
            inner = getattr(e, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)


def _unreachable_reason(exc: BaseException) -> str | None:
    generic = None
    for e in _chain(exc):
        import socket
        import ssl

        if isinstance(e, (ssl.SSLError, ssl.CertificateError)):
            return f"TLS failure ({e})"
        if isinstance(e, socket.gaierror):
            return "DNS lookup failed"
        if isinstance(e, ConnectionRefusedError) or (
            isinstance(e, OSError) and e.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(e, TimeoutError):  # asyncio.TimeoutError and socket.timeout are aliases
            return "timed out"
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
        if "Connection refused" in str(e) or "ECONNREFUSED" in str(e):
            return "connection refused"
        for cls in type(e).__mro__:
            label = _UNREACHABLE_NAMES.get(cls.__name__)
            if label is not None:
                generic = generic or f"{label} ({e})"
                break
        if generic is None and isinstance(e, ConnectionError):
            generic = f"connection failed ({e})"
    return generic


def _http_status(exc: BaseException) -> int | None:
    for e in _chain(exc):
        status = getattr(e, "status", None)
        if type(e).__name__ == "ClientResponseError" or (
            isinstance(status, int) and 100 <= status <= 599 and hasattr(e, "request_info")
        ):
            return status if isinstance(status, int) else None
    return None


CREDENTIALS_HINT = ("configure credentials in the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN...), "
                    "or register with --no-check to record the URI without contacting the store")
_DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                           "InvalidToken", "AllAccessDisabled", "AccountProblem"})


def _client_error_code(exc: BaseException) -> str | None:
    """The error code of a botocore ClientError anywhere in the chain (s3fs wraps them in OSError)."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            code = (response.get("Error") or {}).get("Code")
            if isinstance(code, str):
                return code
    return None


def _map_error(exc: BaseException, uri: str) -> ModelregError:
    for e in _chain(exc):  # our own refusal raised inside a backend (the egress resolver)
        if isinstance(e, ModelregError):
            return e
    reason = _unreachable_reason(exc)
    if reason is not None:
        return Unreachable(f"cannot reach {uri}: {reason}")
    status = _http_status(exc)
    if status in (401, 403):
        return Unreachable(f"cannot access {uri}: permission denied (HTTP {status}); {CREDENTIALS_HINT}")
    code = _client_error_code(exc)
    if code in _DENIED_CODES:
        return Unreachable(f"cannot access {uri}: {code}; {CREDENTIALS_HINT}")
    if status is not None and status >= 500:
        return Unreachable(f"cannot reach {uri}: HTTP {status}")
    if status in (404, 410):
        return NotFound(f"artifact not found: {uri}")
    if isinstance(exc, PermissionError):
        return Unreachable(f"cannot access {uri}: permission denied" + ("" if is_local(uri) else f"; {CREDENTIALS_HINT}"))
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"artifact not found: {uri}")
    if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        return _NotAFile(f"{uri} is a directory/prefix, not a file")
    if isinstance(exc, NotImplementedError):
        return UsageError(f"{_protocol(uri)}:// does not support this operation on {uri}")
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError", "LocalTokenNotFoundError"}:
        return Unreachable(f"cannot access {uri}: no credentials found; {CREDENTIALS_HINT}")
    if status is not None:
        return ModelregError(f"cannot access {uri}: HTTP {status}")
    return ModelregError(f"cannot access {uri}: {type(exc).__name__}: {exc}")


@contextmanager
def _errors(uri: str) -> Iterator[None]:
    try:
        yield
    except ModelregError:
        raise
    except Exception as exc:
        raise _map_error(exc, uri) from exc


class _MappedStream:
    """A read-only binary stream whose backend errors become modelreg errors."""

    def __init__(self, raw: Any, uri: str) -> None:
        self._raw = raw
        self._uri = uri

    def read(self, n: int = -1) -> bytes:
        with _errors(self._uri):
            return self._raw.read(n)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = 0) -> int:
        with _errors(self._uri):
            return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _MappedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- fsspec plumbing


def _backend_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _options_for(storage_options: Any, proto: str) -> dict[str, Any]:
    """The options for one protocol: the registry's effective settings decide (and may refuse,
    see modelreg.trust.settings); a plain mapping may be keyed by either spelling of a protocol."""
    pick = getattr(storage_options, "for_protocol", None)
    if pick is not None:
        return dict(pick(proto))
    options = storage_options or {}
    return dict(options.get(proto) or options.get(_OPTION_ALIASES.get(proto, proto)) or {})


def _filesystem(uri: str, storage_options: StorageOptions | None, egress: Any = None) -> Any:
    """Return an fsspec filesystem for a remote URI, or raise UsageError if it cannot be served.

    With ``egress`` (a URI read from the registry), HTTP(S) connections go through a client that
    refuses private addresses, checked on every resolved address and redirect."""
    if _CHAINED_RE.match(uri):
        raise UsageError(f"chained fsspec URLs are not supported: {uri.split('://')[0]}://")
    proto = _protocol(uri)
    if proto is None or proto == "file":
        raise UsageError(f"not a remote URI: {uri}")
    if proto not in _BACKENDS:
        raise UsageError(
            f"unsupported protocol {proto}:// (supported: {', '.join(sorted(p + '://' for p in _BACKENDS))})"
        )
    opts = _options_for(storage_options, proto)  # before anything else: may refuse unapproved settings
    backend = _BACKENDS[proto]
    if backend is not None and not _backend_installed(backend[0]):
        _module, package, extra = backend
        raise UsageError(f"{proto}:// needs {package}: pip install 'modelreg[{extra}]'")
    if egress is not None and proto in ("http", "https"):
        opts["get_client"] = egress.http_client()
        opts["skip_instance_cache"] = True
    if proto == "s3":
        client_kwargs = opts.get("client_kwargs") or {}
        env_endpoint = os.environ.get(S3_ENDPOINT_ENV)
        if env_endpoint and "endpoint_url" not in opts and "endpoint_url" not in client_kwargs:
            opts["endpoint_url"] = env_endpoint
        if "versionId" in dict(parse_qsl(urlsplit(uri).query)):
            opts.setdefault("version_aware", True)
    import fsspec

    try:
        return fsspec.filesystem(proto, **opts)
    except ImportError:
        if backend is None:
            raise
        raise UsageError(f"{proto}:// needs {backend[1]}: pip install 'modelreg[{backend[2]}]'") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid storage options for {proto}://: {exc}") from None


def _remote_info(fs: Any, uri: str) -> dict[str, Any]:
    with _errors(uri):
        fs.invalidate_cache(uri)  # s3fs may answer from a stale listing otherwise
        info = fs.info(uri)
    if info.get("type") == "directory":
        raise _NotAFile(f"{uri} is a directory/prefix, not a file")
    return info


def _s3_store_sha256(fs: Any, uri: str) -> tuple[int, str] | None:
    """Return (size, sha256) from one S3 HEAD if the object carries a full-object SHA-256 checksum."""
    try:
        bucket, key, version_id = fs.split_path(uri)
        extra = {"VersionId": version_id} if version_id else {}
        head = fs.call_s3("head_object", fs.kwargs, Bucket=bucket, Key=key, ChecksumMode="ENABLED", **extra)
    except Exception:  # a store that does not support checksums just gives us no free hash
        return None
    value = head.get("ChecksumSHA256")
    # A multipart upload's SHA-256 is a checksum of part checksums (COMPOSITE; S3 allows no full-object
    # SHA-256 for multipart), not a content hash. S3 marks it with "-N" and ChecksumType, but not every
    # S3 implementation does (moto does neither), so a multipart ETag ("...-N") also rules it out.
    etag = str(head.get("ETag", "")).strip('"')
    if (
        not value
        or "-" in value
        or re.search(r"-\d+$", etag)
        or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT"
    ):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32:
        return None
    return int(head["ContentLength"]), raw.hex()


def _open_remote(fs: Any, uri: str) -> Any:
    proto = _protocol(uri)
    with _errors(uri):
        if proto in ("http", "https"):
            # streaming mode: plain GET, no reliance on Range support
            return fs.open(uri, "rb", block_size=0)
        return fs.open(uri, "rb", block_size=8 * CHUNK)


def _hash_remote(fs: Any, uri: str, progress: Progress | None) -> tuple[str, int]:
    raw = _open_remote(fs, uri)
    try:
        return sha256_stream(_MappedStream(raw, uri), progress)  # type: ignore[arg-type]
    finally:
        with _errors(uri):
            raw.close()


# --------------------------------------------------------------------------- public operations


def stat_artifact(
    uri: str,
    *,
    root: str | os.PathLike[str],
    compute_hash: bool = False,
    progress: Progress | None = None,
    storage_options: StorageOptions | None = None,
    egress: Any = None,
) -> ArtifactInfo:
    """Check that the artifact exists and is a file; return its stored URI, size and (if known) sha256.

    Local files are always hashed. Remote objects are hashed only when compute_hash is set, unless the
    store provides a SHA-256 for free (S3 ChecksumSHA256, Hugging Face LFS sha256).
    ``egress`` (a :class:`modelreg.trust.egress.Egress`) applies the reading rules for URIs that
    came from a registry.
    """
    check_uri_safe(uri)
    if is_local(uri):
        path = _local_file(uri, root, egress)
        with _errors(uri):
            digest, size = sha256_file(path, progress)
        return ArtifactInfo(normalize_local_uri(str(path), root), size, digest, "computed")

    fs = _filesystem(uri, storage_options, egress)
    info = _remote_info(fs, uri)
    size = info.get("size")
    sha: str | None = None
    source = "none"
    proto = _protocol(uri)
    if proto == "s3":
        from_store = _s3_store_sha256(fs, uri)
        if from_store is not None:
            size, sha = from_store
            source = "store"
    elif proto == "hf":
        lfs = info.get("lfs") or {}
        if isinstance(lfs, dict) and isinstance(lfs.get("sha256"), str) and _SHA256_RE.match(lfs["sha256"].lower()):
            sha, source = lfs["sha256"].lower(), "store"
    if compute_hash or size is None:  # an unknown size can only be learned by reading the bytes
        sha, size = _hash_remote(fs, uri, progress)
        source = "computed"
    return ArtifactInfo(uri, int(size), sha, source)


@contextmanager
def open_artifact(
    uri: str,
    *,
    root: str | os.PathLike[str],
    storage_options: StorageOptions | None = None,
    egress: Any = None,
) -> Iterator[BinaryIO]:
    """Yield a binary read stream over the artifact's bytes."""
    check_uri_safe(uri)
    if is_local(uri):
        path = _local_file(uri, root, egress)
        with _errors(uri):
            raw: Any = _open_regular(path, uri)
    else:
        fs = _filesystem(uri, storage_options, egress)
        _remote_info(fs, uri)
        raw = _open_remote(fs, uri)
    try:
        yield _MappedStream(raw, uri)  # type: ignore[misc]
    finally:
        try:
            raw.close()
        except Exception:  # nothing useful to report once the caller is done
            pass


def _open_regular(path: Path, uri: str) -> BinaryIO:
    """Open a local file for reading only if it is a regular file (a FIFO swapped in never blocks us)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            raise _NotAFile(f"{uri} is not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(directory: Path, prefix: str) -> tuple[Path, int]:
    """Create a new file with a random name in directory; honours the umask (unlike mkstemp's 0600)."""
    for _ in range(100):
        tmp = directory / f"{prefix}{secrets.token_hex(8)}"
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
    raise ModelregError(f"cannot create a temporary file in {directory}")


def _copy_hashing(
    src: Any, dst: Any, progress: Progress | None, limit: int | None = None
) -> tuple[str, int]:
    """Copy src to dst in chunks; return (sha256, bytes). Stops early once more than `limit` bytes arrive."""
    h = hashlib.sha256()
    total = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        dst.write(chunk)
        h.update(chunk)
        total += len(chunk)
        if progress is not None:
            progress(len(chunk))
        if limit is not None and total > limit:
            break
    return h.hexdigest(), total


def _mismatch(what: str, uri: str, expected: str, actual: str, expected_size: int | None, size: int) -> IntegrityError:
    if expected_size is not None and size != expected_size:
        got = f"more than {expected_size}" if size > expected_size else str(size)  # reading stops early
        return IntegrityError(f"{what} {uri} does not match: expected {expected_size} bytes, got {got}")
    return IntegrityError(
        f"{what} {uri} does not match: expected sha256 {expected[:12]}…, got {actual[:12]}…"
    )


def fetch_artifact(
    uri: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None,
    size: int | None,
    root: str | os.PathLike[str],
    progress: Progress | None = None,
    storage_options: StorageOptions | None = None,
    egress: Any = None,
) -> bool:
    """Download the artifact to dest atomically, only if its bytes match sha256 (and size).

    Returns False if dest already held the right bytes, True if it downloaded them. With
    sha256=None (nothing recorded to check against) only the size is checked, and the file
    is always downloaded again: bytes already at dest cannot be known to be the right ones.
    """
    check_uri_safe(uri)
    expected = _require_sha256(sha256) if sha256 is not None else None
    dest = Path(dest)
    if dest.is_dir():
        raise UsageError(f"destination is a directory: {dest}")
    if expected is not None and dest.exists():
        try:
            have, have_size = sha256_file(dest)
        except OSError as exc:
            raise ModelregError(f"cannot read {dest}: {exc.strerror or exc}") from None
        if have == expected and (size is None or have_size == size):
            return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_temp(dest.parent, f".{dest.name}.modelreg-tmp-")
    except OSError as exc:
        raise ModelregError(f"cannot write to {dest.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out, open_artifact(uri, root=root, storage_options=storage_options, egress=egress) as src:
            try:
                actual, got = _copy_hashing(src, out, progress, limit=size)
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:  # our side: disk full, permissions (source errors arrive mapped)
                raise ModelregError(f"cannot write {dest}: {exc.strerror or exc}") from None
        if (expected is not None and actual != expected) or (size is not None and got != size):
            raise _mismatch("downloaded bytes of", uri, expected or "", actual, size, got)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(dest.parent)
    return True


def _upload_local(local: Path, size: int, store_url: str, target: str, expected: str, progress: Progress | None) -> str:
    if _protocol(store_url) == "file":
        target_path = _file_uri_to_path(target)
    else:
        target_path = Path(target)
    try:
        if target_path.is_file() and target_path.stat().st_size == size:
            return target
        target_path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_temp(target_path.parent, ".tmp-")
    except OSError as exc:
        raise ModelregError(f"cannot write to store {store_url}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out, open(local, "rb") as src:
            actual, got = _copy_hashing(src, out, progress)
            out.flush()
            os.fsync(out.fileno())
        if actual != expected:
            raise _mismatch("local file", str(local), expected, actual, None, got)
        os.replace(tmp, target_path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise ModelregError(f"cannot upload {local} to {target}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(target_path.parent)
    return target


def _abandon(out: Any) -> None:
    """Drop a half-written fsspec file without committing it (closing one would upload what it has)."""
    discard = getattr(out, "discard", None)  # aborts an S3 multipart upload / drops the buffer
    try:
        if discard is not None:
            discard()
            # fsspec's discard() leaves the file "open"; mark it closed so __del__ does not flush it
            out.closed = True
        else:
            out.close()
    except Exception:
        pass


def upload_artifact(
    local_path: str | os.PathLike[str],
    store_url: str,
    *,
    sha256: str,
    progress: Progress | None = None,
    storage_options: StorageOptions | None = None,
) -> str:
    """Upload a local file to a content-addressed store (`<store>/sha256/ab/cdef…`); return the final URI.

    Skips the upload when the target already exists with the same size. The final key only ever
    appears complete, and only if the uploaded bytes hash to sha256.
    """
    check_uri_safe(store_url)
    expected = _require_sha256(sha256)
    local = Path(local_path)
    try:
        st = local.stat()
    except FileNotFoundError:
        raise NotFound(f"artifact not found: {local}") from None
    if not local.is_file():
        raise UsageError(f"{local} is not a file")
    size = st.st_size
    target = f"{store_url.rstrip('/')}/sha256/{expected[:2]}/{expected[2:]}"
    if is_local(store_url):
        return _upload_local(local, size, store_url, target, expected, progress)

    fs = _filesystem(store_url, storage_options)
    try:
        info = _remote_info(fs, target)
    except NotFound:
        info = None
    if info is not None and info.get("size") == size:
        return target
    tmp = f"{target.rsplit('/', 1)[0]}/.tmp-{secrets.token_hex(8)}"
    try:
        with _errors(tmp):
            out = fs.open(tmp, "wb")
        try:
            with open(local, "rb") as src, _errors(tmp):
                actual, got = _copy_hashing(src, out, progress)
            if actual != expected:
                raise _mismatch("local file", str(local), expected, actual, None, got)
        except BaseException:
            _abandon(out)
            raise
        with _errors(tmp):
            out.close()
        with _errors(target):
            fs.mv(tmp, target)
    except BaseException:
        try:
            if fs.exists(tmp):
                fs.rm(tmp)
        except Exception:
            pass
        raise
    with _errors(target):
        if fs.exists(tmp):  # some backends copy without deleting
            fs.rm(tmp)
        fs.invalidate_cache(target)
    return target


def verify_artifact(
    uri: str,
    *,
    size: int | None,
    sha256: str | None,
    compute_hash: bool,
    root: str | os.PathLike[str],
    progress: Progress | None = None,
    storage_options: StorageOptions | None = None,
    egress: Any = None,
) -> VerifyResult:
    """Check an artifact against its recorded size and sha256 and report the outcome.

    Missing, unreachable, mismatched and not-a-file artifacts are reported in the result, not raised.
    Remote bytes are only hashed with compute_hash; otherwise a store-provided sha256 is compared if any.
    """
    expected = sha256.lower() if sha256 else None

    def result(status: str, message: str, actual_size: int | None = None, actual_sha: str | None = None) -> VerifyResult:
        return VerifyResult(uri, status == "ok", status, size, actual_size, expected, actual_sha, message)

    try:
        info = stat_artifact(uri, root=root, compute_hash=False, progress=progress, storage_options=storage_options,
                             egress=egress)
        if size is not None and info.size != size:
            return result(
                "size-mismatch", f"expected {size} bytes, found {info.size}", info.size, info.sha256
            )
        if compute_hash and info.sha256_source != "computed":
            fs = _filesystem(uri, storage_options, egress)
            actual, actual_size = _hash_remote(fs, uri, progress)
            info = ArtifactInfo(info.uri, actual_size, actual, "computed")
            if size is not None and actual_size != size:
                return result("size-mismatch", f"expected {size} bytes, read {actual_size}", actual_size, actual)
    except NotFound as exc:
        return result("missing", exc.message)
    except Unreachable as exc:
        return result("unreachable", exc.message)
    except _NotAFile as exc:
        return result("not-a-file", exc.message)
    if expected is not None and info.sha256 is not None and info.sha256 != expected:
        return result(
            "hash-mismatch",
            f"expected sha256 {expected[:12]}…, found {info.sha256[:12]}… ({info.sha256_source})",
            info.size,
            info.sha256,
        )
    if expected is not None and info.sha256 is None:
        return result("ok", "size matches; content not hashed (use --hash / compute_hash)", info.size, None)
    if expected is None and not is_local(uri):
        got = f"; read sha256 {info.sha256[:12]}… ({info.sha256_source})" if info.sha256 else ""
        return VerifyResult(uri, True, "unverified", size, info.size, None, info.sha256,
                            f"no sha256 recorded: nothing to compare; size {'matches' if size is not None else 'not recorded'}{got}")
    return result("ok", f"ok (sha256 {info.sha256_source})" if info.sha256 else "ok", info.size, info.sha256)


# --------------------------------------------------------------------------- directories and links


def list_tree(uri: str, *, storage_options: StorageOptions | None = None, egress: Any = None) -> list[dict[str, Any]]:
    """Every file under a remote directory / prefix: ``[{path, size, sha256}]`` sorted by relative path.

    Hidden names (a segment starting with ``.``) and directory markers are skipped; ``sha256`` is the
    store's own SHA-256 when its listing gives one for free (Hugging Face LFS files), else None.
    NotFound if nothing is there.
    """
    check_uri_safe(uri)
    proto = _protocol(uri)
    if proto in ("http", "https"):
        raise UsageError(f"{proto}:// cannot list a directory: register its files one by one")
    fs = _filesystem(uri, storage_options, egress)
    base = fs._strip_protocol(uri.rstrip("/")).rstrip("/")
    with _errors(uri):
        fs.invalidate_cache(base)
        found = fs.find(base, detail=True)
    out = []
    for key, info in found.items():
        key = key.rstrip("/") if info.get("type") != "directory" else key
        if info.get("type") == "directory" or not key.startswith(base + "/"):
            continue
        rel = key[len(base) + 1:]
        if not rel or any(seg.startswith(".") for seg in rel.split("/")):
            continue
        lfs = info.get("lfs") or {}
        sha = lfs.get("sha256") if isinstance(lfs, dict) else None
        sha = sha.lower() if isinstance(sha, str) and _SHA256_RE.match(sha.lower()) else None
        out.append({"path": rel, "size": int(info.get("size") or 0), "sha256": sha})
    if not out:
        raise NotFound(f"artifact not found: no files under {uri}")
    return sorted(out, key=lambda f: f["path"])


def sign_url(uri: str, expires: int, *, storage_options: StorageOptions | None = None) -> str:
    """A time-limited HTTPS link to a stored object (fsspec ``sign()``: S3 presigned URL, GCS signed URL).

    UsageError for local paths and stores that cannot sign; NotFound if the object is not there.
    """
    check_uri_safe(uri)
    if is_local(uri):
        raise UsageError(f"{uri} is a local path: only object stores (s3://, gs://) can sign a link")
    fs = _filesystem(uri, storage_options)
    _remote_info(fs, uri)  # the object exists and is a file: a link to nothing helps nobody
    proto = _protocol(uri)
    try:
        with _errors(uri):
            return fs.sign(uri, expiration=int(expires))
    except UsageError as exc:
        if isinstance(exc.__cause__, NotImplementedError):
            raise UsageError(f"{proto}:// cannot sign links (only s3:// and gs:// stores can): {uri}") from None
        raise


def delete_artifact(
    uri: str, *, root: str | os.PathLike[str], storage_options: StorageOptions | None = None
) -> bool:
    """Delete one stored object (``prune --purge``); True if it was deleted, False if it was not there.

    A local path is removed only if it is a regular file (never a symlink, never a directory, never
    through a symlinked ``sha256/`` or ``ab/`` directory of the store); the directory is fsynced after. A remote object is removed
    through fsspec. The caller decides that ``uri`` is a content-addressed object of the artifact
    store that nothing live uses (see modelreg.retention.purge).
    """
    check_uri_safe(uri)
    if is_local(uri):
        path = _file_uri_to_path(uri) if _protocol(uri) == "file" else Path(uri)
        if not path.is_absolute():
            path = Path(root) / path
        for d in (path.parent, path.parent.parent):  # STORE/sha256/ab/: the store's own directories, never links
            if d.is_symlink():
                raise UsageError(f"will not delete {uri}: {d} is a symlink")
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        if not stat_mod.S_ISREG(st.st_mode):
            raise UsageError(f"will not delete {uri}: not a regular file")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ModelregError(f"cannot delete {uri}: {exc.strerror or exc}") from None
        _fsync_dir(path.parent)
        return True
    fs = _filesystem(uri, storage_options)
    try:
        _remote_info(fs, uri)  # object stores delete a missing key without a word: ask first
        with _errors(uri):
            fs.rm_file(uri)
    except NotFound:
        return False
    with _errors(uri):
        fs.invalidate_cache(uri)
    return True
