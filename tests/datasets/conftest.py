"""Fixtures for the dataset tests: the ATLAS-style release built from the real Zmumu file, small helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def atlas_h5(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    from archive.datasets.testing import build_atlas_fixture

    return build_atlas_fixture(tmp_path_factory.mktemp("atlas") / "multifold.h5",
                               zmumu=shared_data / "uproot-Zmumu.root")


@pytest.fixture
def atlas_meta() -> dict[str, Any]:
    import copy

    from archive.datasets.testing import ATLAS_FIXTURE_METADATA

    return copy.deepcopy(ATLAS_FIXTURE_METADATA)


@pytest.fixture
def snapshot() -> Any:
    """``snapshot(archive)``: record files, stored objects and leftover temp files, to compare before/after."""
    return _snapshot


def _snapshot(archive: Any) -> tuple[list[str], list[str], list[str]]:
    """What an archive holds: record files, stored objects, leftover temp files."""
    root = Path(archive.root)
    records = sorted(str(p.relative_to(root)) for p in (root / "catalog").rglob("*") if p.is_file())
    objects = sorted(archive.store.iter_digests())
    tmp = root / ".hep-archive" / "tmp"
    leftovers = sorted(str(p) for p in tmp.rglob("*")) if tmp.exists() else []
    return records, objects, leftovers
