"""Fixtures for the reinterpretation tests: a small ATLAS-layout dataset in memory, an independent reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from reinterp_data import MemoryDataset, atlas_like


@pytest.fixture(scope="session")
def zjets() -> MemoryDataset:
    return atlas_like()


def reference_hist(x: np.ndarray, w: np.ndarray, edges: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Straightforward per-column histogram with flow cells: np.digitize + np.bincount, all in float64."""
    cells = np.digitize(x.astype(np.float64), edges, right=False)
    cells = np.where(np.isnan(x), len(edges), cells)
    w = w.astype(np.float64)
    if mask is not None:
        cells, w = cells[mask], w[mask]
    return np.bincount(cells, weights=w, minlength=len(edges) + 1)


@pytest.fixture(scope="session")
def ref_hist() -> Any:
    return reference_hist


@pytest.fixture(scope="session")
def atlas_archive(tmp_path_factory: pytest.TempPathFactory, shared_data: Any) -> Any:
    """A real archive with the ATLAS-layout fixture (real CMS Zmumu events) ingested twice (two seeds)."""
    from archive._archive import init_archive
    from archive.datasets import ingest
    from archive.datasets.testing import ATLAS_FIXTURE_METADATA, build_atlas_fixture

    base = tmp_path_factory.mktemp("reinterp")
    archive = init_archive(base / "arc")
    zmumu = shared_data / "uproot-Zmumu.root"
    h5 = build_atlas_fixture(base / "multifold.h5", zmumu=zmumu)
    ingest(archive, [h5], name="zmumu", version="1.0.0", metadata=ATLAS_FIXTURE_METADATA, row_group_rows=500)
    alt = build_atlas_fixture(base / "multifold_alt.h5", zmumu=zmumu, seed=7)
    ingest(archive, [alt], name="zmumu_alt", version="1.0.0", metadata=ATLAS_FIXTURE_METADATA, row_group_rows=700)
    return archive
