"""Integrity fixtures: archives with replica stores, records publishing real files, a real moto S3 server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    d = tmp_path / "inputs"
    d.mkdir(exist_ok=True)

    def write(name: str, data: bytes) -> Path:
        p = d / name
        p.write_bytes(data)
        return p

    return write


