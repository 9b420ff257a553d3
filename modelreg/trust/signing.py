"""Signed events, as git signs commits with SSH keys: ``ssh-keygen -Y sign``/``verify`` in the ``modelreg`` namespace.

The signature covers the event's canonical bytes without the signature (:func:`canonical_bytes`).
The signing key comes from ``MODELREG_SIGNING_KEY`` or git's ``user.signingkey``; the allowed
signers file only from the verifier's environment (``MODELREG_ALLOWED_SIGNERS`` or git's
``gpg.ssh.allowedSignersFile``), never from the registry. See docs/format.md ("sig") and
docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..log import Event

NAMESPACE = "modelreg"
ENV_KEY = "MODELREG_SIGNING_KEY"
ENV_SIGNERS = "MODELREG_ALLOWED_SIGNERS"
SIGNED_ACTIONS = ("approve", "promote", "rollback", "clear", "metrics", "demote")
_TIMEOUT = 60
_MAX_SIG = 16384  # base64 characters; an ed25519/RSA-4096 SSH signature is well under 2 KiB


def canonical_bytes(event: Event) -> bytes:
    """What a signature covers: the event's JSON form without ``sig``, keys sorted, compact, UTF-8."""
    payload = {k: v for k, v in event.to_dict().items() if k != "sig"}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _run(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, timeout=_TIMEOUT, check=False)
    except FileNotFoundError:
        raise UsageError("ssh-keygen is not installed or not on PATH (needed to sign and verify events)") from None
    except subprocess.TimeoutExpired:
        raise UsageError("ssh-keygen did not answer in time") from None


def _git_config(key: str, cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "config", "--get", key], cwd=cwd, capture_output=True, timeout=10, check=False,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    value = proc.stdout.decode("utf-8", "replace").strip()
    return value or None


def _first_line(data: bytes) -> str:
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


# ------------------------------------------------------------------------ signing
@dataclass(frozen=True)
class Signer:
    """An SSH key to sign events with: a key file, or a public key whose private half is in the agent."""

    key: str
    source: str  # "MODELREG_SIGNING_KEY" or "user.signingkey"

    @classmethod
    def from_environment(cls, cwd: Path) -> Signer:
        """``MODELREG_SIGNING_KEY``, else git's ``user.signingkey``; UsageError if neither is set."""
        value = os.environ.get(ENV_KEY, "").strip()
        source = ENV_KEY
        if not value:
            value, source = _git_config("user.signingkey", cwd) or "", "user.signingkey"
        if not value:
            raise UsageError(
                f"--sign needs an SSH key: set {ENV_KEY} or 'git config user.signingkey ~/.ssh/id_ed25519.pub'"
            )
        return cls(value, source)

    def sign(self, data: bytes) -> str:
        """The base64 SSH signature of ``data`` in the modelreg namespace."""
        literal = self.key[len("key::"):] if self.key.startswith("key::") else None
        if literal is None and self.key.split(" ", 1)[0].startswith(("ssh-", "ecdsa-", "sk-")):
            literal = self.key
        with tempfile.TemporaryDirectory(prefix="modelreg-sign-") as tmp:
            if literal is not None:  # a public key: ssh-keygen asks the agent for the private half
                keyfile = Path(tmp) / "key.pub"
                keyfile.write_text(literal.strip() + "\n")
            else:
                keyfile = Path(self.key).expanduser()
                if not keyfile.is_file():
                    raise UsageError(f"signing key {self.key} ({self.source}) is not a file")
            proc = _run(["-Y", "sign", "-n", NAMESPACE, "-f", str(keyfile), "-q"], data)
        if proc.returncode != 0:
            raise UsageError(f"could not sign with {self.source} {self.key}: ssh-keygen: "
                             f"{_first_line(proc.stderr) or f'exit status {proc.returncode}'}")
        return _dearmor(proc.stdout)

    def sign_event(self, event: Event) -> Event:
        """``event`` with its ``sig`` set."""
        return dataclasses.replace(event, sig=self.sign(canonical_bytes(dataclasses.replace(event, sig=None))))


def _dearmor(text: bytes) -> str:
    lines = [line.strip() for line in text.decode("ascii", "replace").splitlines()]
    body = [line for line in lines if line and not line.startswith("-----")]
    value = "".join(body)
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("ssh-keygen produced an unreadable signature") from None
    return value


def _armor(value: str) -> str:
    return ("-----BEGIN SSH SIGNATURE-----\n" + "\n".join(value[i:i + 70] for i in range(0, len(value), 70))
            + "\n-----END SSH SIGNATURE-----\n")


def _read_string(blob: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(blob):
        raise ValueError("truncated")
    (n,) = struct.unpack(">I", blob[pos:pos + 4])
    if pos + 4 + n > len(blob):
        raise ValueError("truncated")
    return blob[pos + 4:pos + 4 + n], pos + 4 + n


def _signature_key(value: str) -> bytes:
    """The public key blob inside a base64 SSHSIG signature."""
    blob = base64.b64decode(value, validate=True)
    return _read_string(blob, 10)[0]


def _principals_for(allowed: Path, key_blob: bytes) -> list[str]:
    """Principals of the plain (non-CA) lines of an allowed signers file whose key is ``key_blob``.

    Only a shortcut to choose ``-I`` for ``ssh-keygen -Y verify``, which still checks the
    principal, the key and the line's options itself; CA lines are left to ``find-principals``.
    """
    import shlex

    want = base64.b64encode(key_blob).decode()
    found: list[str] = []
    try:
        text = allowed.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            fields = shlex.split(line, posix=True)
        except ValueError:
            continue
        if len(fields) < 3 or "cert-authority" in line:
            continue
        if want in fields[1:]:
            found.extend(p for p in fields[0].split(",") if p)
    return found


def parse_signature(value: str) -> tuple[str, str]:
    """``(key fingerprint "SHA256:...", namespace)`` of a base64 SSHSIG blob; ValueError if malformed."""
    if not isinstance(value, str) or len(value) > _MAX_SIG:
        raise ValueError("not a signature")
    try:
        blob = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if blob[:6] != b"SSHSIG" or len(blob) < 10:
        raise ValueError("not an SSH signature")
    pubkey, pos = _read_string(blob, 10)
    namespace, pos = _read_string(blob, pos)
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(pubkey).digest()).decode().rstrip("=")
    return fp, namespace.decode("utf-8", "replace")


# ------------------------------------------------------------------------ verifying
@dataclass(frozen=True)
class Verdict:
    """What a signature on an event proves.

    status: ``good`` (verifies against an allowed signer), ``bad`` (does not verify: the event
    was changed, or another namespace), ``unknown-key`` (no allowed signer has that key),
    ``unchecked`` (no allowed signers file), ``malformed``.
    """

    status: str
    principal: str | None = None
    key: str | None = None
    message: str = ""

    @property
    def verified(self) -> bool:
        return self.status == "good"

    @property
    def identity(self) -> str:
        """One approver per signing key: the allowed signer's principal (the key if unnamed)."""
        return self.principal or self.key or "?"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "principal": self.principal, "key": self.key, "message": self.message}


def allowed_signers_file(cwd: Path, registry: Path | None = None) -> Path | None:
    """``MODELREG_ALLOWED_SIGNERS``, else git's ``gpg.ssh.allowedSignersFile``; None if neither is set.

    A file inside the registry is refused: who may sign is the verifier's decision, never the registry's.
    """
    value = os.environ.get(ENV_SIGNERS, "").strip() or _git_config("gpg.ssh.allowedSignersFile", cwd) or ""
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = cwd / path
    real = path.resolve()
    if registry is not None:
        reg = Path(registry).resolve()
        if real == reg or reg in real.parents:
            raise UsageError(f"the allowed signers file {path} is inside the registry: it must come from your "
                             "environment, not from files a pull request can change")
    if not real.is_file():
        raise UsageError(f"the allowed signers file {path} does not exist")
    return real


class Verifier:
    """Checks event signatures against one allowed signers file (or none); results cached per event."""

    def __init__(self, allowed: Path | None) -> None:
        self.allowed = allowed
        self._cache: dict[tuple[bytes, str], Verdict] = {}

    @classmethod
    def from_environment(cls, cwd: Path, registry: Path | None = None) -> Verifier:
        return cls(allowed_signers_file(cwd, registry))

    def verify(self, event: Event) -> Verdict | None:
        """The verdict on ``event``'s signature, or None if it is not signed."""
        if event.sig is None:
            return None
        data = canonical_bytes(event)
        key = (data, event.sig)
        if key not in self._cache:
            self._cache[key] = self._verify(data, event.sig)
        return self._cache[key]

    def _verify(self, data: bytes, sig: str) -> Verdict:
        try:
            fp, namespace = parse_signature(sig)
        except ValueError as exc:
            return Verdict("malformed", message=f"unreadable signature ({exc})")
        if namespace != NAMESPACE:
            return Verdict("bad", key=fp, message=f"signed in namespace {namespace[:40]!r}, not {NAMESPACE!r}")
        if self.allowed is None:
            return Verdict("unchecked", key=fp, message=f"no allowed signers file ({ENV_SIGNERS} or "
                                                         "git config gpg.ssh.allowedSignersFile)")
        with tempfile.TemporaryDirectory(prefix="modelreg-verify-") as tmp:
            sigfile = Path(tmp) / "event.sig"
            sigfile.write_text(_armor(sig))
            principals = _principals_for(self.allowed, _signature_key(sig))  # saves a process per event
            if not principals:
                found = _run(["-Y", "find-principals", "-s", str(sigfile), "-f", str(self.allowed)])
                principals = [p for p in found.stdout.decode("utf-8", "replace").splitlines() if p.strip()]
                if found.returncode != 0 or not principals:
                    return Verdict("unknown-key", key=fp, message=f"key {fp} is not an allowed signer")
            principal = principals[0].strip()
            proc = _run(["-Y", "verify", "-f", str(self.allowed), "-I", principal, "-n", NAMESPACE,
                         "-s", str(sigfile)], data)
        if proc.returncode != 0:
            return Verdict("bad", principal, fp, "signature does not match the event (changed after signing?)")
        return Verdict("good", principal, fp, f"signed by {principal}")
