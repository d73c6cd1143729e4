"""Ten observables in one pass against ten separate ``histogram()`` calls, same data, same run.

On ``--events`` (default 400,000) events with ten float32 observables, a nominal weight and ``--weights - 1``
bootstrap replicas (default 200 weight columns in all), in one process:

* ``stored``: ingested into a fresh archive (canonical Parquet, warm page cache): ``histograms(ds, ten specs)``
  (every weight column read and decoded once, all ten histograms filled from it) against ten
  ``histogram(ds, spec)`` calls (each reads every weight column again);
* ``memory``: the same on an in-memory adapter (no reading: what is left is the fill itself);
* ``2d``: one 2-D histogram (10 x 10 bins) against a 1-D one of the same data, for scale.

Medians of ``--repeats`` round-robin rounds; the numba kernels are warmed up (and cached) first. Writes
``benchmarks/results/bench_hist_multi.json``. Usage: ``python benchmarks/bench_hist_multi.py [--events N]
[--weights K] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bench_hist_multi.json"
N_OBS = 10


def _data(n: int, k: int) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    rng = np.random.default_rng(4)
    cols: dict[str, np.ndarray] = {f"x{j}": rng.normal(0.5, 0.25, n).astype(np.float32) for j in range(N_OBS)}
    base = rng.uniform(0.5, 1.5, n).astype(np.float32)
    cols["w_0"] = base
    for i in range(1, k):
        cols[f"w_{i}"] = base * rng.uniform(0.9, 1.1, n).astype(np.float32)
    fam = {"normalisation": {"kind": "absolute", "unit": "fb"}, "includes_mc_weight": True}
    families = [
        {**fam, "name": "nominal", "type": "nominal", "columns": ["w_0"], "combination": {"rule": "sum_w2"}},
        {**fam, "name": "replicas", "type": "bootstrap_data", "pattern": "w_{i}", "index_range": [1, k],
         "combination": {"rule": "std_replicas"}},
    ]
    return cols, families


def _rounds(variants: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--weights", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive._archive import init_archive
    from archive.datasets import ingest, open_dataset
    from archive.reinterpret import as_dataset, histogram, histograms

    n, k = args.events, args.weights
    cols, families = _data(n, k)
    specs = [(f"x{j}", "0:1:50") for j in range(N_OBS)]
    weight_bytes = float(sum(v.nbytes for c, v in cols.items() if c.startswith("w_")))
    out: dict[str, Any] = {"benchmark": "bench_hist_multi", "events": n, "weight_columns": k, "observables": N_OBS,
                           "weight_bytes": weight_bytes}
    mem = as_dataset(cols, families, name="bench")
    with tempfile.TemporaryDirectory(prefix="bench-hist-multi-") as tmp:
        src = Path(tmp) / "events.parquet"
        pq.write_table(pa.table(cols), src, use_dictionary=False, compression="none")
        archive = init_archive(Path(tmp) / "arc")
        t0 = time.perf_counter()
        ingest(archive, [src], name="bench", version="1.0.0", metadata={"weights": families})
        out["ingest_s"] = time.perf_counter() - t0
        ds = open_dataset(archive, "bench")
        histograms(ds, specs[:2])  # warm: page cache, numba cache
        histogram(mem, ["x0", "x1"], ["0:1:10", "0:1:10"])
        one = histograms(ds, specs)
        sep = [histogram(ds, *s) for s in specs]
        out["identical"] = all(np.array_equal(a.cell_covariance, b.cell_covariance) for a, b in zip(one, sep,
                                                                                                    strict=True))
        med = _rounds({
            "stored_one_pass": lambda: histograms(ds, specs),
            "stored_ten_calls": lambda: [histogram(ds, *s) for s in specs],
            "memory_one_pass": lambda: histograms(mem, specs),
            "memory_ten_calls": lambda: [histogram(mem, *s) for s in specs],
            "memory_1d": lambda: histogram(mem, "x0", "0:1:100"),
            "memory_2d": lambda: histogram(mem, ["x0", "x1"], ["0:1:10", "0:1:10"]),
        }, args.repeats)
    out["median_s"] = med
    out["ratios"] = {
        "stored one pass / ten calls": med["stored_one_pass"] / med["stored_ten_calls"],
        "memory one pass / ten calls": med["memory_one_pass"] / med["memory_ten_calls"],
        "memory 2-D (100 bins) / 1-D (100 bins)": med["memory_2d"] / med["memory_1d"],
    }
    out["weight_GBps"] = {k2: weight_bytes / v / 1e9 for k2, v in med.items() if "ten" not in k2}
    out["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    for k2, v in med.items():
        print(f"{k2:20s} {v:8.3f} s")
    for k2, v in out["ratios"].items():
        print(f"{k2:42s} {v:6.3f}")
    print("identical:", out["identical"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
