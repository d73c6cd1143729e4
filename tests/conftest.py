"""Shared fixtures: a fresh archive root, the real files in ../shared/data, and a CLI runner."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str | os.PathLike[str]) -> CliResult:
    """Run ``hep-archive ARGS`` in-process and capture its exit code, stdout and stderr."""
    from archive.cli import main
    from archive.cli._common import STATE, console, err_console

    out, err = io.StringIO(), io.StringIO()
    old = (console.file, err_console.file)
    console.file, err_console.file = out, err
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([os.fspath(a) for a in args])
    finally:
        console.file, err_console.file = old
        STATE.root, STATE.json, STATE.debug = None, False, False
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture
def tmp_archive(tmp_path: Path) -> Any:
    from archive._archive import init_archive

    return init_archive(tmp_path / "arc")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_root_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HEP_ARCHIVE_ROOT", raising=False)
    yield


def pytest_report_header(config: pytest.Config) -> str:
    return f"hep-archive tests; python {sys.version.split()[0]}; shared data: {SHARED_DATA.is_dir()}"
