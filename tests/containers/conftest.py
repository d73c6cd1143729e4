"""Fixtures for the container tests: the real busybox OCI image (built once) and an archive holding it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archive.container.testing import build_busybox_oci


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer busybox OCI layout directory (second layer with whiteouts). Treat as read-only."""
    return build_busybox_oci(tmp_path_factory.mktemp("oci") / "busybox")


@pytest.fixture
def image_archive(tmp_archive: Any, busybox_layout: Path) -> Any:
    """A fresh archive with ``container/busybox-test@1.0.0`` added."""
    from archive.container import add_image

    add_image(tmp_archive, busybox_layout, name="busybox-test")
    return tmp_archive

