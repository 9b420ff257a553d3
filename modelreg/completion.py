"""Shell completion for bash, zsh and fish: the scripts, their installation, and candidate words
(model names, ``NAME@`` versions and stages) read from the registry. Imported only when completing.

The scripts and the completion protocol are typer's (``_MODELREG_COMPLETE=complete_bash``...);
this module adds the registry's words. Completion never fails loudly: a missing or broken
registry completes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")
PROG = "modelreg"
COMPLETE_VAR = "_MODELREG_COMPLETE"


def detect_shell() -> str | None:
    """The user's shell: ``$SHELL``'s name if it is one we support, else the parent process's."""
    name = os.path.basename(os.environ.get("SHELL", ""))
    if name in SHELLS:
        return name
    try:
        import shellingham

        name = shellingham.detect_shell()[0]
    except Exception:  # noqa: BLE001 - no shell to detect (CI, cron): the caller asks for one
        return None
    return name if name in SHELLS else None


def _shell(shell: str | None) -> str:
    from .errors import UsageError
    from .suggest import did_you_mean

    chosen = shell or detect_shell()
    if chosen is None:
        raise UsageError(f"cannot tell which shell you use; name it: one of {', '.join(SHELLS)}")
    if chosen not in SHELLS:
        raise UsageError(f"unsupported shell {chosen!r}; one of {', '.join(SHELLS)}" + did_you_mean(chosen, SHELLS))
    return chosen


def script(shell: str | None = None) -> str:
    """The completion script for ``shell`` (detected when None)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=_shell(shell))


def install(shell: str | None = None) -> tuple[str, Path]:
    """Write the completion script where ``shell`` loads it from (in ``$HOME``); (shell, path)."""
    from typer._completion_shared import install as typer_install

    chosen = _shell(shell)
    return typer_install(shell=chosen, prog_name=PROG, complete_var=COMPLETE_VAR)


def prepare() -> None:
    """Register typer's completion classes (its bash/zsh/fish protocol) before a completion request runs."""
    from typer._completion_classes import completion_init

    completion_init()


# ------------------------------------------------------------------ words
def _registry(registry: str | None):  # -> Registry | None
    from .registry import Registry

    try:
        return Registry.open(registry)
    except Exception:  # noqa: BLE001 - completion completes nothing rather than print an error
        return None


def models(incomplete: str, registry: str | None = None) -> list[str]:
    """Model names starting with ``incomplete``."""
    reg = _registry(registry)
    if reg is None:
        return []
    try:
        return [m for m in reg.refs.models() if m.startswith(incomplete)]
    except Exception:  # noqa: BLE001
        return []


def stages(incomplete: str, registry: str | None = None) -> list[str]:
    """Configured stage names starting with ``incomplete``."""
    reg = _registry(registry)
    if reg is None:
        return []
    try:
        return [s for s in reg.stages if s.startswith(incomplete)]
    except Exception:  # noqa: BLE001
        return []


def refs(incomplete: str, registry: str | None = None) -> list[str]:
    """``NAME@`` words: model names (as ``NAME@``) until one model is chosen, then its stages,
    ``latest`` and versions (newest last), as ``NAME@WORD``."""
    reg = _registry(registry)
    if reg is None:
        return []
    try:
        if "@" not in incomplete:
            names = [m for m in reg.refs.models() if m.startswith(incomplete)]
            if len(names) != 1:
                return [f"{m}@" for m in names]
            name, rest = names[0], ""
        else:
            name, _, rest = incomplete.partition("@")
        from .names import check_model

        check_model(name)
        held = reg.refs.stages(name)
        words = [s for s in reg.stages if s in held] + ["latest"]
        state = reg.model_state(name)
        words += list(reversed(state.order(reg.refs.version_names(name))))
        return [f"{name}@{w}" for w in dict.fromkeys(words) if w.startswith(rest)]
    except Exception:  # noqa: BLE001
        return []
