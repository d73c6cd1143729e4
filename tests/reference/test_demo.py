"""The README's main job from the CLI at a small size, on the local backend (where bwrap cannot run): demo, demo
again (cached), rerun. The default path, in the snapshot image under bwrap with a release, is
tests/publish/test_reference_release.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_demo_builds_validates_reinterprets_and_reruns(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "demo"
    first = cli("--json", "demo", "--output", out, "--events", "400", "--backend", "local", "--source", REPO)
    assert first.code == 0, first.err
    summary = first.json()
    assert summary["ok"] is True and summary["validate"] == "ok"
    assert summary["image"] is None and "local backend" in summary["publish"]["skipped"]
    assert summary["steps_executed"] == ["generate", "detsim", "reco", "unfold", "validate"]
    assert set(summary["verify"]) == {"ok"}
    records = summary["records"]
    for ref in (records["dataset"], records["truth"], records["recipe"], records["closure"],
                records["reinterpretation"], *records["models"]):
        assert cli("--root", out, "show", ref).code == 0
    assert 0.0 <= summary["reinterpretation"]["p_value"] <= 1.0
    pandas = pytest.importorskip("pandas")
    from archive._archive import open_archive

    arc = open_archive(out)
    atlas = arc.record(summary["atlas_layout"])
    frame = pandas.read_hdf(arc.file_path(atlas.files[0]), "df")  # the ATLAS release's own layout
    unfolded = arc.dataset("zjets-omnifold-pseudodata")
    assert len(frame) == unfolded.num_rows and "weights_nominal" in frame.columns
    assert (out / summary["container_definition"]).is_file()
    assert summary["closure"]["passed"] is True

    again = cli("--json", "demo", "--output", out, "--events", "400", "--backend", "local", "--source", REPO).json()
    assert again["steps_executed"] == [] and again["steps_cached"] == summary["steps_executed"]
    assert again["ok"] is True

    rerun = cli("--root", out, "--json", "rerun", summary["run"])
    assert rerun.code == 0, rerun.err
    assert rerun.json()["verdict"] == "reproduced"
    assert cli("--root", out, "validate").code == 0
    assert cli("--root", out, "verify").code == 0
