"""The user's own settings: ``$XDG_CONFIG_HOME/modelreg/config.yaml`` (else ``~/.config/modelreg/config.yaml``).

This file is never committed and git never delivers it, so it may say what the committed
``.modelreg/config.yaml`` may not (docs/security.md): where requests and credentials go
(``storage_options``, ``artifact_store``), which local directories besides the project
artifacts may be read from (``local_roots``), and whether the registry's URIs may name
private network addresses (``allow_private_network``), and which commands run on every
registry event (``hooks``, see :mod:`modelreg.hooks`). Parsed strictly, every key validated.

The environment wins over this file: ``MODELREG_LOCAL_ROOTS`` (paths separated by
``os.pathsep``) adds roots, ``MODELREG_ALLOW_PRIVATE_NETWORK`` (``1``/``0`` or a comma list
of ``HOST[:PORT]``) replaces ``allow_private_network``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

ENV_LOCAL_ROOTS = "MODELREG_LOCAL_ROOTS"
ENV_ALLOW_PRIVATE = "MODELREG_ALLOW_PRIVATE_NETWORK"
KEYS = ("storage_options", "artifact_store", "local_roots", "allow_private_network", "hooks")
HOOK_KEYS = ("command", "actions", "timeout")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/modelreg`` if that variable holds an absolute path, else ``~/.config/modelreg``."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "modelreg"


def path() -> Path:
    """The user's settings file (it need not exist)."""
    return config_dir() / "config.yaml"


@dataclass(frozen=True)
class UserConfig:
    """The validated user settings; an absent file gives the defaults."""

    path: Path
    storage_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifact_store: str | None = None
    local_roots: tuple[Path, ...] = ()
    allow_private_network: bool | frozenset[str] = False
    hooks: tuple[dict[str, Any], ...] = ()  # [{command, actions?, timeout?}]


_cache: dict[tuple[str, int, int], UserConfig] = {}


def load() -> UserConfig:
    """Read and validate the user's settings file (cached while its size and mtime stay the same)."""
    p = path()
    try:
        st = p.stat()
    except FileNotFoundError:
        return UserConfig(p)
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    key = (str(p), st.st_mtime_ns, st.st_size)
    if key not in _cache:
        _cache.clear()
        _cache[key] = _parse(p)
    return _cache[key]


def _bad(p: Path, where: str, msg: str) -> UsageError:
    return UsageError(f"{p}: {where}: {msg}")


def _parse(p: Path) -> UserConfig:
    from . import canonical

    try:
        with open(p, "rb") as f:  # the user's own file: a dotfiles symlink is fine here
            data = f.read(canonical.MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    raw = canonical.load(data, what=str(p)) if data.strip() else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"{p} must be a mapping")
    unknown = sorted(str(k) for k in raw if k not in KEYS)
    if unknown:
        raise _bad(p, unknown[0], f"unknown setting; allowed: {', '.join(KEYS)}")
    options = raw.get("storage_options") or {}
    if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in options.items()):
        raise _bad(p, "storage_options", "must map a protocol (s3, gs, hf, http, ...) to a mapping of options")
    store = raw.get("artifact_store")
    if store is not None:
        store = _store(p, store)
    roots = raw.get("local_roots") or []
    if not isinstance(roots, list):
        raise _bad(p, "local_roots", "must be a list of absolute directory paths")
    return UserConfig(
        path=p,
        storage_options={k: dict(v) for k, v in options.items()},
        artifact_store=store,
        local_roots=tuple(_root(p, "local_roots", r) for r in roots),
        allow_private_network=_private(raw.get("allow_private_network", False), lambda m: _bad(p, "allow_private_network", m)),
        hooks=_hooks(p, raw.get("hooks")),
    )


def _hooks(p: Path, value: Any) -> tuple[dict[str, Any], ...]:
    """``hooks:`` a list of commands, each a string or ``{command, actions?, timeout?}``."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(p, "hooks", "must be a list of commands (a string, or a mapping with command, actions, timeout)")
    out = []
    for i, h in enumerate(value):
        where = f"hooks[{i}]"
        if isinstance(h, str):
            h = {"command": h}
        if not isinstance(h, dict):
            raise _bad(p, where, "must be a command string or a mapping with command, actions, timeout")
        unknown = sorted(str(k) for k in h if k not in HOOK_KEYS)
        if unknown:
            raise _bad(p, f"{where}.{unknown[0]}", f"unknown key; allowed: {', '.join(HOOK_KEYS)}")
        cmd = h.get("command")
        if not isinstance(cmd, str) or not cmd.strip():
            raise _bad(p, f"{where}.command", "must be a non-empty shell command")
        entry: dict[str, Any] = {"command": cmd}
        actions = h.get("actions")
        if actions is not None:
            if not isinstance(actions, list) or not actions or not all(isinstance(a, str) and a for a in actions):
                raise _bad(p, f"{where}.actions", "must be a non-empty list of event actions (register, promote, ...)")
            entry["actions"] = list(actions)
        timeout = h.get("timeout")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
                raise _bad(p, f"{where}.timeout", "must be a number of seconds between 0 and 3600")
            entry["timeout"] = float(timeout)
        out.append(entry)
    return tuple(out)


def _store(p: Path, store: Any) -> str:
    from .uris import check_uri_safe, is_local

    if not isinstance(store, str) or not store.strip():
        raise _bad(p, "artifact_store", "must be a URL or an absolute path")
    try:
        check_uri_safe(store)  # the store's URIs end up in manifests, which are committed
    except UsageError as exc:
        raise _bad(p, "artifact_store", exc.message) from None
    if is_local(store) and not store.startswith("file://"):
        local = Path(store).expanduser()
        if not local.is_absolute():
            raise _bad(p, "artifact_store", "a local store must be an absolute path here")
        return local.resolve().as_uri()
    return store


def _root(p: Path, where: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _bad(p, where, f"{value!r} is not a directory path")
    local = Path(value).expanduser()
    if not local.is_absolute():
        raise _bad(p, where, f"{value!r} is not an absolute path")
    return local.resolve()


def _private(value: Any, bad: Any) -> bool | frozenset[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return frozenset(v.strip().lower() for v in value)
    raise bad("must be true, false, or a list of HOST or HOST:PORT")


def local_roots() -> tuple[Path, ...]:
    """Directories besides the project that artifact URIs read from a registry may name.

    ``local_roots`` of the user's file, the user's local ``artifact_store``, and
    ``MODELREG_LOCAL_ROOTS``; all real (resolved) absolute paths.
    """
    cfg = load()
    roots = list(cfg.local_roots)
    if cfg.artifact_store and cfg.artifact_store.startswith("file://"):
        from .uris import _file_uri_to_path

        roots.append(_file_uri_to_path(cfg.artifact_store).resolve())
    for item in os.environ.get(ENV_LOCAL_ROOTS, "").split(os.pathsep):
        if item.strip():
            local = Path(item.strip()).expanduser()
            if not local.is_absolute():
                raise UsageError(f"{ENV_LOCAL_ROOTS}: {item!r} is not an absolute path")
            roots.append(local.resolve())
    return tuple(roots)


def allows_local_path(p: str | os.PathLike[str]) -> bool:
    """True if the real path ``p`` lies in one of :func:`local_roots` (the user's say, never the registry's).

    Used to relax the rule that a committed ``artifact_store`` and artifact URIs read from the
    registry stay inside the project.
    """
    real = Path(p).resolve()
    return any(real == r or r in real.parents for r in local_roots())


def private_network() -> bool | frozenset[str]:
    """Whether URIs read from a registry may reach private addresses: True (all), False (none),
    or the set of allowed ``host`` / ``host:port`` (lower case). The environment wins over the file."""
    env = os.environ.get(ENV_ALLOW_PRIVATE)
    if env is not None:
        text = env.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return frozenset(v.strip() for v in text.split(",") if v.strip())
    return load().allow_private_network


def write_private(target: Path, data: bytes) -> None:
    """Atomically replace a file in the user's config directory (0600; its directory 0700 when created)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
