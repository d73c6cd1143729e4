"""The recipe layer: REANA ``reana.yaml`` recipes, loaded, validated and recorded.

What it is: parsing a recipe directory (``reana.yaml`` plus an optional ``hep-archive.yaml`` side file with
per-step declared inputs/outputs, ``cache: off`` switches and output tolerances), validating it with our own
checks and with REANA's JSON schema from reana-commons when that can be found, resolving every step image to a
digest-pinned container record, and writing a ``recipe`` record whose files are stored content-addressed.

What it is not: execution. Loading a recipe never runs its code (CWL, Snakemake and Yadage workflow files are
recorded, not loaded); ``archive.execution`` runs recipes.
"""

from __future__ import annotations

from archive.recipe._add import add_recipe, recipe_files
from archive.recipe._load import SIDE_FILE, SPEC_FILE, LoadedRecipe, load_recipe, validate_recipe_dir
from archive.recipe._reana_schema import find_reana_schema

__all__ = [
    "SIDE_FILE",
    "SPEC_FILE",
    "LoadedRecipe",
    "add_recipe",
    "find_reana_schema",
    "load_recipe",
    "recipe_files",
    "validate_recipe_dir",
]
