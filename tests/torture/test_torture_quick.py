"""The torture suite's quick mode, in CI (well under 60 s on 2 cores).

Each section runs on its own so a failure names it; the seed is printed in the output
(rerun with ``python -m tests.torture --quick --only SECTION --seed N``).
"""

from __future__ import annotations

import os

import pytest

from tests.torture.run import SECTIONS, main

SEED = os.environ.get("TORTURE_SEED")


@pytest.mark.parametrize("section", SECTIONS)
def test_quick(section, capsys):
    argv = ["--quick", "--quiet", "--only", section] + (["--seed", SEED] if SEED else [])
    code = main(argv)
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert "losses found              0" in out
