"""The project's standards, enforced in CI: ruff on the code and mypy --strict on archive/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install 'hep-archive[dev]')")
    return str(path)


def test_ruff() -> None:
    out = subprocess.run([_tool("ruff"), "check", "archive", "tests", "benchmarks"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict() -> None:
    out = subprocess.run([_tool("mypy"), "archive"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_pickle_and_safe_yaml_only() -> None:
    offenders = []
    for path in (REPO / "archive").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for banned in ("import pickle", "pickle.load", "yaml.load(", "allow_pickle=True", "torch.load(", "eval(",
                       "exec("):
            for line in text.splitlines():
                code = line.split("#", 1)[0]
                harmless = ("noqa: S506" in line or "ast.literal_eval" in code or "_eval(" in code
                            or ".eval()" in code)
                if banned in code and not harmless:
                    offenders.append(f"{path.relative_to(REPO)}: {line.strip()}")
    assert offenders == []
