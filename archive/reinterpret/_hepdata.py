"""HEPData export: the histogram as a table YAML (plus its covariance table and a ``submission.yaml``).

Only the in-range bins go into the table (HEPData allows one under/overflow bin at most; they are written as
qualifiers instead). Each weight family that enters the total becomes one labelled ``symerror``; bins whose
uncertainties are all zero carry no ``errors`` (the validator refuses all-zero errors). The written directory
is validated offline with ``hepdata-validator`` (schema 1.1.1, remote schema loading off).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archive.errors import MissingDependencyError, ValidationError

if TYPE_CHECKING:
    from archive.reinterpret._histogram import Histogram

__all__ = ["covariance_table", "hepdata_table", "validate_hepdata", "write_hepdata"]

SCHEMA_VERSION = "1.1.1"


def _num(x: float) -> float:
    return float(f"{float(x):.8g}")


def _y_header(h: Histogram) -> dict[str, str]:
    if h.normalisation == "absolute":
        head = {"name": f"sigma per bin of {h.observable}"}
        if h.unit:
            head["units"] = h.unit
        return head
    return {"name": f"weighted events per bin of {h.observable}"}


def _x_header(h: Histogram, axis: int = 0) -> dict[str, str]:
    if h.ndim == 1:
        head = {"name": h.observable}
        unit = h.observable_unit
    else:
        head = {"name": h.axes_names[axis]}
        unit = (h.axes_units or (None,) * h.ndim)[axis]
    if unit:
        head["units"] = unit
    return head


def _bin_ranges(h: Histogram) -> list[list[dict[str, float]]]:
    """Per axis, the (low, high) of every flattened in-range bin (C order)."""
    grids = np.meshgrid(*[np.arange(n) for n in h.shape], indexing="ij")
    return [[{"low": _num(b.array[i]), "high": _num(b.array[i + 1])} for i in g.ravel().tolist()]
            for b, g in zip(h.binnings, grids, strict=True)]


def hepdata_table(h: Histogram, name: str, description: str) -> dict[str, Any]:
    """HEPData table data: one independent variable per axis (the bins; a 2-D histogram is a 2-D table of its
    flattened bins), one dependent variable with labelled errors.

    ``name`` and ``description`` go into the qualifiers (and into ``submission.yaml`` by :func:`write_hepdata`).
    """
    quals: list[dict[str, Any]] = [{"name": "Table", "value": name}, {"name": "Dataset", "value": h.dataset},
                                   {"name": "Observable", "value": h.expression}]
    if h.where:
        quals.append({"name": "Selection", "value": h.where})
    quals.append({"name": "Underflow", "value": _num(h.underflow)})
    quals.append({"name": "Overflow", "value": _num(h.overflow)})
    if description:
        quals.append({"name": "Description", "value": description[:500]})
    fams = [f for f in h.families if f.in_total]
    inr = h.in_range
    values = []
    for i, v in enumerate(np.asarray(h.values).ravel().tolist()):
        cell = int(inr[i])
        errors = [{"symerror": _num(f.sigma[cell]), "label": f.name} for f in fams if _num(f.sigma[cell]) != 0]
        entry: dict[str, Any] = {"value": _num(v)}
        if errors:
            entry["errors"] = errors
        values.append(entry)
    return {
        "independent_variables": [{"header": _x_header(h, a), "values": ranges}
                                  for a, ranges in enumerate(_bin_ranges(h))],
        "dependent_variables": [{"header": _y_header(h), "qualifiers": quals, "values": values}],
    }


def covariance_table(h: Histogram) -> dict[str, Any]:
    """The total covariance as a HEPData 2-D table (bin of the row x bin of the column)."""
    if h.ndim > 1:  # over the flattened bins: the bin numbers (C order) of the row and of the column
        nb = int(np.prod(h.shape))
        bins = [{"value": float(i)} for i in range(nb)]
        cov = h.covariance
        xs = [bins[i] for i in range(nb) for _ in range(nb)]
        ys = [bins[j] for _ in range(nb) for j in range(nb)]
        vals = [{"value": _num(cov[i, j])} for i in range(nb) for j in range(nb)]
        head = {"name": f"flattened bin of {h.observable} (C order)"}
    else:
        e = h.edges
        n = h.binning.n
        xs, ys, vals = [], [], []
        cov = h.covariance
        for i in range(n):
            for j in range(n):
                xs.append({"low": _num(e[i]), "high": _num(e[i + 1])})
                ys.append({"low": _num(e[j]), "high": _num(e[j + 1])})
                vals.append({"value": _num(cov[i, j])})
        head = _x_header(h)
    unit = f" [{h.unit}^2]" if h.unit and h.normalisation == "absolute" else ""
    return {
        "independent_variables": [{"header": dict(head), "values": xs}, {"header": dict(head), "values": ys}],
        "dependent_variables": [{"header": {"name": f"total covariance{unit}"},
                                 "qualifiers": [{"name": "Dataset", "value": h.dataset}], "values": vals}],
    }


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")
    return s[:48] or "table"


def write_hepdata(h: Histogram, outdir: Path, *, name: str | None = None, description: str | None = None,
                  location: str | None = None, validate: bool = True) -> list[Path]:
    """Write ``submission.yaml``, the table YAML and its covariance table into ``outdir``; validate them.

    Returns:
        The written files (submission first).

    Raises:
        ValidationError: the output does not validate (nothing is left half-written: the files are written to a
            temporary directory first and moved into place only when valid).
    """
    import shutil
    import tempfile

    import yaml

    name = (name or f"{h.observable} in {h.dataset}")[:64]
    description = description or (
        f"Distribution of {h.expression} from the unbinned dataset {h.dataset}"
        + (f" with selection {h.where}" if h.where else "") + ", reinterpreted with hep-archive; uncertainties "
        "per weight family, combined by each family's recorded rule.")
    slug = _slug(h.observable)
    table = hepdata_table(h, name, description)
    cov = covariance_table(h)
    docs: list[dict[str, Any]] = [
        {"comment": f"Reinterpretation of {h.dataset} produced by hep-archive."},
        {"name": name, "location": (location or "hep-archive reinterpretation")[:256], "description": description,
         "keywords": [{"name": "observables", "values": [h.observable[:128]]}], "data_file": f"{slug}.yaml"},
        {"name": f"Covariance: {name}"[:64], "description": f"Total covariance matrix of the table '{name}'.",
         "keywords": [{"name": "observables", "values": [h.observable[:128]]}],
         "data_file": f"{slug}_covariance.yaml"},
    ]
    outdir = Path(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir.parent, prefix=".hepdata-") as tmp:
        t = Path(tmp)
        (t / "submission.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
        (t / f"{slug}.yaml").write_text(yaml.safe_dump(table, sort_keys=False), encoding="utf-8")
        (t / f"{slug}_covariance.yaml").write_text(yaml.safe_dump(cov, sort_keys=False), encoding="utf-8")
        if validate:
            validate_hepdata(t)
        outdir.mkdir(parents=True, exist_ok=True)
        written = []
        for fname in ("submission.yaml", f"{slug}.yaml", f"{slug}_covariance.yaml"):
            shutil.move(str(t / fname), outdir / fname)
            written.append(outdir / fname)
    return written


def validate_hepdata(directory: Path) -> None:
    """Validate a HEPData submission directory offline; raise ValidationError with one problem per message."""
    try:
        from hepdata_validator.full_submission_validator import FullSubmissionValidator
    except ImportError:  # pragma: no cover - in the publish extra
        raise MissingDependencyError("hepdata-validator", "install hep-archive[publish]") from None
    from archive.errors import Problem

    v = FullSubmissionValidator(schema_version=SCHEMA_VERSION, autoload_remote_schemas=False)
    ok = v.validate(directory=str(directory))
    if not ok:
        problems = [Problem(Path(f).name, None, m.message) for f, msgs in v.get_messages().items() for m in msgs]
        raise ValidationError("the HEPData export does not validate", file=str(directory), problems=problems)
