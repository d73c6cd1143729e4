"""Per-family uncertainties and covariances from the family's recorded combination rule.

Nothing here knows experiment column names: a family says which columns it has and which rule combines them.
Every rule yields a covariance matrix whose diagonal is the square of the family's uncertainty band:

* ``sum_w2``: diag(sum w^2) (MC statistics; bins are independent);
* ``std_replicas``: sample covariance of the replica histograms, 1/(R - ddof);
* ``sem_median_ensemble``: factor^2 x sample covariance / R (factor default 1.253, standard error of the median;
  the factor is applied to the covariance too so that its diagonal matches the band);
* ``quadrature_diff``: sum_k d_k d_k^T with d_k = h_k - h_ref (Hessian outer products);
* ``paired_closure``: sum over pairs of d d^T, d = (h_a - h_b) h_ref / h_b (0 where h_b = 0);
* ``alternative_sample``: sum over columns of d d^T, d = h_alt - h_ref;
* ``none``: not an uncertainty (a prior, the nominal itself): zero, and left out of the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from archive.errors import ValidationError

__all__ = ["DEFAULT_ENSEMBLE_FACTOR", "FamilyUncertainty", "family_uncertainty"]

DEFAULT_ENSEMBLE_FACTOR = 1.253


@dataclass(frozen=True)
class FamilyUncertainty:
    """One family's band ``sigma`` (per cell) and covariance (cells x cells), with how it was made."""

    name: str
    type: str
    rule: str
    members: int
    sigma: np.ndarray
    covariance: np.ndarray
    in_total: bool
    reference: str
    notes: tuple[str, ...] = ()
    source: str | None = None  # the dataset of a separately stored alternative sample


def _stack(columns: list[str], hists: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.stack([hists[c] for c in columns]) if columns else np.zeros((0, 0))


def family_uncertainty(
    family: Any, hists: Mapping[str, np.ndarray], sumw2: Mapping[str, np.ndarray],
    ref: np.ndarray, ref_name: str,
) -> FamilyUncertainty:
    """Apply ``family.combination.rule`` to the family's column histograms.

    Args:
        family: a weight family (``name``, ``type``, ``pairs``, ``combination``, ``resolved_columns()``).
        hists: histogram (cells,) of every filled column.
        sumw2: sum of squared weights (cells,) of the columns filled with squares.
        ref: the reference histogram differences are taken against.
        ref_name: its name, for the record.

    Raises:
        ValidationError: a rule that cannot apply (too few replicas, sum_w2 without its squares).
    """
    comb = family.combination
    rule = str(comb.rule)
    cells = ref.shape[0]
    name = str(family.name)
    notes: list[str] = []
    pairs = [(str(a), str(b)) for a, b in (family.pairs or [])]
    paired_cols = {c for p in pairs for c in p}
    columns = [c for c in family.resolved_columns() if c not in paired_cols] if rule != "paired_closure" \
        else list(family.resolved_columns())
    cov = np.zeros((cells, cells))
    members = len(columns)
    if rule == "none":
        pass
    elif rule == "sum_w2":
        for c in columns:
            if c not in sumw2:
                raise ValidationError(f"family {name!r}: no sum of squares was filled for {c!r}", field="weights")
            cov += np.diag(sumw2[c])
    elif rule in ("std_replicas", "sem_median_ensemble"):
        h = _stack(columns, hists)
        r = h.shape[0]
        ddof = int(comb.ddof)
        if r - ddof < 1:
            raise ValidationError(f"family {name!r}: rule {rule!r} needs more than {ddof} replica column(s), "
                                  f"has {r}", field="weights")
        d = h - h.mean(axis=0)
        cov = d.T @ d / (r - ddof)
        if rule == "sem_median_ensemble":
            factor = DEFAULT_ENSEMBLE_FACTOR if comb.factor is None else float(comb.factor)
            cov = cov * (factor * factor) / r
    elif rule in ("quadrature_diff", "alternative_sample"):
        h = _stack(columns, hists)
        d = h - ref
        cov = d.T @ d
    elif rule == "paired_closure":
        members = len(pairs)
        for a, b in pairs:
            ha, hb = hists[a], hists[b]
            with np.errstate(all="ignore"):
                d = np.where(hb != 0, (ha - hb) * ref / np.where(hb != 0, hb, 1.0), 0.0)
            if np.any((hb == 0) & (ha != 0)):
                notes.append(f"pair ({a}, {b}): {b} is zero in some bins; their closure term is set to 0")
            cov += np.outer(d, d)
    else:  # pragma: no cover - the schema's Literal refuses other rules
        raise ValidationError(f"family {name!r}: unknown combination rule {rule!r}", field="weights")
    sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return FamilyUncertainty(name, str(family.type), rule, members, sigma, cov, rule != "none", ref_name,
                             tuple(notes))
