"""Fixtures for the execution tests: small recipe folders written in code, and the busybox test image."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from exec_helpers import BUSYBOX, TWO_STEP, TWO_STEP_SIDE, write_recipe

__all__ = ["BUSYBOX", "TWO_STEP", "TWO_STEP_SIDE", "write_recipe"]


@pytest.fixture
def two_step(tmp_path: Path) -> Callable[..., Path]:
    """``two_step(env=...)``: the two-step recipe (upper -> final) with its declared inputs and outputs."""

    def make(env: str = BUSYBOX, name: str = "twostep") -> Path:
        return write_recipe(tmp_path / name, TWO_STEP.format(env=env), TWO_STEP_SIDE,
                            {"data/a.txt": "alpha\nbeta\n", "data/b.txt": "gamma\n"})

    return make


@pytest.fixture(scope="session")
def busybox_oci(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from archive.container.testing import build_busybox_oci
    from archive.errors import MissingDependencyError

    try:
        return build_busybox_oci(tmp_path_factory.mktemp("oci") / "busybox")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def image_archive(tmp_archive: Any, busybox_oci: Path) -> Any:
    """An archive holding the busybox test image as container/busybox@1.0.0."""
    from archive.container import add_image

    add_image(tmp_archive, busybox_oci, name="busybox", version="1.0.0")
    return tmp_archive


@pytest.fixture(scope="session")
def bwrap_ok() -> None:
    from archive.container import get_runner

    if shutil.which("bwrap") is None:
        pytest.skip("bwrap (bubblewrap) is not installed")
    reason = get_runner("bwrap").available()
    if reason:
        pytest.skip(reason)
