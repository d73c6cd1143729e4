"""Compare a histogram with a prediction: chi2 = d^T (V_meas + V_pred)^-1 d, ndf, p-value.

A prediction is another :class:`Histogram` (another dataset histogrammed the same way), a HEPData table YAML
(``independent_variables`` with ``low``/``high``, errors added in quadrature and symmetrised), or JSON: a plain
array of values, or an object with ``values`` and optional ``edges``, ``covariance`` or ``errors`` (a
``hep-archive hist --output`` file is such an object).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.reinterpret._histogram import Histogram

__all__ = ["Comparison", "Prediction", "compare", "load_prediction"]


@dataclass(frozen=True)
class Prediction:
    """Predicted in-range bin values, their covariance (zeros if unknown) and optionally the bin edges."""

    values: np.ndarray
    covariance: np.ndarray
    edges: np.ndarray | None = None
    label: str = "prediction"

    @property
    def errors(self) -> np.ndarray:
        return np.asarray(np.sqrt(np.clip(np.diag(self.covariance), 0.0, None)))


@dataclass(frozen=True)
class Comparison:
    """The chi2 test of a histogram against a prediction with the full covariance."""

    chi2: float
    ndf: int
    p_value: float
    label: str = "prediction"
    bins_used: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"chi2": self.chi2, "ndf": self.ndf, "p_value": self.p_value, "prediction": self.label,
                "bins_used": self.bins_used, "warnings": list(self.warnings)}


def _floats(data: Any, what: str, file: str | None) -> np.ndarray:
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be numbers", file=file, field=what) from None
    return arr


def _from_mapping(data: Mapping[str, Any], label: str, file: str | None) -> Prediction:
    if "dependent_variables" in data:
        return _from_hepdata(data, label, file)
    if "values" not in data:
        raise ValidationError("a prediction object needs 'values' (and optionally 'edges', 'covariance' or "
                              "'errors')", file=file, field="values")
    values = _floats(data["values"], "values", file)
    if values.ndim != 1 or values.size == 0:
        raise ValidationError("'values' must be a non-empty list of numbers", file=file, field="values")
    n = values.size
    if data.get("covariance") is not None:
        cov = _floats(data["covariance"], "covariance", file)
        if cov.shape != (n, n):
            raise ValidationError(f"'covariance' must be {n} x {n} (one row per value), got {cov.shape}",
                                  file=file, field="covariance")
        if not np.allclose(cov, cov.T, rtol=1e-9, atol=0):
            raise ValidationError("'covariance' is not symmetric", file=file, field="covariance")
    elif data.get("errors") is not None:
        err = _floats(data["errors"], "errors", file)
        if err.shape != (n,):
            raise ValidationError(f"'errors' must have {n} entries", file=file, field="errors")
        cov = np.diag(err * err)
    else:
        cov = np.zeros((n, n))
    edges = None
    if data.get("edges") is not None:
        edges = _floats(data["edges"], "edges", file)
        if edges.shape != (n + 1,):
            raise ValidationError(f"'edges' must have {n + 1} entries for {n} values", file=file, field="edges")
    name = data.get("dataset") or data.get("label") or label
    return Prediction(values, cov, edges, str(name))


def _from_hepdata(data: Mapping[str, Any], label: str, file: str | None) -> Prediction:
    try:
        indep = data["independent_variables"][0]["values"]
        dep = data["dependent_variables"][0]["values"]
        lows = [float(v["low"]) for v in indep]
        highs = [float(v["high"]) for v in indep]
    except (KeyError, IndexError, TypeError, ValueError):
        raise ValidationError("a HEPData table prediction needs independent_variables[0] with 'low'/'high' bins "
                              "and dependent_variables[0] values", file=file, field="independent_variables") from None
    if len(dep) != len(lows):
        raise ValidationError(f"the table has {len(lows)} bins but {len(dep)} values", file=file,
                              field="dependent_variables")
    if any(abs(h - lo2) > 1e-9 * max(1.0, abs(h)) for h, lo2 in zip(highs[:-1], lows[1:], strict=True)):
        raise ValidationError("the table's bins are not contiguous (high of one != low of the next)", file=file,
                              field="independent_variables")
    values, var = [], []
    for i, v in enumerate(dep):
        try:
            values.append(float(v["value"]))
        except (KeyError, TypeError, ValueError):
            raise ValidationError(f"bin {i} has no numeric value", file=file, field="dependent_variables") from None
        s2 = 0.0
        for e in v.get("errors", []) or []:
            s2 += _hepdata_error(e, values[-1]) ** 2
        var.append(s2)
    edges = np.asarray([*lows, highs[-1]], np.float64)
    header = data["dependent_variables"][0].get("header", {}).get("name")
    return Prediction(np.asarray(values), np.diag(var), edges, str(header or label))


def _hepdata_error(e: Mapping[str, Any], value: float) -> float:
    def num(x: Any) -> float:
        if isinstance(x, str) and x.strip().endswith("%"):
            return float(x.strip()[:-1]) / 100.0 * value
        return float(x)

    if "symerror" in e:
        return abs(num(e["symerror"]))
    if "asymerror" in e:
        return 0.5 * (abs(num(e["asymerror"]["plus"])) + abs(num(e["asymerror"]["minus"])))
    return 0.0


def load_prediction(source: str | Path | Mapping[str, Any] | Sequence[float], label: str | None = None
                    ) -> Prediction:
    """Read a prediction from a HEPData table YAML, a JSON file, or in-memory data."""
    if isinstance(source, Mapping):
        return _from_mapping(source, label or "prediction", None)
    if not isinstance(source, str | Path):
        return _from_mapping({"values": list(source)}, label or "prediction", None)
    path = Path(source)
    file = str(path)
    if not path.is_file():
        raise ValidationError("prediction file not found; give a HEPData table YAML, a JSON file or a dataset",
                              file=file)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValidationError(f"not valid JSON: {err.msg} at line {err.lineno}", file=file) from None
    else:
        from archive.schema._yaml import load_yaml_text

        data = load_yaml_text(text, source=file)
    name = label or path.stem
    if isinstance(data, list):
        return _from_mapping({"values": data}, name, file)
    if not isinstance(data, Mapping):
        raise ValidationError("a prediction must be a JSON array, an object with 'values', or a HEPData table",
                              file=file)
    return _from_mapping(data, name, file)


def _as_prediction(pred: Any) -> Prediction:
    if isinstance(pred, Prediction):
        return pred
    if isinstance(pred, Histogram):
        return Prediction(np.array(pred.values).ravel(), pred.covariance.copy(),
                          pred.edges.copy() if pred.ndim == 1 else None, pred.dataset)
    return load_prediction(pred)


def compare(hist: Histogram, prediction: Any) -> Comparison:
    """chi2, ndf and p-value of ``hist`` against ``prediction`` with the full covariance (measured + predicted).

    Bins where both the covariance row and the difference are zero carry no information and are left out
    (with a warning); a singular covariance is inverted with the pseudo-inverse (with a warning).

    Raises:
        ValidationError: the prediction's binning (edges or bin count) differs from the histogram's.
    """
    from scipy import stats

    pred = _as_prediction(prediction)
    measured = np.array(hist.values).ravel()  # N-D: the flattened bins, as the covariance
    n = measured.size
    if pred.values.shape != (n,):
        raise ValidationError(f"binning mismatch: the histogram has {n} bins, the prediction {pred.values.size}; "
                              "histogram with the prediction's bins", field="compare")
    if pred.edges is not None and hist.ndim == 1 and not np.allclose(pred.edges, hist.edges, rtol=1e-9,
                                                                     atol=1e-12):
        diff = int(np.argmax(~np.isclose(pred.edges, hist.edges, rtol=1e-9, atol=1e-12)))
        raise ValidationError(f"binning mismatch: edge {diff} is {hist.edges[diff]:g} in the histogram and "
                              f"{pred.edges[diff]:g} in the prediction; use --bins "
                              f"{','.join(f'{e:g}' for e in pred.edges)}", field="compare")
    d = measured - pred.values
    cov = hist.covariance + pred.covariance
    warnings: list[str] = []
    keep = ~((np.abs(cov).sum(axis=1) == 0) & (d == 0))
    if not keep.all():
        warnings.append(f"{int((~keep).sum())} empty bin(s) without uncertainty left out of the chi2")
    d, cov = d[keep], cov[np.ix_(keep, keep)]
    if d.size == 0:
        raise ValidationError("no bin has a non-zero value or uncertainty; nothing to compare", field="compare")
    if np.any(np.diag(cov) <= 0):
        raise ValidationError("some bins differ but have zero variance in both histogram and prediction; the chi2 "
                              "is undefined (widen the bins or give the prediction an uncertainty)", field="compare")
    cond = np.linalg.cond(cov)
    if not math.isfinite(cond) or cond > 1e12:
        warnings.append(f"the covariance is (near) singular (condition number {cond:.2g}); using its pseudo-inverse")
        chi2 = float(d @ np.linalg.pinv(cov, rcond=1e-12, hermitian=True) @ d)
    else:
        chi2 = float(d @ np.linalg.solve(cov, d))
    ndf = int(d.size)
    return Comparison(chi2, ndf, float(stats.chi2.sf(chi2, ndf)), pred.label, ndf, warnings)
