"""The reference analysis chain: Z(->mu mu)+jets, from Pythia 8 to an OmniFold unfolding and its closure test.

This layer IS the physics code of ``recipes/zjets-omnifold``: each step is a module runnable as
``python -m archive.reference.<step>`` with explicit file inputs and outputs (``generate``, ``detsim``,
``reco``, ``unfold``, ``validate``), deterministic for fixed seeds and thread settings, and writing a small JSON
provenance sidecar next to every output. It is NOT a general event generator interface, a detector simulation
framework or a general unfolding library: the samples, the detector card and the selection are those of one
reference analysis, kept small enough to re-execute in minutes. It does not touch the catalog; the
integration (storing the results in an archive) lives in :mod:`archive.reference.chain`.
"""

from __future__ import annotations

from archive.reference._common import OBSERVABLES

__all__ = ["OBSERVABLES"]
