"""The execution layer: run recipes, cache steps by content, record provenance, rerun and compare.

What it is: the serial engine with REANA's semantics (each command a ``bash -c`` job in the workspace,
``$param`` substitution), each step in its pinned image through the containers layer's runners (``local``,
``bwrap``, ``podman``...) or on a REANA cluster (``reana``, through reana-client in its own environment); a
content-addressed step cache; ``run`` records with everything needed to judge a rerun; rerun-and-compare with
per-output tolerances; and an RO-Crate Workflow Run Crate export.

What it is not: a container runtime (``archive.container``), a recipe parser (``archive.recipe``) or a workflow
engine for CWL, Snakemake or Yadage (those are recorded, and run on REANA).
"""

from __future__ import annotations

from archive.execution._compare import compare_arrays, compare_outputs, comparison_report, load_numeric
from archive.execution._crate import export_run_crate, validate_run_crate
from archive.execution._engine import BACKENDS, ENGINE_NAME, ENGINE_VERSION, RunResult, run_recipe, substitute
from archive.execution._host import report_device, report_onnxruntime
from archive.execution._rerun import rerun

__all__ = [
    "BACKENDS",
    "ENGINE_NAME",
    "ENGINE_VERSION",
    "RunResult",
    "compare_arrays",
    "compare_outputs",
    "comparison_report",
    "export_run_crate",
    "load_numeric",
    "report_device",
    "report_onnxruntime",
    "rerun",
    "run_recipe",
    "substitute",
    "validate_run_crate",
]
