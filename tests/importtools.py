"""The real GTO and MLflow tools for the importer tests: where they are, and skip-or-fail when they are not.

They come from the ``import-test`` extra (``pip install -e '.[import-test]'``), normally into
the project's own venv next to the interpreter running the tests. ``MODELREG_TEST_GTO`` /
``MODELREG_TEST_MLFLOW`` may name the executables instead (e.g. in a separate tool venv).
Without them a test is skipped with a message saying how to install them, except when
``CI`` is set: there a missing tool is a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ENV = {"gto": "MODELREG_TEST_GTO", "mlflow": "MODELREG_TEST_MLFLOW"}


def find_tool(name: str) -> str | None:
    """Path of the ``gto`` or ``mlflow`` executable, or None."""
    given = os.environ.get(ENV[name])
    if given:
        return given if Path(given).is_file() else None
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def missing(what: str) -> None:
    """Skip (or, under CI, fail) because ``what`` is not installed."""
    message = (f"{what} is not installed: pip install -e '.[import-test]' (or point "
               f"{' / '.join(ENV.values())} at the tools) to run the importer tests")
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        missing(f"the {name} CLI")
    return path  # type: ignore[return-value]


def require_mlflow_client():  # noqa: ANN201 - the mlflow module
    """The ``mlflow`` package (its client populates the test server)."""
    try:
        import mlflow
    except ImportError:
        missing("the mlflow package")
    return mlflow
