"""The standard observables of a release: every dataset member's official binnings, histogrammed once.

Uses the reinterpretation engine (``archive.reinterpret.histogram``) on the stored dataset
(``archive.datasets.open_dataset``); a dataset whose record has no official binning, or no stored tables, has no
standard observable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archive.publish._common import ReleaseView, kind_section

if TYPE_CHECKING:
    from archive.schema import RecordBase

__all__ = ["StandardObservable", "standard_observables"]


@dataclass
class StandardObservable:
    dataset: RecordBase
    observable: str
    histogram: Any  # archive.reinterpret.Histogram
    source: str | None

    @property
    def slug(self) -> str:
        import re

        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.dataset.name}-{self.dataset.version}-{self.observable}")


def standard_observables(view: ReleaseView) -> list[StandardObservable]:
    """Histograms of every official binning of every dataset member with stored tables, in a stable order."""
    out: list[StandardObservable] = []
    for ds in view.of_kind("dataset"):
        spec = kind_section(ds)
        binnings = spec.get("binnings") or {}
        if not binnings or not spec.get("tables"):
            continue
        from archive.datasets import open_dataset
        from archive.reinterpret import histogram

        dataset = open_dataset(view.archive, ds.name, ds.version)
        for obs in sorted(binnings):
            edges = [float(e) for e in binnings[obs]["edges"]]
            # one kernel thread: the same sums in the same order, so exports are byte-identical
            h = histogram(dataset, obs, edges, threads=1)
            out.append(StandardObservable(ds, obs, h, binnings[obs].get("source")))
    return out
