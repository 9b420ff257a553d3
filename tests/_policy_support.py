"""Helpers shared by the policy and annotation tests (kept out of conftest.py on purpose)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelreg.cli import main
from modelreg.registry import Registry


def make_registry(tmp_path: Path, config_tail: str = "", stages: tuple[str, ...] = ("staging", "production")) -> Registry:
    """A fresh registry whose config declares ``stages`` and appends ``config_tail`` (YAML)."""
    reg = Registry.init(tmp_path / "project")
    text = "format: 1\nstages: [" + ", ".join(stages) + "]\n" + config_tail
    (reg.path / "config.yaml").write_text(text)
    return Registry(reg.path)


class Cli:
    """Run ``modelreg -R REGISTRY ...`` in-process and collect exit code, stdout, stderr."""

    def __init__(self, reg: Registry, capsys: Any) -> None:
        self.reg, self.capsys = reg, capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            main(["-R", str(self.reg.path), *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


def log_lines(reg: Registry, model: str) -> list[dict[str, Any]]:
    path = reg.logs_dir / f"{model}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def snapshot(reg: Registry) -> dict[str, bytes]:
    """Every file of the registry except locks, by relative path."""
    return {
        str(p.relative_to(reg.path)): p.read_bytes()
        for p in sorted(reg.path.rglob("*"))
        if p.is_file() and "locks" not in p.relative_to(reg.path).parts
    }
