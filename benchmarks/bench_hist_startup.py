"""``hep-archive hist`` process wall time against the bare import of ``archive.reinterpret``, same run.

Every figure is the wall time of a fresh Python process (what a user waits for), medians over round-robin
rounds so that a busy neighbour slows every variant alike. On a stored dataset of ``--events`` (default
100,000) events with one observable, a nominal weight and ``--replicas`` (default 100) replica weights
(``std_replicas``), ingested into a fresh archive in a temporary directory:

* ``import``: ``python -c "import archive.reinterpret"`` (the baseline);
* ``import_read``: the same plus opening the dataset and reading the observable and every weight column (what
  the request cannot avoid);
* ``hist``: ``hep-archive --json hist DATASET --observable x --bins 0:1:50`` as users run it (at this size the
  numpy path is chosen: loading numba would cost more than the whole fill);
* ``hist_numba_cached``: the same with the numba kernels forced (``HEP_ARCHIVE_NUMBA_MIN_WORK=0``) in a second
  process, the on-disk kernel cache (``NUMBA_CACHE_DIR``) filled by an earlier process: nothing is compiled;
* ``hist_numba_fresh_cache``: the same with an empty kernel cache (the JIT tax every call paid before the kernels
  moved to module level), measured once;
* ``hist_jagged``: ``--observable 'ptlead = max(Muon_pt)'`` on a jagged dataset of the same size (awkward
  evaluation), numpy path.

Bytecode is cached under a temporary ``PYTHONPYCACHEPREFIX`` (as in any installed environment; without it every
process recompiles the sources of numba's extensions). Writes ``benchmarks/results/bench_hist_startup.json``.
Usage: ``python benchmarks/bench_hist_startup.py [--events N] [--replicas R] [--rounds K]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bench_hist_startup.json"
REPO = Path(__file__).resolve().parents[1]


def _make_archive(base: Path, n: int, k: int) -> Path:
    import awkward as ak
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive._archive import init_archive
    from archive.datasets import ingest

    rng = np.random.default_rng(3)
    cols: dict[str, Any] = {"x": rng.normal(0.5, 0.25, n).astype(np.float32)}
    base_w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    cols["w_0"] = base_w
    for i in range(1, k + 1):
        cols[f"w_{i}"] = base_w * rng.uniform(0.9, 1.1, n).astype(np.float32)
    fam = {"normalisation": {"kind": "absolute", "unit": "fb"}, "includes_mc_weight": True}
    meta = {"weights": [
        {**fam, "name": "nominal", "type": "nominal", "columns": ["w_0"], "combination": {"rule": "sum_w2"}},
        {**fam, "name": "replicas", "type": "bootstrap_data", "pattern": "w_{i}", "index_range": [1, k + 1],
         "combination": {"rule": "std_replicas"}},
    ]}
    archive = init_archive(base / "arc")
    src = base / "flat.parquet"
    pq.write_table(pa.table(cols), src, use_dictionary=False, compression="none")
    ingest(archive, [src], name="flat", version="1.0.0", metadata=meta)
    counts = rng.poisson(2.4, n)
    pt = ak.unflatten(rng.exponential(25.0, int(counts.sum())).astype(np.float32), counts)
    jag = pa.table({"Muon_pt": ak.to_arrow(ak.sort(pt, ascending=False), extensionarray=False),
                    "w_0": pa.array(base_w)})
    src = base / "jagged.parquet"
    pq.write_table(jag, src, use_dictionary=False, compression="none")
    jmeta = {"weights": [meta["weights"][0]]}
    ingest(archive, [src], name="jagged", version="1.0.0", metadata=jmeta)
    return base / "arc"


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-hist-startup-") as tmp:
        base = Path(tmp)
        root = _make_archive(base, args.events, args.replicas)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "HEP_ARCHIVE_NO_NUMBA",
                                                                "HEP_ARCHIVE_NUMBA_MIN_WORK")}
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        env["NUMBA_CACHE_DIR"] = str(base / "numba-cache")
        cli = [py, "-c", "import sys; from archive.cli import main; sys.exit(main())"]
        weights = ", ".join(repr(f"w_{i}") for i in range(args.replicas + 1))
        read = (f"import archive.reinterpret; from archive import open_archive; from archive.datasets import "
                f"open_dataset; ds = open_dataset(open_archive({str(root)!r}), 'flat'); "
                f"ds.read(['x', {weights}])")
        hist = [*cli, "--root", str(root), "--json", "hist", "flat", "--observable", "x",
                "--bins", "0:1:50"]
        jagged = [*cli, "--root", str(root), "--json", "hist", "jagged", "--observable",
                  "ptlead = max(Muon_pt)", "--bins", "0:200:50"]
        numba_env = {**env, "HEP_ARCHIVE_NUMBA_MIN_WORK": "0"}
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "import": ([py, "-c", "import archive.reinterpret"], env),
            "import_read": ([py, "-c", read], env),
            "hist": (hist, env),
            "hist_numba_cached": (hist, numba_env),
            "hist_jagged": (jagged, env),
        }
        for cmd, e in variants.values():  # warm-up: bytecode, page cache, and the kernel cache
            _wall(cmd, e)
        fresh_env = {**numba_env, "NUMBA_CACHE_DIR": str(base / "numba-cache-fresh")}
        fresh = _wall(hist, fresh_env)
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name, (cmd, e) in variants.items():
                times[name].append(_wall(cmd, e))
    med = {k: statistics.median(v) for k, v in times.items()}
    med["hist_numba_fresh_cache"] = fresh
    ratios = {
        "hist / import": med["hist"] / med["import"],
        "hist / import_read": med["hist"] / med["import_read"],
        "hist_numba_cached / import_read": med["hist_numba_cached"] / med["import_read"],
        "hist_numba_fresh_cache / hist_numba_cached": fresh / med["hist_numba_cached"],
        "hist_jagged / import": med["hist_jagged"] / med["import"],
    }
    out = {"benchmark": "bench_hist_startup", "events": args.events, "replicas": args.replicas,
           "rounds": args.rounds, "median_s": med, "all_s": times, "ratios": ratios,
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "load_average": os.getloadavg()}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    for k, v in med.items():
        print(f"{k:28s} {v:7.3f} s")
    for k, v in ratios.items():
        print(f"{k:44s} {v:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
