"""modelreg: a Git-style model registry that lives in a directory.

>>> from modelreg import Registry
>>> reg = Registry.init("project")                      # doctest: +SKIP
>>> reg.register("faq-bot", "1.0.0", artifacts=["checkpoint=model.bin"])  # doctest: +SKIP
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)

__version__ = "0.1.0"
__all__ = ["EMPTY", "Registry", "__version__"]

if TYPE_CHECKING:
    from typing import Any

    from .lifecycle.expect import EMPTY
    from .registry import Registry


def __getattr__(name: str) -> Any:
    if name == "Registry":  # imported on first use so `modelreg --help` stays light
        from .registry import Registry

        return Registry
    if name == "EMPTY":  # expect=modelreg.EMPTY: the stage must be empty (expect=None checks nothing)
        from .lifecycle.expect import EMPTY

        return EMPTY
    raise AttributeError(name)
