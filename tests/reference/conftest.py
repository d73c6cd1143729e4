"""A small run of the whole reference chain, shared by the tests of this folder (module scope)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SMALL_EVENTS = 400
SMALL_UNFOLD = {"ensemble": 2, "bootstrap_data": 2, "bootstrap_mc": 2}
REPO = Path(__file__).resolve().parents[2]
CARDS = REPO / "recipes" / "zjets-omnifold" / "cards"


def run_small(work: Path, **kwargs: Any) -> dict[str, Any]:
    from archive.reference.chain import run_chain

    return run_chain(work, events=SMALL_EVENTS, cards=CARDS, unfold_overrides=SMALL_UNFOLD, **kwargs)


@pytest.fixture(scope="session")
def small_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    work = tmp_path_factory.mktemp("chain") / "work"
    summary = run_small(work)
    return work, summary
