"""Compare a rerun's outputs with the archived ones: identical digests, arrays within atol/rtol, or a
chi-squared test of two histograms; anything else ``differs`` with the size of the difference."""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.digest import digest_file

if TYPE_CHECKING:
    import numpy as np

    from archive._archive import Archive
    from archive.schema.v1.recipe import OutputTolerance
    from archive.schema.v1.run import Comparison, OutputComparison, RunRecord

__all__ = ["compare_arrays", "compare_outputs", "load_numeric"]

_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b", re.IGNORECASE)
HIST_VALUES = ("values", "counts", "sumw", "y")
HIST_VARIANCES = ("variances", "sumw2")


def _flatten_json(obj: Any, out: list[float]) -> None:
    if isinstance(obj, bool | int | float):
        out.append(float(obj))
    elif isinstance(obj, list):
        for v in obj:
            _flatten_json(v, out)
    elif isinstance(obj, dict):
        for k in sorted(obj):
            _flatten_json(obj[k], out)


def load_numeric(data: bytes, suffix: str) -> dict[str, Any] | None:
    """Numbers in an output: ``{"values": array, "variances": array | None, "skeleton": str | None}``.

    ``.npy`` (never pickles), ``.json`` (a histogram with values/variances, or any numbers in key order), and
    text (numbers compared when the non-numeric text is the same). None when nothing numeric is found."""
    import io

    import numpy as np

    if suffix == ".npy":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            return None
        return {"values": np.asarray(arr, dtype=float), "variances": None, "skeleton": f"npy{arr.shape}"}
    text = data.decode("utf-8", errors="replace")
    if suffix == ".json":
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        if isinstance(obj, dict):
            vals = next((obj[k] for k in HIST_VALUES if k in obj), None)
            if vals is not None:
                var = next((obj[k] for k in HIST_VARIANCES if k in obj), None)
                if var is None and "errors" in obj:
                    var = (np.asarray(obj["errors"], dtype=float) ** 2).tolist()
                return {"values": np.asarray(vals, dtype=float),
                        "variances": None if var is None else np.asarray(var, dtype=float), "skeleton": "hist"}
        nums: list[float] = []
        _flatten_json(obj, nums)
        return {"values": np.asarray(nums, dtype=float), "variances": None, "skeleton": "json"} if nums else None
    nums_s = _NUM.findall(text)
    if not nums_s:
        return None
    return {"values": np.asarray([float(x) for x in nums_s]), "variances": None, "skeleton": _NUM.sub("#", text)}


def compare_arrays(a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> tuple[bool, float, float]:
    """``(|a-b| <= atol + rtol*|b| everywhere, max abs diff, max rel diff)``; NaNs must sit in the same places."""
    import numpy as np

    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return False, math.inf, math.inf
    ok = ~nan_a
    diff = np.abs(a[ok] - b[ok])
    if diff.size == 0:
        return True, 0.0, 0.0
    scale = np.abs(b[ok])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, diff / scale, np.where(diff > 0, np.inf, 0.0))
    return bool(np.all(diff <= atol + rtol * scale)), float(diff.max()), float(rel.max())


def _chi2(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, int, float]:
    import numpy as np
    from scipy import stats

    va = a["variances"] if a["variances"] is not None else np.abs(a["values"])
    vb = b["variances"] if b["variances"] is not None else np.abs(b["values"])
    var = va + vb
    mask = var > 0
    chi2 = float(np.sum((a["values"][mask] - b["values"][mask]) ** 2 / var[mask]))
    ndf = int(mask.sum())
    return chi2, ndf, float(stats.chi2.sf(chi2, ndf)) if ndf else 1.0


def _tolerance_for(path: str, tolerances: Mapping[str, OutputTolerance]) -> OutputTolerance | None:
    if path in tolerances:
        return tolerances[path]
    for pattern, tol in tolerances.items():
        if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            return tol
    return None


def _compare_one(archive: Archive, path: str, archived: str, workspace: Path,
                 tolerances: Mapping[str, OutputTolerance]) -> OutputComparison:
    from archive.schema.v1.run import OutputComparison

    p = workspace / path
    if not p.is_file():
        return OutputComparison(path=path, verdict="missing", method="none", archived=archived,
                                detail="the rerun did not produce this output")
    new = digest_file(p).sha256
    if new == archived:
        return OutputComparison(path=path, verdict="identical", archived=archived, rerun=new)
    base = {"path": path, "archived": archived, "rerun": new}
    with archive.open_object(archived) as r:
        old_bytes = r.read()
        r.read()
    a = load_numeric(p.read_bytes(), p.suffix.lower())
    b = load_numeric(old_bytes, p.suffix.lower())
    tol = _tolerance_for(path, tolerances)
    if a is None or b is None or a["skeleton"] != b["skeleton"] or a["values"].shape != b["values"].shape:
        return OutputComparison(**base, verdict="differs", method="digest",
                                detail="content differs and is not comparable numerically (different "
                                       "structure, text or shape)")
    if tol is not None and tol.chi2_p_min is not None:
        chi2, ndf, pval = _chi2(a, b)
        ok = pval >= tol.chi2_p_min
        return OutputComparison(**base, verdict="within-tolerance" if ok else "differs", method="chi2", chi2=chi2,
                                ndf=ndf, p_value=pval,
                                detail=f"chi2/ndf = {chi2:.4g}/{ndf}, p = {pval:.4g} "
                                       f"({'>=' if ok else '<'} {tol.chi2_p_min})")
    atol, rtol = (tol.atol, tol.rtol) if tol is not None else (0.0, 0.0)
    ok, max_abs, max_rel = compare_arrays(a["values"], b["values"], atol, rtol)
    n = int(a["values"].size)
    if tol is None:
        detail = f"no tolerance declared; {n} number(s), max |diff| = {max_abs:.3g}, max rel = {max_rel:.3g}"
        ok = False
    else:
        detail = (f"{n} number(s), max |diff| = {max_abs:.3g}, max rel = {max_rel:.3g} "
                  f"({'within' if ok else 'outside'} atol={atol:g}, rtol={rtol:g})")
    return OutputComparison(**base, verdict="within-tolerance" if ok else "differs", method="array",
                            max_abs_diff=max_abs if math.isfinite(max_abs) else None,
                            max_rel_diff=max_rel if math.isfinite(max_rel) else None, detail=detail)


def compare_outputs(archive: Archive, original: RunRecord, workspace: Path,
                    tolerances: Mapping[str, OutputTolerance], *, failed: bool = False) -> Comparison:
    """Compare every output of ``original`` (step and workflow outputs) with the rerun's in ``workspace``."""
    from archive.schema.v1.run import Comparison

    archived: dict[str, str] = {}
    for step in original.run.steps:
        archived.update({f.path: f.sha256 for f in step.outputs})
    archived.update({f.path: f.sha256 for f in original.run.outputs})
    results = [_compare_one(archive, path, digest, workspace, tolerances) for path, digest in sorted(archived.items())]
    verdicts = {r.verdict for r in results}
    if failed:
        verdict = "failed"
    elif verdicts & {"differs", "missing"}:
        verdict = "differs"
    elif "within-tolerance" in verdicts:
        verdict = "reproduced within tolerance"
    else:
        verdict = "reproduced"
    return Comparison(reference_run=original.ref, verdict=verdict, outputs=results)


def comparison_report(comparison: Comparison) -> list[str]:
    """Human lines: the verdict, then one line per output that is not identical."""
    lines = [f"verdict: {comparison.verdict} (against {comparison.reference_run})"]
    for o in comparison.outputs:
        if o.verdict != "identical":
            lines.append(f"  {o.verdict}: {o.path}: {o.detail or ''}".rstrip(": "))
    return lines
