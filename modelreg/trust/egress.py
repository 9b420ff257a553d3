"""Where artifact URIs read from a registry may lead: no special files, no local files outside allowed roots,
no private network addresses (every resolved address, redirects included), unless the user's environment says so.

A URI typed on the command line (``register``) is the user's choice and is not checked here;
a URI read from ``.modelreg/`` (``verify``, ``fetch``, ``fsck --artifacts``) came from whoever
wrote the registry. See docs/security.md, "Reading artifacts never exfiltrates".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..errors import PolicyRefused
from .settings import shown

# Pseudo-filesystems whose "regular files" are the machine's state (/proc/self/environ holds
# the CI's credentials); never read, whatever the roots say.
SPECIAL_DIRS = (Path("/proc"), Path("/sys"), Path("/dev"))
PRIVATE_HINT = "set MODELREG_ALLOW_PRIVATE_NETWORK=1 (or allow_private_network in your user config) if it is meant"


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass(frozen=True)
class Egress:
    """The reading rules for URIs from one registry."""

    project: Path  # real path of the directory holding .modelreg/
    roots: tuple[Path, ...]  # further real directories the user allows
    private: bool | frozenset[str]  # True: any address; else the allowed "host" / "host:port"

    # ---------------------------------------------------------------- local files
    def check_local(self, real: Path, uri: str) -> None:
        """Refuse a resolved local path that is special or outside the project and the allowed roots."""
        for special in SPECIAL_DIRS:
            if _under(real, special):
                raise PolicyRefused(f"refusing to read {shown(uri)}: {special} holds the machine's state, not artifacts")
        if _under(real, self.project) or any(_under(real, r) for r in self.roots):
            return
        raise PolicyRefused(
            f"refusing to read {shown(uri)}: it is outside the project and the allowed local roots; add its directory "
            "to local_roots in your user config (or MODELREG_LOCAL_ROOTS) if it is meant"
        )

    # ---------------------------------------------------------------- network
    def allowed_host(self, host: str, port: int | None) -> bool:
        if self.private is True:
            return True
        if not self.private:
            return False
        host = host.lower().strip("[]")
        return host in self.private or f"{host}:{port}" in self.private

    def check_address(self, host: str, port: int | None, address: str) -> None:
        """Refuse ``address`` (what ``host`` resolved to) unless it is a global unicast address or allowed."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise PolicyRefused(f"refusing to contact {shown(host, 100)}: it resolved to {shown(address, 60)!r}, "
                                "not an IP address") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return
        if self.allowed_host(host, port) or self.allowed_host(str(ip), port):
            return
        label = shown(host, 100) if host == str(ip) else f"{shown(host, 100)} ({ip})"
        raise PolicyRefused(
            f"refusing to contact {label}: a private, loopback or link-local address named by the registry; {PRIVATE_HINT}"
        )

    async def check_url(self, url: str) -> None:
        """Resolve a URL's host (any spelling: ``2130706433``, ``127.1``, ``[::ffff:7f00:1]``) and check every
        address. HTTP clients skip their resolver for what they take to be IP literals, so this runs
        before every request and redirect; names are checked again when the connection resolves them."""
        import asyncio
        import socket

        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not host:
            raise PolicyRefused(f"refusing {shown(url)!r}: no host")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return  # unresolvable: the connection fails on its own (and is reported as unreachable)
        for info in infos:
            self.check_address(host, port, str(info[4][0]))

    def http_client(self) -> Any:
        """An fsspec ``get_client`` for aiohttp that checks every address it connects to (redirects too)."""
        egress = self

        async def get_client(**kwargs: Any) -> Any:
            import aiohttp
            from aiohttp.abc import AbstractResolver

            class Resolver(AbstractResolver):
                def __init__(self) -> None:
                    self._inner = aiohttp.ThreadedResolver()

                async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[dict[str, Any]]:
                    infos = await self._inner.resolve(host, port, family)
                    for info in infos:
                        egress.check_address(host, port, info["host"])
                    return infos

                async def close(self) -> None:
                    await self._inner.close()

            async def on_start(session: Any, ctx: Any, params: Any) -> None:
                await egress.check_url(str(params.url))

            async def on_redirect(session: Any, ctx: Any, params: Any) -> None:
                location = params.response.headers.get("Location") or params.response.headers.get("URI")
                if location:
                    await egress.check_url(urljoin(str(params.url), location))

            trace = aiohttp.TraceConfig()
            trace.on_request_start.append(on_start)
            trace.on_request_redirect.append(on_redirect)
            kwargs.pop("trust_env", None)  # no proxies from the environment behind our back
            kwargs.pop("connector", None)
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=Resolver()),
                                         trace_configs=[trace], trust_env=False, **kwargs)

        return get_client


def for_project(project: Path) -> Egress:
    """The rules for a registry in ``project``, from the user's config and environment."""
    from .. import userconfig

    return Egress(Path(project).resolve(), userconfig.local_roots(), userconfig.private_network())
