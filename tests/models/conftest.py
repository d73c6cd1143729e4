"""Fixtures for the models tests (helpers live in models_testlib)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from models_testlib import make_mlp_onnx


@pytest.fixture
def mlp_onnx(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "model.onnx", **kw: Any) -> Path:
        return make_mlp_onnx(tmp_path / "src" / name, **kw)

    return make
