"""Inference benchmark: onnxruntime vs torch on the same OmniFold network and batch sizes, same run.

* the network: 24 inputs, dense 64-128-64, GELU, one logit (the realistic OmniFold MLP), exported with
  ``archive.models.export_torch``;
* throughput (events/s) of torch (``inference_mode``, ``set_num_threads``) and of an onnxruntime session made by
  ``archive.models.make_session`` (the deterministic settings ``model check`` and ``model apply`` use), for batch
  sizes 1k, 16k, 128k and 1 and 2 threads; the ratio onnxruntime / torch per row;
* the ``model apply`` pipeline (ingested Parquet dataset -> batches -> preprocessing -> onnxruntime -> a new
  dataset version) against the bare session (same 2,048-row calls) on the same events in memory: the ratio is
  the pipeline's overhead (reading, preprocessing, writing the new version, catalog look-ups).

Writes ``benchmarks/results/bench_inference.json``. Usage: ``python benchmarks/bench_inference.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "bench_inference.json"
FEATURES = 24


def rate(fn: Callable[[], Any], events: int, *, repeats: int, min_time: float = 0.3) -> float:
    """Median events/s over ``repeats`` timings, each looping ``fn`` for at least ``min_time`` s."""
    fn()  # warm-up
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        rates.append(n * events / dt)
    return statistics.median(rates)


def build_net() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 64), torch.nn.GELU(), torch.nn.Linear(64, 128), torch.nn.GELU(),
        torch.nn.Linear(128, 64), torch.nn.GELU(), torch.nn.Linear(64, 1)).eval()


def bench_kernels(onnx_path: Path, net: Any, batches: list[int], threads: list[int], repeats: int
                  ) -> list[dict[str, Any]]:
    import torch

    from archive.models import make_session

    rows = []
    rng = np.random.default_rng(1)
    for t in threads:
        torch.set_num_threads(t)
        sess, info = make_session(onnx_path, device="cpu", threads=t)
        for b in batches:
            x = rng.standard_normal((b, FEATURES)).astype(np.float32)
            xt = torch.from_numpy(x)

            def run_torch(xt: Any = xt) -> Any:
                with torch.inference_mode():
                    return net(xt)

            def run_ort(x: Any = x, sess: Any = sess) -> Any:
                return sess.run(["logit"], {"x": x})

            r_torch = rate(run_torch, b, repeats=repeats)
            r_ort = rate(run_ort, b, repeats=repeats)
            diff = float(np.max(np.abs(run_ort()[0] - run_torch().numpy())))
            rows.append({"threads": t, "batch": b, "torch_events_per_s": r_torch, "onnxruntime_events_per_s": r_ort,
                         "ratio_onnxruntime_over_torch": r_ort / r_torch, "max_abs_diff": diff,
                         "providers": info.used})
            print(f"threads {t} batch {b:>7}: torch {r_torch / 1e6:6.2f} M ev/s, onnxruntime {r_ort / 1e6:6.2f} "
                  f"M ev/s, ratio {r_ort / r_torch:4.2f}x, max|diff| {diff:.1e}", flush=True)
    return rows


def bench_apply(workdir: Path, net: Any, rows: int, repeats: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive._archive import init_archive
    from archive.datasets import ingest
    from archive.models import apply_model, export_torch, make_session

    arc = init_archive(workdir / "arc")
    rng = np.random.default_rng(2)
    names = [f"f{i}" for i in range(FEATURES)]
    cols = {n: rng.standard_normal(rows).astype(np.float32) for n in names}
    pq.write_table(pa.table(cols), workdir / "events.parquet", row_group_size=65536)
    ingest(arc, [workdir / "events.parquet"], name="bench", version="1.0.0")
    card = {"model": {"inputs": [{"name": n, "shift": 0.1 * i, "scale": 1.5} for i, n in enumerate(names)],
                      "outputs": [{"name": "logit", "meaning": "logit"}]}}
    import torch

    res = export_torch(net, torch.from_numpy(cols["f0"][:8, None].repeat(FEATURES, 1)), archive=arc, name="net",
                       version="1.0.0", output_name="logit", card=card)
    assert res.record is not None
    x = np.column_stack([cols[n] for n in names])
    from archive.models import materialise

    sess, _ = make_session(materialise(arc, res.record), threads=1)
    counter = iter(range(1, 10_000))

    def bare() -> Any:  # the same 2,048-row session calls as the pipeline, on events already in memory
        return [sess.run(["logit"], {"x": x[i:i + 2048]}) for i in range(0, rows, 2048)]

    def pipeline() -> Any:
        return apply_model(arc, "net", "bench@1.0.0", output_column=f"w{next(counter)}", new_version=None,
                           batch_rows=65536, threads=1)

    r_bare = rate(bare, rows, repeats=repeats, min_time=0.2)
    r_pipe = rate(pipeline, rows, repeats=repeats, min_time=0.2)
    print(f"apply {rows} rows: bare session {r_bare / 1e6:.2f} M ev/s, model apply pipeline {r_pipe / 1e6:.2f} "
          f"M ev/s, ratio {r_pipe / r_bare:.2f}", flush=True)
    return {"rows": rows, "batch_rows": 65536, "threads": 1, "bare_session_events_per_s": r_bare,
            "apply_pipeline_events_per_s": r_pipe, "ratio_pipeline_over_bare": r_pipe / r_bare}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer batch sizes and repeats")
    ap.add_argument("--apply-rows", type=int, default=262_144, help="events for the apply pipeline (0: skip)")
    args = ap.parse_args()
    import onnxruntime as ort
    import torch

    from archive.models import export_torch

    batches = [1024, 16384] if args.quick else [1024, 16384, 131072]
    threads = [1] if args.quick else [1, 2]
    repeats = 3 if args.quick else 5
    net = build_net()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as td:
        onnx_path = Path(td) / "omnifold.onnx"
        example = torch.from_numpy(np.random.default_rng(0).standard_normal((16, FEATURES)).astype(np.float32))
        export_torch(net, example, path=onnx_path, output_name="logit")
        kernels = bench_kernels(onnx_path, net, batches, threads, repeats)
        apply = bench_apply(Path(td), net, args.apply_rows, 3) if args.apply_rows else None
    out = {
        "benchmark": "bench_inference",
        "model": "OmniFold MLP 24 -> 64 -> 128 -> 64 -> 1, GELU (18,241 parameters)",
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "onnxruntime": ort.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "kernels": kernels,
        "apply": apply,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
