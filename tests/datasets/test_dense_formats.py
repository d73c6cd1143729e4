"""Dense arrays to Zarr v3 with crc32c (read chunk by chunk); Arrow IPC, plain HDF5, npy inputs; CSV export."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from archive.datasets import export_dataset, ingest, open_dataset
from archive.errors import IntegrityError


@pytest.fixture
def calo(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A CaloGAN-shaped file: three calorimeter layers per event, incident energy, a padded point cloud."""
    n = 1500
    rng = np.random.default_rng(3)
    data = {"energy": rng.uniform(1, 100, n).astype(np.float32),
            "layer_0": rng.exponential(1.0, (n, 3, 96)).astype(np.float32),
            "layer_1": rng.exponential(1.0, (n, 12, 12)).astype(np.float32),
            "layer_2": rng.exponential(1.0, (n, 12, 6)).astype(np.float32),
            "cloud": rng.normal(size=(n, 30, 4)).astype(np.float32)}
    p = tmp_path / "calo.h5"
    with h5py.File(p, "w") as f:
        for k, v in data.items():
            f.create_dataset(k, data=v)
        f.create_dataset("scalar_attr", data=1.0)
    return p, data


def test_dense_arrays_to_zarr_crc32c(tmp_archive: Any, calo: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, data = calo
    rec = ingest(tmp_archive, [path], name="calo", version="1.0.0", row_group_rows=512)
    arrays = rec.dataset.table("arrays")
    assert arrays.format == "zarr-zip" and set(arrays.columns) == {"layer_0", "layer_1", "layer_2", "cloud"}
    assert rec.dataset.variable("layer_0").shape == [3, 96]
    assert rec.dataset.table("events").columns == ["energy"]
    entry = next(f for f in rec.files if f.path == arrays.path)
    stored = tmp_archive.object_path(entry.sha256)
    with zipfile.ZipFile(stored) as z:
        meta = json.loads(z.read("c0/zarr.json"))
        names = z.namelist()
    codecs = [c["name"] for c in meta["codecs"]]
    assert codecs[-1] == "crc32c" and "zstd" in codecs
    assert meta["chunk_grid"]["configuration"]["chunk_shape"][0] <= 512  # chunked along events
    assert sum(n.startswith("c0/c/") for n in names) >= 3
    ds = open_dataset(tmp_archive, "calo")
    start = 0
    for batch in ds.iter_batches(["energy", "layer_0", "cloud"]):
        k = len(batch["energy"])
        assert batch["layer_0"].shape == (k, 3, 96) and batch["cloud"].shape == (k, 30, 4)
        assert np.array_equal(batch["layer_0"], data["layer_0"][start:start + k])
        assert np.array_equal(batch["energy"], data["energy"][start:start + k])
        start += k
    assert start == 1500
    assert np.array_equal(ds.read(["layer_2"])["layer_2"], data["layer_2"])
    assert ds.verify() == []
    t = ds.to_arrow(["layer_1"])
    assert pa.types.is_fixed_size_list(t.schema.field("layer_1").type)
    out = export_dataset(tmp_archive, "calo", "parquet", tmp_archive.root / "calo.parquet")
    back = pq.read_table(out).column("layer_1").combine_chunks().flatten().flatten().to_numpy()
    assert np.array_equal(back.reshape(1500, 12, 12), data["layer_1"])


def test_corrupted_zarr_chunk_is_detected(tmp_archive: Any, calo: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = calo
    rec = ingest(tmp_archive, [path], name="calo", version="1.0.0", row_group_rows=512)
    entry = next(f for f in rec.files if f.path == "arrays.zarr.zip")
    stored = tmp_archive.object_path(entry.sha256)
    stored.chmod(0o644)
    pristine = stored.read_bytes()
    chunk = f"c{rec.dataset.table('arrays').columns.index('layer_0')}/c/0/0/0"
    # 1. a flipped byte: the zip entry's own CRC-32 fails
    with zipfile.ZipFile(stored) as z:
        info = z.getinfo(chunk)
    raw = bytearray(pristine)
    raw[info.header_offset + 30 + len(info.filename) + 40] ^= 0x55
    stored.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        open_dataset(tmp_archive, "calo").read_rows(["layer_0"], 0, 10)
    # 2. the chunk rewritten with a valid zip CRC but a damaged payload: zarr's crc32c codec fails
    stored.write_bytes(pristine)
    with zipfile.ZipFile(stored) as z:
        members = {n: z.read(n) for n in z.namelist()}
    damaged = bytearray(members[chunk])
    damaged[40] ^= 0x55
    members[chunk] = bytes(damaged)
    with zipfile.ZipFile(stored, "w", compression=zipfile.ZIP_STORED) as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(IntegrityError, match=r"(?i)checksum|crc"):
        open_dataset(tmp_archive, "calo").read_rows(["layer_0"], 0, 10)
    assert open_dataset(tmp_archive, "calo").read_rows(["layer_0"], 600, 610)["layer_0"].shape == (10, 3, 96)


def test_npy_and_arrow_ipc_inputs(tmp_archive: Any, tmp_path: Path) -> None:
    imgs = np.random.default_rng(1).normal(size=(200, 5, 5)).astype(np.float32)
    np.save(tmp_path / "images.npy", imgs)
    rec = ingest(tmp_archive, [tmp_path / "images.npy"], name="imgs", version="1.0.0")
    assert rec.dataset.variable("images").shape == [5, 5]
    assert np.array_equal(open_dataset(tmp_archive, "imgs").read(["images"])["images"], imgs)
    t = pa.table({"a": np.arange(50, dtype=np.int64), "b": pa.array([[1.0, 2.0]] * 25 + [[]] * 25)})
    with pa.ipc.new_file(tmp_path / "t.arrow", t.schema) as w:
        w.write_table(t)
    rec = ingest(tmp_archive, [tmp_path / "t.arrow"], name="ipc", version="1.0.0")
    assert rec.dataset.variable("b").dtype == "var * float64"
    got = open_dataset(tmp_archive, "ipc").read(["a", "b"])
    assert got["a"].tolist() == list(range(50)) and got["b"].tolist()[0] == [1.0, 2.0]


def test_object_npy_is_refused(tmp_archive: Any, tmp_path: Path) -> None:
    from archive.errors import UnsafeInputError

    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeInputError):
        ingest(tmp_archive, [tmp_path / "obj.npy"], name="o", version="1.0.0")


def test_concatenated_files_and_csv_export(tmp_archive: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    parts = [{"x": rng.normal(size=100).astype(np.float32), "y": rng.normal(size=100),
              "k": rng.integers(0, 9, 100).astype(np.int32)} for _ in range(3)]
    paths = []
    for i, p in enumerate(parts):
        pq.write_table(pa.table(p), tmp_path / f"p{i}.parquet")
        paths.append(tmp_path / f"p{i}.parquet")
    ingest(tmp_archive, paths, name="cat", version="1.0.0", row_group_rows=64)
    ds = open_dataset(tmp_archive, "cat")
    assert ds.num_rows == 300
    x = np.concatenate([p["x"] for p in parts])
    assert np.array_equal(ds.read(["x"])["x"], x)
    out = export_dataset(tmp_archive, "cat", "csv", tmp_path / "cat.csv")
    back = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(
        column_types={"x": pa.float32(), "y": pa.float64(), "k": pa.int32()}))
    assert np.array_equal(back.column("x").to_numpy(), x)  # shortest-repr floats read back bit-identical
    assert np.array_equal(back.column("y").to_numpy(), np.concatenate([p["y"] for p in parts]))
    pqout = export_dataset(tmp_archive, "cat", "parquet", tmp_path / "cat.parquet", columns=["k"])
    assert pq.read_table(pqout).column_names == ["k"]


def test_plain_hdf5_row_mismatch(tmp_archive: Any, tmp_path: Path) -> None:
    from archive.errors import ValidationError

    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["a"] = np.arange(10.0)
        f["b"] = np.arange(11.0)
    with pytest.raises(ValidationError, match="row-count mismatch"):
        ingest(tmp_archive, [p], name="bad", version="1.0.0")
