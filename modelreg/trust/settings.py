"""Committed storage settings: an allow-list of harmless options, local approval of the rest, the effective settings.

A committed ``config.yaml`` arrives by pull request, so it may not decide where requests and
credentials go. Storage options are sorted by an allow-list (:data:`HARMLESS`): an option is
harmless only if it is listed for its protocol *and* its value passes the listed check
(a boolean, a bounded number, a fixed choice). Everything else (``endpoint_url``,
``client_kwargs.endpoint_url``, hf ``endpoint``, http ``headers``, proxies, unknown options)
and a remote ``artifact_store`` are *network settings*: they apply only once this machine
approved their exact values (``modelreg trust``, recorded by hash in the user's config
directory, or ``MODELREG_TRUSTED_SETTINGS=sha256:...`` in the environment), unless the user's
own config sets the same keys. Credentials are refused outright in a committed config.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import PolicyRefused, UsageError

ENV_TRUSTED = "MODELREG_TRUSTED_SETTINGS"
TRUST_FILE = "trusted.json"
Check = Callable[[Any], bool]

# protocol spellings that share one options section
CANONICAL = {"gcs": "gs", "https": "http"}


def shown(text: Any, limit: int = 200) -> str:
    """Text from a registry made safe to print: control and other unprintable characters escaped, length capped."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _int(lo: int, hi: int) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _num(lo: float, hi: float) -> Check:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


def _choice(*values: str) -> Check:
    return lambda v: isinstance(v, str) and v in values


def _match(pattern: str) -> Check:
    rx = re.compile(pattern)
    return lambda v: isinstance(v, str) and rx.fullmatch(v) is not None


_CACHE = {"skip_instance_cache": _bool, "use_listings_cache": _bool, "listings_expiry_time": _num(0, 7 * 86400)}
_BLOCK = _int(0, 1 << 32)
# Harmless options per protocol: they tune timeouts, retries, block sizes and caches, or make a
# request carry *less* (anon). None of them names a host, a header, a proxy or a credential.
HARMLESS: dict[str, dict[str, Any]] = {
    "s3": {
        **_CACHE,
        "anon": _bool,  # no credentials at all
        "version_aware": _bool,
        "default_block_size": _BLOCK,
        "default_fill_cache": _bool,
        "default_cache_type": _choice("none", "bytes", "readahead", "mmap", "blockcache", "first", "all", "parts"),
        "max_concurrency": _int(1, 1024),
        "fixed_upload_size": _bool,
        # an AWS region name (botocore builds *.amazonaws.com host names from it): still AWS
        "client_kwargs": {"region_name": _match(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")},
        "config_kwargs": {
            "connect_timeout": _num(0, 3600),
            "read_timeout": _num(0, 3600),
            "max_pool_connections": _int(1, 1024),
            "tcp_keepalive": _bool,
            "retries": {"total_max_attempts": _int(1, 100), "max_attempts": _int(0, 100),
                        "mode": _choice("legacy", "standard", "adaptive")},
        },
    },
    "gs": {
        **_CACHE,
        "block_size": _BLOCK,
        "consistency": _choice("none", "size", "md5", "crc32c"),
        "cache_timeout": _num(-1, 7 * 86400),
        "requests_timeout": _num(0, 3600),
        "version_aware": _bool,
    },
    "hf": {**_CACHE, "block_size": _BLOCK, "expand_info": _bool},
    "http": {**_CACHE, "block_size": _BLOCK, "simple_links": _bool, "same_scheme": _bool},
    "memory": {**_CACHE},
}


def _split(value: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(harmless, network)`` parts of one options mapping."""
    harmless: dict[str, Any] = {}
    network: dict[str, Any] = {}
    for k, v in value.items():
        rule = schema.get(k)
        if isinstance(rule, dict) and isinstance(v, dict):
            h, n = _split(v, rule)
            if h:
                harmless[k] = h
            if n:
                network[k] = n
        elif callable(rule) and rule(v):
            harmless[k] = v
        else:
            network[k] = v
    return harmless, network


def split(options: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Committed ``storage_options`` -> ``(harmless, network)``, both keyed by canonical protocol."""
    harmless: dict[str, dict[str, Any]] = {}
    network: dict[str, dict[str, Any]] = {}
    for proto, opts in options.items():
        canon = CANONICAL.get(proto.lower(), proto.lower())
        h, n = _split(opts, HARMLESS.get(canon, {}))
        if h:
            harmless.setdefault(canon, {}).update(h)
        if n:
            network.setdefault(canon, {}).update(n)
    return harmless, network


def dotted(value: Any, prefix: str) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1}`` (leaves and empty mappings)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(dotted(v, f"{prefix}.{k}"))
        return out
    return {prefix: value}


def check_no_credentials(value: Any, where: str, committed_in: str = "config.yaml") -> None:
    """Refuse credential keys, and URLs that carry credentials, anywhere in a mapping that gets committed."""
    from ..uris import check_uri_safe, is_secret_name

    if isinstance(value, dict):
        for k, v in value.items():
            if is_secret_name(str(k)):
                raise UsageError(
                    f"refusing credential option {shown(f'{where}.{k}', 120)}: {committed_in} is committed; "
                    "configure credentials in the environment instead"
                )
            check_no_credentials(v, f"{where}.{k}", committed_in)
    elif isinstance(value, list):
        for v in value:
            check_no_credentials(v, where, committed_in)
    elif isinstance(value, str) and "://" in value:
        try:
            check_uri_safe(value)
        except UsageError as exc:
            raise UsageError(f"{shown(where, 120)}: {exc.message}") from None


# ----------------------------------------------------------------- the committed side
@dataclass(frozen=True)
class Committed:
    """The storage part of a committed config.yaml, validated and sorted."""

    store: str | None  # as written (a local path is made absolute by the caller)
    store_is_remote: bool
    harmless: dict[str, dict[str, Any]]
    network: dict[str, dict[str, Any]]

    def settings(self) -> dict[str, Any]:
        """The network settings as dotted keys -> values (what ``modelreg trust`` approves)."""
        out: dict[str, Any] = {}
        if self.store is not None and self.store_is_remote:
            out["artifact_store"] = self.store
        for proto in sorted(self.network):
            out.update(dotted(self.network[proto], f"storage_options.{proto}"))
        return out

    @property
    def digest(self) -> str | None:
        s = self.settings()
        if not s:
            return None
        from ..hashing import sha256_bytes

        return "sha256:" + sha256_bytes(json.dumps(s, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())


def committed(raw: dict[str, Any]) -> Committed:
    """Validate ``artifact_store`` and ``storage_options`` of a committed config mapping."""
    from ..uris import check_uri_safe, is_local

    store = raw.get("artifact_store")
    if store is not None:
        if not isinstance(store, str) or not store.strip():
            raise UsageError("config.yaml: 'artifact_store' must be a URL or a path (a non-empty string)")
        check_uri_safe(store)
    options = raw.get("storage_options")
    if options is None:
        options = {}
    if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in options.items()):
        raise UsageError("config.yaml: 'storage_options' must map a protocol (s3, gs, ...) to a mapping of options")
    try:
        check_no_credentials(options, "storage_options")
    except UsageError as exc:
        raise UsageError(f"config.yaml: {exc.message}") from None
    harmless, network = split(options)
    return Committed(store, store is not None and not is_local(store), harmless, network)


# ------------------------------------------------------------------ local approval
def _trust_file() -> Path:
    from .. import userconfig

    return userconfig.config_dir() / TRUST_FILE


def _key(registry: Path) -> str:
    return str(Path(registry).resolve())


def _records() -> dict[str, Any]:
    p = _trust_file()
    try:
        with open(p, "rb") as f:
            data = json.loads(f.read(1 << 22))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {p}: {getattr(exc, 'strerror', None) or exc}") from None
    regs = data.get("registries") if isinstance(data, dict) else None
    return regs if isinstance(regs, dict) else {}


def _save(records: dict[str, Any]) -> None:
    from .. import userconfig

    body = json.dumps({"version": 1, "registries": records}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    userconfig.write_private(_trust_file(), body.encode())


def approved_by(registry: Path, digest: str | None) -> str | None:
    """How the settings with ``digest`` are approved for ``registry``: "env", "record", or None."""
    if digest is None:
        return "none-needed"
    if os.environ.get(ENV_TRUSTED, "").strip() == digest:
        return "env"
    rec = _records().get(_key(registry))
    if isinstance(rec, dict) and rec.get("digest") == digest:
        return "record"
    return None


@dataclass(frozen=True)
class TrustStatus:
    """The committed network settings of one registry and whether this machine approved them."""

    registry: str
    config: str
    settings: dict[str, Any]
    digest: str | None
    approved: str | None  # "env", "record", "none-needed", or None
    changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "config": self.config, "digest": self.digest,
                "approved": self.approved is not None, "approved_by": self.approved,
                "settings": self.settings, "changed": self.changed}


def status(registry: Path, c: Committed) -> TrustStatus:
    digest = c.digest
    return TrustStatus(str(registry), str(Path(registry) / "config.yaml"), c.settings(), digest,
                       approved_by(registry, digest))


def approve(registry: Path, c: Committed) -> TrustStatus:
    """Record approval of exactly the current network settings of ``registry`` (replacing any earlier one)."""
    st = status(registry, c)
    if st.digest is None or st.approved == "record":
        return st
    records = _records()
    records[_key(registry)] = {
        "digest": st.digest,
        "settings": st.settings,
        "approved_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    _save(records)
    return TrustStatus(st.registry, st.config, st.settings, st.digest, "record", changed=True)


def revoke(registry: Path, c: Committed) -> TrustStatus:
    """Forget this machine's approval of ``registry``'s network settings."""
    records = _records()
    changed = records.pop(_key(registry), None) is not None
    if changed:
        _save(records)
    st = status(registry, c)
    return TrustStatus(st.registry, st.config, st.settings, st.digest, st.approved, changed=changed)


# ----------------------------------------------------------------- effective settings
def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _refusal(keys: list[str]) -> str:
    from .. import userconfig

    names = ", ".join(shown(k, 80) for k in keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
    return (f"config.yaml sets {names}, which decides where requests and credentials go, and this machine "
            f"has not approved it: review it with 'modelreg trust --show', then run 'modelreg trust' "
            f"(or set it in {userconfig.path()})")


class StorageOptions(dict):  # type: ignore[type-arg]
    """Effective storage options by canonical protocol. :meth:`for_protocol` is what uris.py asks;
    it refuses (exit 5) a protocol whose committed network settings are not approved."""

    def __init__(self, options: dict[str, dict[str, Any]], pending: dict[str, list[str]]) -> None:
        super().__init__(options)
        self.pending = pending

    def for_protocol(self, proto: str) -> dict[str, Any]:
        canon = CANONICAL.get(proto, proto)
        if self.pending.get(canon):
            raise PolicyRefused(_refusal(self.pending[canon]))
        return dict(self.get(canon) or {})


@dataclass(frozen=True)
class Effective:
    """What artifact operations use: the upload store and the storage options."""

    store: str | None
    options: StorageOptions
    store_refusal: str | None = None  # why the committed store may not receive uploads
    sources: dict[str, str] = field(default_factory=dict)

    def upload_store(self) -> str | None:
        if self.store_refusal:
            raise PolicyRefused(self.store_refusal)
        return self.store


def _keys(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for k, v in value.items():
        out.add((*prefix, k))
        if isinstance(v, dict):
            out |= _keys(v, (*prefix, k))
    return out


def effective(registry: Path, c: Committed, local_store: str | None) -> Effective:
    """Combine the committed config (harmless always, network settings if approved) with the user's config.

    ``local_store`` is the committed store made absolute when it is a local path.
    """
    from .. import userconfig

    user = userconfig.load()
    user_opts: dict[str, dict[str, Any]] = {}
    for proto, opts in user.storage_options.items():
        canon = CANONICAL.get(proto.lower(), proto.lower())
        user_opts[canon] = _merge(user_opts.get(canon, {}), opts)
    approved = approved_by(registry, c.digest) is not None
    options: dict[str, dict[str, Any]] = {}
    pending: dict[str, list[str]] = {}
    for proto in set(c.harmless) | set(c.network) | set(user_opts):
        merged = dict(c.harmless.get(proto, {}))
        net = c.network.get(proto, {})
        if approved:
            merged = _merge(merged, net)
        elif net:
            overridden = _keys(user_opts.get(proto, {}))  # keys the user's own config sets win
            leaves = [k for k in sorted(_keys(net)) if not isinstance(_get(net, k), dict) or not _get(net, k)]
            left = [".".join(("storage_options", proto, *k)) for k in leaves
                    if not any(k[:i] in overridden for i in range(1, len(k) + 1))]
            if left:
                pending[proto] = left
        options[proto] = _merge(merged, user_opts.get(proto, {}))
    if user.artifact_store is not None:
        return Effective(user.artifact_store, StorageOptions(options, pending), None, {"artifact_store": "user"})
    refusal = None
    if c.store is not None and c.store_is_remote and not approved:
        refusal = _refusal(["artifact_store"]).replace("decides where requests", "decides where uploads")
    store = local_store if c.store is not None and not c.store_is_remote else c.store
    return Effective(store, StorageOptions(options, pending), refusal,
                     {"artifact_store": "committed"} if c.store is not None else {})


def _get(value: dict[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        value = value[k]
    return value
