"""Storage-format benchmark: the candidates for the canonical event/weight tables, same data, same run.

Data shaped like an OmniFold release (as in ``performance-baselines.md``): 24 float32 observables, a nominal
weight, 100 replica weights = nominal x (1 + 0.05 N(0,1)) and 20 systematics, 145 float32 columns. For each
format: size / raw, write GB/s (including fsync), full read GB/s and the 102-column projection read (one
observable + nominal + 100 replicas) GB/s, from the page cache. The baseline is raw ``.npy`` per column, and every
figure is also given as a ratio to it. Integrity: whether the format carries a checksum verified on read.

Writes ``benchmarks/results/bench_formats.json``. Usage: ``python benchmarks/bench_formats.py [--events N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bench_formats.json"


def make_data(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    cols: dict[str, np.ndarray] = {}
    for i in range(24):
        cols[f"obs_{i}"] = (rng.exponential(50, n) if i % 3 == 0 else rng.normal(0, 1.5, n)).astype(np.float32)
    nominal = rng.uniform(0.8, 1.2, n).astype(np.float32)
    cols["weights_nominal"] = nominal
    for i in range(100):
        cols[f"weights_ensemble_{i}"] = nominal * (1 + 0.05 * rng.standard_normal(n, dtype=np.float32))
    for i in range(20):
        cols[f"weights_syst_{i}"] = nominal * (1 + 0.05 * rng.standard_normal(n, dtype=np.float32))
    return cols


def fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- writers and readers -------------------------------------------------------------------------------------
def w_npy(d: Path, cols: dict[str, np.ndarray]) -> Path:
    d.mkdir()
    for k, v in cols.items():
        np.save(d / f"{k}.npy", v)
    return d


def r_npy(d: Path, names: list[str]) -> int:
    return sum(np.load(d / f"{k}.npy").nbytes for k in names)


def w_parquet(opts: dict[str, Any]) -> Callable[[Path, dict[str, np.ndarray]], Path]:
    def w(p: Path, cols: dict[str, np.ndarray]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        t = pa.table(cols)
        o = dict(opts)
        if o.pop("bss", False):
            o["column_encoding"] = dict.fromkeys(cols, "BYTE_STREAM_SPLIT")
        pq.write_table(t, p, row_group_size=131072, **o)
        return p
    return w


def r_parquet(p: Path, names: list[str]) -> int:
    import pyarrow.parquet as pq

    t = pq.ParquetFile(p, page_checksum_verification=True).read(columns=names)
    return sum(np.asarray(c.to_numpy()).nbytes for c in t.columns)


def w_ipc(compression: str | None) -> Callable[[Path, dict[str, np.ndarray]], Path]:
    def w(p: Path, cols: dict[str, np.ndarray]) -> Path:
        import pyarrow as pa

        t = pa.table(cols)
        with pa.ipc.new_file(p, t.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as f:
            f.write_table(t, max_chunksize=131072)
        return p
    return w


def r_ipc(p: Path, names: list[str]) -> int:
    import pyarrow as pa

    with pa.OSFile(str(p)) as f:
        t = pa.ipc.open_file(f).read_all().select(names)
        return sum(np.asarray(c.to_numpy()).nbytes for c in t.columns)


def w_zarr(p: Path, cols: dict[str, np.ndarray]) -> Path:
    import zarr
    from zarr.codecs import Crc32cCodec, ZstdCodec

    g = zarr.open_group(zarr.storage.LocalStore(p), mode="w")
    for k, v in cols.items():
        a = g.create_array(k, shape=v.shape, chunks=(131072,), dtype=v.dtype,
                           compressors=[ZstdCodec(level=1), Crc32cCodec()])
        a[:] = v
    return p


def r_zarr(p: Path, names: list[str]) -> int:
    import zarr

    g = zarr.open_group(zarr.storage.LocalStore(p, read_only=True), mode="r")
    total = 0
    for k in names:
        arr: Any = g[k]
        total += np.asarray(arr[...]).nbytes
    return total


def w_h5(p: Path, cols: dict[str, np.ndarray]) -> Path:
    import h5py

    with h5py.File(p, "w") as f:
        for k, v in cols.items():
            f.create_dataset(k, data=v)
    return p


def r_h5(p: Path, names: list[str]) -> int:
    import h5py

    with h5py.File(p, "r") as f:
        return sum(f[k][()].nbytes for k in names)


CANDIDATES: dict[str, tuple[Callable[..., Path], Callable[[Path, list[str]], int], str, bool]] = {
    "npy (baseline)": (w_npy, r_npy, "dir", False),
    "parquet zstd-1 + BYTE_STREAM_SPLIT, no dict, page CRC (canonical)": (
        w_parquet({"compression": "zstd", "compression_level": 1, "use_dictionary": False, "bss": True,
                   "write_page_checksum": True, "write_statistics": False}), r_parquet, "file", True),
    "parquet zstd-1, no dict, page CRC": (
        w_parquet({"compression": "zstd", "compression_level": 1, "use_dictionary": False,
                   "write_page_checksum": True}), r_parquet, "file", True),
    "parquet uncompressed, no dict, page CRC": (
        w_parquet({"compression": "none", "use_dictionary": False, "write_page_checksum": True}),
        r_parquet, "file", True),
    "parquet pyarrow defaults (snappy, dictionary)": (w_parquet({}), r_parquet, "file", False),
    "arrow ipc uncompressed": (w_ipc(None), r_ipc, "file", False),
    "arrow ipc lz4": (w_ipc("lz4"), r_ipc, "file", False),
    "zarr v3 zstd-1 + crc32c": (w_zarr, r_zarr, "dir", True),
    "hdf5 contiguous": (w_h5, r_h5, "file", False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cols = make_data(args.events)
    raw = sum(v.nbytes for v in cols.values())
    all_names = list(cols)
    proj = ["obs_0", "weights_nominal", *[f"weights_ensemble_{i}" for i in range(100)]]
    proj_bytes = sum(cols[k].nbytes for k in proj)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as d:
        for i, (name, (writer, reader, _kind, checksum)) in enumerate(CANDIDATES.items()):
            writes, reads, preads = [], [], []
            for r in range(args.repeats):
                p = Path(d) / f"c{i}-{r}"
                t0 = time.perf_counter()
                writer(p, cols)
                fsync_tree(p)
                writes.append(time.perf_counter() - t0)
                size = size_of(p)
                reader(p, all_names)  # warm the page cache
                t0 = time.perf_counter()
                assert reader(p, all_names) == raw
                reads.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert reader(p, proj) == proj_bytes
                preads.append(time.perf_counter() - t0)
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            rows[name] = {"size_over_raw": size / raw, "write_gb_s": raw / statistics.median(writes) / 1e9,
                          "read_gb_s": raw / statistics.median(reads) / 1e9,
                          "projection_gb_s": proj_bytes / statistics.median(preads) / 1e9,
                          "checksum_verified_on_read": checksum}
            print(f"{name:>66}: size {rows[name]['size_over_raw']:.2f}  write {rows[name]['write_gb_s']:.2f}  "
                  f"read {rows[name]['read_gb_s']:.2f}  proj {rows[name]['projection_gb_s']:.2f} GB/s", flush=True)
    base = rows["npy (baseline)"]
    for row in rows.values():
        row["ratio_to_npy"] = {k: row[k] / base[k] for k in ("write_gb_s", "read_gb_s", "projection_gb_s")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "bench_formats", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "events": args.events, "columns": len(cols), "raw_bytes": raw, "repeats": args.repeats, "formats": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
