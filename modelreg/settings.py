"""Environment settings (``MODELREG_*``): one table of names, each value checked before it is used.

A bad value is a usage error (exit 2) naming the variable; an empty value means unset. The
CLI checks the whole environment when it starts (:func:`check_environment`), so a typo fails
the command before it does anything; the library checks each setting where it reads it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

from .errors import UsageError

DEFAULT_LOCK_TIMEOUT = 10.0
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _positive_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"{name}={value!r}: expected a positive number of seconds (e.g. 10 or 2.5)",
                         info={"variable": name, "value": value})
    return seconds


def _boolean(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise UsageError(f"{name}={value!r}: expected 1 or 0 (true/false, yes/no, on/off)",
                     info={"variable": name, "value": value})


def _one(name: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise UsageError(f"{name}={value!r}: expected 1 (or 0)", info={"variable": name, "value": value})
    return value == "1"


def _text(name: str, value: str) -> str:
    if not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UsageError(f"{name}={value!r}: expected printable text", info={"variable": name, "value": value})
    if len(value) > 200:
        raise UsageError(f"{name}: longer than 200 characters", info={"variable": name})
    return value


def _printable(name: str, value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UsageError(f"{name}: contains control characters", info={"variable": name})
    return value


def _paths(name: str, value: str) -> str:
    for item in value.split(os.pathsep):
        if item.strip() and not os.path.isabs(os.path.expanduser(item.strip())):
            raise UsageError(f"{name}: {item!r} is not an absolute path", info={"variable": name, "value": value})
    return _path(name, value)


def _digest(name: str, value: str) -> str:
    from .names import is_full_digest

    if not is_full_digest(value.strip()):
        raise UsageError(f"{name}={value!r}: expected sha256:<64 hex> (see 'modelreg trust --show')",
                         info={"variable": name, "value": value})
    return value


def _path(name: str, value: str) -> str:
    if "\0" in value:
        raise UsageError(f"{name}: a path cannot contain a NUL byte", info={"variable": name})
    return value


def _url(name: str, value: str) -> str:
    if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
        raise UsageError(f"{name}={value!r}: expected an http:// or https:// URL", info={"variable": name, "value": value})
    return value


# name -> (parser, what it sets); README.md "Environment" lists the same table.
SETTINGS: dict[str, tuple[Callable[[str, str], object], str]] = {
    "MODELREG_DIR": (_path, "the registry directory (like --registry)"),
    "MODELREG_ACTOR": (_text, "who is recorded as making a change (like --actor)"),
    "MODELREG_LOCK_TIMEOUT": (_positive_seconds, "seconds to wait for a model's lock (default 10)"),
    "MODELREG_TRACEBACK": (_boolean, "print an error's details and traceback"),
    "MODELREG_UNSAFE_NO_FSYNC": (_one, "1 skips every fsync: benchmarks only"),
    "MODELREG_S3_ENDPOINT_URL": (_url, "the S3 endpoint (docs/artifacts.md)"),
    "MODELREG_SIGNING_KEY": (_printable, "the SSH key --sign uses: a key file or a public key (docs/security.md)"),
    "MODELREG_ALLOWED_SIGNERS": (_path, "the allowed signers file signatures are verified against"),
    "MODELREG_TRUSTED_SETTINGS": (_digest, "approves committed network settings with this digest"),
    "MODELREG_LOCAL_ROOTS": (_paths, "absolute paths registry URIs may read besides the project"),
    "MODELREG_ALLOW_PRIVATE_NETWORK": (_printable, "1/0, or host[:port],... that registry URIs may reach"),
    "MODELREG_CACHE_DIR": (_path, "where derived data (the query index, fsck --quick memory) is kept"),
}


def get(name: str, environ: Mapping[str, str] | None = None) -> object | None:
    """The parsed value of setting ``name``, or None when unset or empty; UsageError when bad."""
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        return None
    _check_utf8(name, value)
    return SETTINGS[name][0](name, value)


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``MODELREG_LOCK_TIMEOUT`` (a positive number) or 10."""
    value = get("MODELREG_LOCK_TIMEOUT")
    return DEFAULT_LOCK_TIMEOUT if value is None else float(value)  # type: ignore[arg-type]


def traceback_enabled() -> bool:
    """``MODELREG_TRACEBACK`` is set to a true value."""
    return bool(get("MODELREG_TRACEBACK"))


def _check_utf8(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
        raise UsageError(f"{name}='{shown}' is not valid UTF-8", info={"variable": name}) from None


def check_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Check every ``MODELREG_*`` setting (UsageError for the first bad one); return a warning for
    each ``MODELREG_*`` name that is not a setting (a typo), with the closest real name."""
    from .config import closest

    env = os.environ if environ is None else environ
    warnings = []
    for name in sorted(n for n in env if n.startswith("MODELREG_")):
        if name in SETTINGS:
            get(name, env)
        else:
            near = closest(name, tuple(SETTINGS))
            warnings.append(f"unknown environment variable {name} ignored"
                            + (f" (did you mean {near}?)" if near else ""))
    return warnings
