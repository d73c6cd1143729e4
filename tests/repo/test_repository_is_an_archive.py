"""This repository is itself an archive root: it opens, validates, verifies, and its schemas are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive._archive import open_archive
from archive.catalog import validate_archive
from archive.integrity import verify_archive
from archive.schema import schema_files

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not (REPO / "archive.yaml").exists(), reason="not a repository checkout")


def test_schemas_have_not_drifted_from_the_models() -> None:
    stale = [rel for rel, text in schema_files().items()
             if not (REPO / "schemas" / rel).exists() or (REPO / "schemas" / rel).read_text() != text]
    assert stale == [], f"run `hep-archive schemas --write`: {stale}"


def test_repository_validates() -> None:
    assert [str(p) for p in validate_archive(open_archive(REPO))] == []


def test_repository_verifies() -> None:
    report = verify_archive(open_archive(REPO))
    assert report.ok, report.as_dict()
