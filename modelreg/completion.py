"""Shell completion for bash, zsh and fish: the scripts, their installation, and candidate words
(model names, ``NAME@`` versions and stages) read from the registry. Imported only when completing.

The scripts and the completion protocol are typer's (``_MODELREG_COMPLETE=complete_bash``...) when
its private completion modules are there, else click's public ones; this module adds the registry's words. Completion never fails loudly: a missing or broken
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
    chosen = _shell(shell)
    shared = _typer_private("_completion_shared", "get_completion_script")
    if shared is not None:
        return shared.get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=chosen)
    return _click_script(chosen)


def install(shell: str | None = None) -> tuple[str, Path]:
    """Write the completion script where ``shell`` loads it from (in ``$HOME``); (shell, path)."""
    chosen = _shell(shell)
    shared = _typer_private("_completion_shared", "install")
    if shared is not None:
        return shared.install(shell=chosen, prog_name=PROG, complete_var=COMPLETE_VAR)
    return chosen, _install_script(chosen, _click_script(chosen))


def prepare() -> None:
    """Register typer's completion classes (its bash/zsh/fish protocol) before a completion request runs.

    Without them (a typer that moved its private modules) click's own classes answer, and
    :func:`script` hands out click's scripts, which speak their protocol."""
    classes = _typer_private("_completion_classes", "completion_init")
    if classes is not None:
        classes.completion_init()


# typer's completion scripts and protocol live in private modules (typer 0.26-0.29 at least). They
# are used when present; otherwise click's public shell_completion API gives equivalent scripts.
def _typer_private(module: str, attribute: str):  # -> module | None
    import importlib

    try:
        mod = importlib.import_module(f"typer.{module}")
    except ImportError:
        return None
    return mod if callable(getattr(mod, attribute, None)) else None


def _click_script(shell: str) -> str:
    """click's script for ``shell`` (its protocol, ``_MODELREG_COMPLETE=bash_complete``, which
    :func:`modelreg.cli.main` accepts too), from the public click package when it is installed."""
    try:
        from click import shell_completion
    except ImportError:
        shell_completion = None
    cls = getattr(shell_completion, {"bash": "BashComplete", "zsh": "ZshComplete", "fish": "FishComplete"}[shell], None)
    if cls is None:
        from .errors import UsageError

        raise UsageError("shell completion needs typer's completion support (typer >= 0.26) or the click package")
    return cls(None, {}, PROG, COMPLETE_VAR).source()


def _install_script(shell: str, text: str) -> Path:
    """Where typer installs its scripts: the file the shell loads, plus one line in its rc file."""
    home = Path.home()
    if shell == "fish":
        path = home / ".config" / "fish" / "completions" / f"{PROG}.fish"
        rc, line = None, ""
    elif shell == "zsh":
        path = home / ".zfunc" / f"_{PROG}"
        rc, line = home / ".zshrc", "fpath+=~/.zfunc; autoload -Uz compinit; compinit"
    else:
        path = home / ".bash_completions" / f"{PROG}.sh"
        rc, line = home / ".bashrc", f"source {path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if rc is not None:
        current = rc.read_text() if rc.is_file() else ""
        if line not in current:
            with rc.open("a") as f:
                f.write(("" if not current or current.endswith("\n") else "\n") + line + "\n")
    return path


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
