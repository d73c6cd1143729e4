"""Ingest benchmark: a 2,000,000-event x 200-column ATLAS-layout file, ingest vs plain pyarrow writes, same run.

* generates the file in the benchmark (pandas fixed layout under ``df``, written by the project's h5py writer in
  row batches): 24 observables (22 float32, 2 int32 ``Ntracks``), ``weight_mc``, ``weights_nominal``, 100
  ensemble, 25 + 25 bootstrap, 22 named systematics, ``weights_dd``/``target_dd`` and filler weights up to 200
  columns, all float32; weights = nominal x (1 + 0.05 N(0,1)) as in the performance baselines;
* runs, each in a fresh child process (so peak RSS is its own): ``ingest`` (the real ``archive.datasets.ingest``:
  stream, split event/weight tables, NaN checks, column digests, canonical Parquet, sha256, store, record),
  ``pyarrow-canonical`` (the same reader and the same Parquet options, nothing else) and ``pyarrow-default``
  (the same reader, ``pq.ParquetWriter`` with pyarrow's default options: the "plain pyarrow write");
* reports seconds, GB/s of input column bytes, peak RSS (``VmHWM``) against the file size, and the ratios
  ingest / baseline.

Writes ``benchmarks/results/bench_ingest.json``. Usage: ``python benchmarks/bench_ingest.py [--events N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bench_ingest.json"
BATCH = 131072
OBS = ["pT_l1", "pT_l2", "eta_l1", "eta_l2", "phi_l1", "phi_l2", "pT_ll", "y_ll",
       *[f"{v}_trackj{j}" for j in (1, 2) for v in ("pT", "y", "phi", "m", "tau1", "tau2", "tau3")]]
SYST = ["weights_pileup", "weights_muEffReco", "weights_muEffIso", "weights_muEffTrack", "weights_muEffTrig",
        "weights_muCalID", "weights_muCalMS", "weights_muCalResBias", "weights_muCalScale", "weights_trackEffMain",
        "weights_trackEffJet", "weights_trackFake", "weights_trackPtScale", "weights_theoryPSjet",
        "weights_theoryPSsoft", "weights_theoryMPI", "weights_theoryPSscale", "weights_theoryAlphaS",
        "weights_theoryQCD", "weights_theoryPDF", "weights_topBackground", "weights_lumi"]


def column_names(n_columns: int) -> list[str]:
    names = [*OBS, "Ntracks_trackj1", "Ntracks_trackj2", "weight_mc", "weights_nominal",
             *[f"weights_ensemble_{i}" for i in range(100)], *[f"weights_bootstrap_mc_{i}" for i in range(25)],
             *[f"weights_bootstrap_data_{i}" for i in range(25)], *SYST, "weights_dd", "target_dd"]
    names += [f"weights_extra_{i}" for i in range(max(0, n_columns - len(names)))]
    return names[:n_columns]


def generate(path: Path, events: int, n_columns: int) -> Path:
    from archive.formats._base import ColumnInfo
    from archive.formats.atlas_hdf5 import write_atlas_hdf5

    names = column_names(n_columns)
    infos = [ColumnInfo(n, "int32" if n.startswith("Ntracks") else "float32") for n in names]
    rng = np.random.default_rng(42)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, events, BATCH):
            n = min(BATCH, events - start)
            out: dict[str, np.ndarray] = {}
            nominal = (1809.0 / events * rng.uniform(0.8, 1.2, n)).astype(np.float32)
            for c in infos:
                if c.dtype == "int32":
                    out[c.name] = rng.poisson(8, n).astype(np.int32)
                elif c.name.startswith("pT"):
                    out[c.name] = (25 + rng.exponential(50, n)).astype(np.float32)
                elif c.name in OBS:
                    out[c.name] = rng.normal(0, 1.5, n).astype(np.float32)
                elif c.name == "weights_nominal":
                    out[c.name] = nominal
                else:
                    out[c.name] = nominal * (1 + 0.05 * rng.standard_normal(n, dtype=np.float32))
            yield out

    return write_atlas_hdf5(path, infos, batches(), events)


# --- child processes ---------------------------------------------------------------------------------------
def peak_rss() -> int:
    """This process's peak resident set: VmHWM (Linux; not inherited across exec), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(mode: str, h5: Path, work: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive.formats.arrow import parquet_options, to_record_batch
    from archive.formats.atlas_hdf5 import AtlasHDF5Source

    rss_start = peak_rss()
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if mode == "ingest":
        from archive._archive import init_archive
        from archive.datasets import ingest

        arc = init_archive(work / "arc")
        rec = ingest(arc, [h5], name="bench", version="1.0.0")
        extra = {"stored_bytes": sum(f.size for f in rec.files), "tables": [t.name for t in rec.dataset.tables],
                 "families": len(rec.dataset.weights)}
    else:
        with AtlasHDF5Source.open(h5) as src:
            opts = parquet_options(src.columns) if mode == "pyarrow-canonical" else {}
            schema = None
            out = work / f"{mode}.parquet"
            writer = None
            for batch in src.iter_batches(BATCH):
                rb = to_record_batch(src.columns, batch)
                if writer is None:
                    schema = rb.schema
                    writer = pq.ParquetWriter(out, schema, **opts)
                writer.write_table(pa.Table.from_batches([rb]), row_group_size=BATCH)
            assert writer is not None
            writer.close()
            extra = {"stored_bytes": out.stat().st_size}
    seconds = time.perf_counter() - t0
    return {"mode": mode, "seconds": seconds, "peak_rss": peak_rss(),
            "rss_after_imports": rss_start, "arrow_pool_peak": pa.default_memory_pool().max_memory(), **extra}


def run_child(mode: str, h5: Path, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(h5), str(work)], check=True,
                         capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--columns", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="200,000 events (a smoke run)")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "H5", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    events = 200_000 if args.quick else args.events
    base = Path(os.environ.get("BENCH_TMP", tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(dir=base, prefix="bench-ingest-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        h5 = generate(tmp / "multifold.h5", events, args.columns)
        gen_s = time.perf_counter() - t0
        file_bytes = h5.stat().st_size
        raw_bytes = events * args.columns * 4
        runs = {}
        for mode in ("pyarrow-canonical", "ingest", "pyarrow-default"):
            r = run_child(mode, h5, tmp / mode)
            r["gb_per_s"] = raw_bytes / r["seconds"] / 1e9
            r["peak_rss_over_file"] = r["peak_rss"] / file_bytes
            runs[mode] = r
            print(f"{mode:>18}: {r['seconds']:7.2f} s  {r['gb_per_s']:.3f} GB/s  peak RSS "
                  f"{r['peak_rss'] / 1e6:7.0f} MB ({r['peak_rss_over_file']:.3f} x file)  "
                  f"stored {r['stored_bytes'] / 1e6:.0f} MB", flush=True)
    ing = runs["ingest"]
    result = {
        "benchmark": "bench_ingest", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "events": events, "columns": args.columns, "file_bytes": file_bytes, "raw_column_bytes": raw_bytes,
        "generate_seconds": gen_s, "runs": runs,
        "ratios": {
            "ingest_vs_pyarrow_default_speed": ing["gb_per_s"] / runs["pyarrow-default"]["gb_per_s"],
            "ingest_vs_pyarrow_canonical_speed": ing["gb_per_s"] / runs["pyarrow-canonical"]["gb_per_s"],
            "ingest_peak_rss_over_file_size": ing["peak_rss_over_file"],
            "stored_over_file_size": ing["stored_bytes"] / file_bytes,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"], indent=2))


if __name__ == "__main__":
    main()
