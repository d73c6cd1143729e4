"""The reading API: projection, row-group streaming, row ranges, partitions, arrow/awkward, integrity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive.datasets import ingest, open_dataset
from archive.errors import IntegrityError, NotFoundError


@pytest.fixture
def ds(tmp_archive: Any, tmp_path: Path) -> Any:
    n = 10_000
    rng = np.random.default_rng(7)
    cols = {"x": rng.normal(size=n).astype(np.float32), "n": np.arange(n, dtype=np.int32),
            "weight": rng.uniform(0.5, 1.5, n), **{f"w_{i}": rng.uniform(size=n) for i in range(3)}}
    p = tmp_path / "in.parquet"
    pq.write_table(pa.table(cols), p, row_group_size=3000)
    meta = {"weights": [
        {"name": "nominal", "type": "nominal", "columns": ["weight"], "combination": {"rule": "sum_w2"},
         "normalisation": {"kind": "shape"}, "includes_mc_weight": True},
        {"name": "replicas", "type": "bootstrap_data", "pattern": "w_{i}", "index_range": [0, 3],
         "combination": {"rule": "std_replicas", "ddof": 1}, "normalisation": {"kind": "shape"},
         "includes_mc_weight": True}]}
    ingest(tmp_archive, [p], name="toy", version="1.0.0", metadata=meta, row_group_rows=4096)
    d = open_dataset(tmp_archive, "toy")
    d.expected = cols  # type: ignore[attr-defined]
    return d


def test_projection_and_columns(ds: Any) -> None:
    assert ds.columns == ["x", "n", "weight", "w_0", "w_1", "w_2"]
    assert [f.name for f in ds.weight_families] == ["nominal", "replicas"]
    assert ds.weight_families[1].resolved_columns() == ["w_0", "w_1", "w_2"]
    got = ds.read(["w_1", "x"])
    assert list(got) == ["w_1", "x"]
    assert np.array_equal(got["x"], ds.expected["x"]) and got["x"].dtype == np.float32
    with pytest.raises(NotFoundError, match="no column 'nope'"):
        ds.read(["nope"])


def test_partitions_and_batches_are_row_aligned(ds: Any) -> None:
    assert ds.partitions() == [(0, 4096), (4096, 8192), (8192, 10000)]
    seen = 0
    for batch in ds.iter_batches(["n", "weight", "w_2"]):
        k = len(batch["n"])
        assert len(batch["weight"]) == len(batch["w_2"]) == k
        assert np.array_equal(batch["n"], np.arange(seen, seen + k))
        assert np.array_equal(batch["w_2"], ds.expected["w_2"][seen:seen + k])
        seen += k
    assert seen == 10_000
    sizes = [len(b["n"]) for b in ds.iter_batches(["n"], batch_rows=3333)]
    assert sizes == [3333, 3333, 3333, 1]


def test_read_rows_across_row_groups(ds: Any) -> None:
    for a, b in [(0, 1), (4000, 4200), (4095, 4097), (8191, 10000), (9999, 10000), (5, 5)]:
        got = ds.read_rows(["n", "w_0"], a, b)
        assert np.array_equal(got["n"], np.arange(a, b))
        assert np.array_equal(got["w_0"], ds.expected["w_0"][a:b])


def test_arrow_and_awkward(ds: Any) -> None:
    t = ds.to_arrow(["x", "weight"])
    assert t.num_rows == 10_000 and t.schema.field("x").type == pa.float32()
    aw = ds.to_awkward(["n"])
    assert int(aw["n"][1234]) == 1234


def test_archive_dataset_method(tmp_archive: Any, ds: Any) -> None:
    d = tmp_archive.dataset("toy", version="1.0.0")
    assert d.num_rows == 10_000 and d.version == "1.0.0"


def test_corrupted_table_is_detected(tmp_archive: Any, ds: Any) -> None:
    entry = next(f for f in ds.record.files if f.path == "weights.parquet")
    path = tmp_archive.object_path(entry.sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # flip one byte in the middle of the data pages
    path.write_bytes(bytes(data))
    fresh = open_dataset(tmp_archive, "toy")
    with pytest.raises(IntegrityError):
        fresh.read(["weight", "w_0", "w_1", "w_2"])
        problems = fresh.verify()
        assert problems
        raise IntegrityError("verify reported: " + "; ".join(problems))


def test_truncated_table_is_detected(tmp_archive: Any, ds: Any) -> None:
    entry = next(f for f in ds.record.files if f.path == "events.parquet")
    path = tmp_archive.object_path(entry.sha256)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IntegrityError, match="bytes"):
        open_dataset(tmp_archive, "toy").read(["x"])


def test_parallel_readers_over_partitions(ds: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    parts = ds.partitions() * 3
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda ab: ds.read_rows(["n", "w_1"], *ab), parts))
    for (a, b), g in zip(parts, got, strict=True):
        assert np.array_equal(g["n"], np.arange(a, b))
        assert np.array_equal(g["w_1"], ds.expected["w_1"][a:b])
