"""Execution benchmark: what the step cache saves, and what the engine costs over a bare sandbox command.

One archive, the two-step recipe of the tests (busybox image under bwrap when usable, else ``local``), plus a
recipe whose step takes ``--work`` seconds (``sleep``), so the saving of a cache hit is visible. Measured side
by side in one process, each figure the median of ``--repeat`` runs:

* ``executed``: a forced run (every step executed) of the two-step recipe;
* ``cached``: the same run served from the step cache (no step executed);
* ``bare``: the same two commands run directly through the container runner (no engine, no record);
* ``slow_executed`` / ``slow_cached``: the ``sleep`` recipe, executed and from the cache.

Ratios: cached/executed, executed/bare (engine overhead), slow_cached/slow_executed.
Writes ``benchmarks/results/bench_execution.json``. Usage: ``python benchmarks/bench_execution.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "bench_execution.json"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "execution"))


def _median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work", type=float, default=1.0, help="seconds of work in the slow step")
    args = ap.parse_args()

    from conftest import TWO_STEP, TWO_STEP_SIDE, write_recipe

    from archive._archive import init_archive
    from archive.container import Mount, SandboxSpec, add_image, get_runner
    from archive.container.testing import build_busybox_oci
    from archive.execution import run_recipe
    from archive.recipe import add_recipe

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        a = init_archive(t / "arc")
        add_image(a, build_busybox_oci(t / "oci"), name="busybox", version="1.0.0")
        backend = "bwrap" if get_runner("bwrap").available() is None else "local"
        env = "hep-archive:container/busybox@1.0.0"
        rec = add_recipe(a, write_recipe(t / "r", TWO_STEP.format(env=env), TWO_STEP_SIDE,
                                         {"data/a.txt": "alpha\n", "data/b.txt": "beta\n"}))
        slow = add_recipe(a, write_recipe(t / "slow", f"""\
            outputs: {{files: [done.txt]}}
            workflow:
              type: serial
              specification:
                steps:
                  - name: work
                    environment: "{env}"
                    commands: ["sleep {args.work} && echo done > done.txt"]
            """, "steps:\n  work: {outputs: [done.txt]}\n"))
        run_recipe(a, rec.ref, backend=backend)
        run_recipe(a, slow.ref, backend=backend)
        executed = _median(lambda: run_recipe(a, rec.ref, backend=backend, force=True), args.repeat)
        cached = _median(lambda: run_recipe(a, rec.ref, backend=backend), args.repeat)
        runner = get_runner(backend)
        from archive.execution._images import step_rootfs

        rootfs, _env = step_rootfs(a, "container/busybox@1.0.0", None)
        ws = t / "bare"
        (ws / "data").mkdir(parents=True)
        (ws / "data" / "a.txt").write_text("alpha\n")
        (ws / "data" / "b.txt").write_text("beta\n")
        cmds = ["mkdir -p results && tr a-z A-Z < data/a.txt > results/upper.txt",
                "cat results/upper.txt data/b.txt > results/final.txt", "echo hi >> results/final.txt"]

        def bare() -> None:
            for c in cmds:
                spec = SandboxSpec(argv=["sh", "-c", c], rootfs=rootfs if backend != "local" else None,
                                   mounts=[Mount(ws, "/workspace", read_only=False)])
                runner.run(spec, stdout=t / "o", stderr=t / "e")

        bare_t = _median(bare, args.repeat)
        slow_exec = _median(lambda: run_recipe(a, slow.ref, backend=backend, force=True), max(2, args.repeat // 2))
        slow_cached = _median(lambda: run_recipe(a, slow.ref, backend=backend), args.repeat)
    out = {
        "benchmark": "bench_execution", "backend": backend, "machine": platform.machine(),
        "python": platform.python_version(), "repeat": args.repeat, "work_s": args.work,
        "seconds": {"executed": executed, "cached": cached, "bare": bare_t, "slow_executed": slow_exec,
                    "slow_cached": slow_cached},
        "ratios": {"cached_over_executed": cached / executed, "executed_over_bare": executed / bare_t,
                   "slow_cached_over_slow_executed": slow_cached / slow_exec},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["ratios"], indent=2))


if __name__ == "__main__":
    main()
