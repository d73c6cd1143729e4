"""Reinterpretation: histogram any observable of an archived unbinned dataset with all its uncertainties.

What this layer is: a safe expression language over stored columns, flat or jagged (``_expr``: awkward
semantics, reductions, 4-vectors through ``vector``), binnings (``_binning``), the one-pass multi-weight fill
(``_kernel``: column-major weights, bin index once per entry, with the module-level cached numba kernels of
``_jit``; ``_fill``: per-partition streaming, per event or per object; ``_dask``: the same on a Dask cluster),
per-family uncertainty rules and covariances (``_uncertainty``), the :class:`Histogram` result
(``_histogram``: also a UHI ``PlottableHistogram``, convertible to boost-histogram, ``hist`` and pandas),
in-memory data (``_memory``: awkward arrays, pandas frames), chi2 comparisons (``_compare``), plots
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
from archive.reinterpret._histogram import Histogram, correlation, histogram, histograms, joint_covariance
from archive.reinterpret._memory import InMemoryDataset, as_dataset
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
    "InMemoryDataset",
    "Prediction",
    "as_dataset",
    "bin_index",
    "compare",
    "correlation",
    "covariance_table",
    "family_uncertainty",
    "fill_range",
    "histogram",
    "histograms",
    "joint_covariance",
    "load_prediction",
    "parse_bins",
    "parse_expression",
    "validate_hepdata",
    "write_hepdata",
]
