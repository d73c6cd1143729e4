"""Reinterpretation: histogram any observable of an archived unbinned dataset with all its uncertainties.

What this layer is: a safe expression language over stored columns (``_expr``), binnings (``_binning``), the
one-pass multi-weight fill (``_kernel``: numba, column-major weights, bin index once per event; ``_fill``:
per-partition streaming; ``_dask``: the same on a Dask cluster), per-family uncertainty rules and covariances
(``_uncertainty``), the :class:`Histogram` result (``_histogram``), chi2 comparisons (``_compare``), plots
(``_plot``) and HEPData export (``_hepdata``).

What it is not: it does not read or write dataset files (``archive.datasets`` does; this layer consumes the
:class:`DatasetLike` protocol), does not store results in the catalog, and never evaluates Python code: expressions
are parsed with :mod:`ast` and interpreted over a whitelist.
"""

from __future__ import annotations

from archive.reinterpret._binning import Binning, bin_index, parse_bins
from archive.reinterpret._compare import Comparison, Prediction, compare, load_prediction
from archive.reinterpret._expr import Expression, parse_expression
from archive.reinterpret._fill import FillPlan, fill_range
from archive.reinterpret._hepdata import covariance_table, validate_hepdata, write_hepdata
from archive.reinterpret._histogram import Histogram, correlation, histogram
from archive.reinterpret._protocol import DatasetLike
from archive.reinterpret._uncertainty import FamilyUncertainty, family_uncertainty

__all__ = [
    "Binning",
    "Comparison",
    "DatasetLike",
    "Expression",
    "FamilyUncertainty",
    "FillPlan",
    "Histogram",
    "Prediction",
    "bin_index",
    "compare",
    "correlation",
    "covariance_table",
    "family_uncertainty",
    "fill_range",
    "histogram",
    "load_prediction",
    "parse_bins",
    "parse_expression",
    "validate_hepdata",
    "write_hepdata",
]
