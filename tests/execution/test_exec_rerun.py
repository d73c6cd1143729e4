"""Rerun and compare: nondeterministic outputs differ; declared tolerances make them reproduced."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from exec_helpers import write_recipe

from archive.execution import compare_arrays, load_numeric, rerun, run_recipe

HOST = "docker.io/library/busybox@sha256:" + "ef" * 32

NOISY = f"""\
inputs:
  files: [noisy.sh]
outputs:
  files: [results/hist.json, results/mean.txt, results/fixed.txt]
workflow:
  type: serial
  specification:
    steps:
      - name: noisy
        environment: "{HOST}"
        commands:
          - mkdir -p results && sh noisy.sh
          - echo fixed > results/fixed.txt
"""

# the nanosecond clock makes the third bin and the mean differ on every run (by less than 1)
SCRIPT = """\
n=$(date +%N)
echo "{\\"values\\": [1000, 2000, 3000.$n], \\"variances\\": [1000, 2000, 3000]}" > results/hist.json
echo "mean = 0.5$(date +%N)" > results/mean.txt
"""


def _noisy(tmp_path: Path, side: str | None) -> Path:
    return write_recipe(tmp_path / "noisy", NOISY, side, {"noisy.sh": SCRIPT})


def test_nondeterministic_output_differs_with_report(tmp_archive: Any, tmp_path: Path, cli: Any) -> None:
    first = run_recipe(tmp_archive, _noisy(tmp_path, None))
    assert first.ok, first.record.run.error
    again = rerun(tmp_archive, first.record.ref)
    comp = again.record.run.comparison
    assert comp is not None and comp.verdict == "differs"
    by = {o.path: o for o in comp.outputs}
    assert by["results/fixed.txt"].verdict == "identical"
    hist = by["results/hist.json"]
    assert hist.verdict == "differs" and hist.method == "array"
    assert hist.max_abs_diff is not None and 0 < hist.max_abs_diff < 1
    assert "no tolerance declared" in (hist.detail or "")
    # the CLI names the outputs and exits 3
    res = cli("--root", tmp_archive.root, "rerun", first.record.ref)
    assert res.code == 3
    assert "differs: results/hist.json" in res.out and "differs: results/mean.txt" in res.out


def test_declared_tolerance_gives_reproduced_within_tolerance(tmp_archive: Any, tmp_path: Path) -> None:
    side = "tolerances:\n  results/hist.json: {chi2_p_min: 0.05}\n  results/mean.txt: {atol: 0.2}\n"
    first = run_recipe(tmp_archive, _noisy(tmp_path, side))
    again = rerun(tmp_archive, first.record.ref)
    comp = again.record.run.comparison
    assert comp is not None and comp.verdict == "reproduced within tolerance", comp
    by = {o.path: o for o in comp.outputs}
    assert by["results/hist.json"].method == "chi2" and by["results/hist.json"].p_value is not None
    assert by["results/hist.json"].p_value > 0.99 and by["results/hist.json"].ndf == 3
    assert by["results/mean.txt"].verdict == "within-tolerance"
    assert again.record.title.endswith("reproduced within tolerance")


def test_tight_tolerance_still_differs(tmp_archive: Any, tmp_path: Path) -> None:
    side = "tolerances:\n  results/mean.txt: {atol: 1.0e-12}\n  results/hist.json: {atol: 1.0e-12}\n"
    first = run_recipe(tmp_archive, _noisy(tmp_path, side))
    comp = rerun(tmp_archive, first.record.ref).record.run.comparison
    assert comp is not None and comp.verdict == "differs"
    assert "outside atol" in ({o.path: o for o in comp.outputs}["results/mean.txt"].detail or "")


def test_compare_arrays_and_loaders() -> None:
    a, b = np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0 + 1e-7, np.nan])
    assert compare_arrays(a, b, 1e-6, 0)[0]
    ok, max_abs, _ = compare_arrays(a, b, 1e-9, 0)
    assert not ok and max_abs == pytest.approx(1e-7)
    assert not compare_arrays(np.array([np.nan]), np.array([1.0]), 1, 1)[0]
    buf = io.BytesIO()
    np.save(buf, np.arange(4.0))
    got = load_numeric(buf.getvalue(), ".npy")
    assert got is not None and got["values"].tolist() == [0, 1, 2, 3]
    obj = io.BytesIO()
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert load_numeric(obj.getvalue(), ".npy") is None  # object arrays would need pickle: refused
    assert load_numeric(b"x = 1.5, y = 2", ".txt")["skeleton"] == "x = #, y = #"  # type: ignore[index]
