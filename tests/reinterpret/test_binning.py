from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from archive.errors import ValidationError
from archive.reinterpret import bin_index, parse_bins


def test_uniform_edges_and_official() -> None:
    b = parse_bins("0:1:4")
    assert b.edges == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert b.n == 4 and b.source == "uniform"
    e = parse_bins("0, 1, 2.5 ,5")
    assert e.edges == (0.0, 1.0, 2.5, 5.0) and e.source == "edges"
    off = parse_bins("official", official={"pT_ll": SimpleNamespace(edges=[200, 230, 300])}, observable="pT_ll")
    assert off.edges == (200.0, 230.0, 300.0) and off.source == "official"
    assert parse_bins([0, 2, 3]).edges == (0.0, 2.0, 3.0)
    assert parse_bins(b.spec()).edges == b.edges


@pytest.mark.parametrize(("spec", "fragment"), [
    ("1:0:4", "finite lo < hi"),
    ("0:1", "three fields"),
    ("0:1:x", "whole number"),
    ("0:1:0", "between 1 and"),
    ("0,2,1", "strictly ascending: edge 2"),
    ("0,a,1", "'a' in bins"),
    ("5,", "at least two edges"),
    ("twenty", "cannot read bins"),
    ("0,inf", "finite"),
])
def test_bad_bins_one_line_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_bins(spec)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_official_missing_names_what_exists() -> None:
    with pytest.raises(ValidationError, match=r"no official binning for 'tau21' \(it has: pT_ll\)"):
        parse_bins("official", official={"pT_ll": [1, 2]}, observable="tau21")


def test_bin_index_flows_nan_and_half_open() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    x = np.array([-5, 0, 0.5, 1.0, 1.999, 2.0, 7, np.nan, -np.inf, np.inf])
    assert bin_index(x, edges).tolist() == [0, 1, 1, 2, 2, 3, 3, 3, 0, 3]
    assert bin_index(x, edges).dtype == np.int32


@pytest.mark.parametrize("edges", [np.linspace(-1.0, 2.0, 31), np.array([0.0, 0.1, 0.25, 0.7, 1.0, 5.0])])
def test_parallel_bin_index_equals_searchsorted(edges: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-2, 6, 20_000), edges, np.nextafter(edges, -np.inf),
                        [np.nan, np.inf, -np.inf, 1e30, -1e30]])
    for values in (x, x.astype(np.float32)):
        expected = np.searchsorted(edges, values.astype(np.float64), side="right")
        got = bin_index(values, edges)
        assert got.dtype == np.int32
        assert np.array_equal(got, expected)
