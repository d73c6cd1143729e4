"""The same request on a real dask.distributed LocalCluster gives bit-identical results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from reinterp_data import atlas_like

from archive.errors import ValidationError
from archive.reinterpret import histogram


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


def test_dask_identical_to_single_process(client: Any) -> None:
    ds = atlas_like(n=7000, partition_rows=900)
    args = ("tau21 = tau2_trackj1 / tau1_trackj1", "0:1:15")
    single = histogram(ds, *args, where="pT_trackj1 > 5", threads=2)
    distributed = histogram(ds, *args, where="pT_trackj1 > 5", scheduler=client)
    assert np.array_equal(single.cell_values, distributed.cell_values)
    assert np.array_equal(single.cell_covariance, distributed.cell_covariance)
    for a, b in zip(single.families, distributed.families, strict=True):
        assert np.array_equal(a.sigma, b.sigma)
    assert single.selected == distributed.selected
    ranges = sorted({(a, b) for _, a, b in ds.reads})
    assert len(ranges) >= 8  # one task per partition (900-row partitions of 7000 rows)


def test_scheduler_local_string(client: Any) -> None:
    ds = atlas_like(n=2000, partition_rows=500)
    a = histogram(ds, "pT_ll", "official", families=["ensemble"])
    b = histogram(ds, "pT_ll", "official", families=["ensemble"], scheduler="local")
    assert np.array_equal(a.covariance, b.covariance)


def test_bad_scheduler_address() -> None:
    with pytest.raises(ValidationError, match="unknown scheduler 'http://x'"):
        histogram(atlas_like(n=100), "pT_ll", "official", scheduler="http://x")
