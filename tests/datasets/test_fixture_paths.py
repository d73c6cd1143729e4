"""The ATLAS-style fixture reads the real Zmumu file from the caller or ``$HEP_ARCHIVE_TEST_DATA``, never from
beside the package (an installed wheel has nothing there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archive.datasets.testing import TEST_DATA_ENV, ZMUMU, atlas_fixture_columns, zmumu_path
from archive.errors import ObjectNotFoundError


def test_the_tests_name_the_folder_the_library_reads(shared_data: Path) -> None:
    assert os.environ[TEST_DATA_ENV] == str(shared_data)
    assert zmumu_path() == shared_data / ZMUMU


def test_an_explicit_path_wins(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_DATA_ENV, str(tmp_path))  # holds no Zmumu file
    assert zmumu_path(shared_data / ZMUMU) == shared_data / ZMUMU
    cols = atlas_fixture_columns(shared_data / ZMUMU, n_bootstrap=1, n_bootstrap_mc=1, n_ensemble=1)
    assert len(cols["m_ll"]) == 2304


def test_no_path_and_no_variable_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_DATA_ENV, raising=False)
    with pytest.raises(ObjectNotFoundError) as err:
        atlas_fixture_columns()
    assert err.value.lines() == [str(err.value)] and TEST_DATA_ENV in str(err.value) and "zmumu=" in str(err.value)


@pytest.mark.parametrize("how", ["argument", "variable"])
def test_a_missing_file_is_named(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_DATA_ENV, str(tmp_path / "in a folder with spaces"))
    with pytest.raises(ObjectNotFoundError) as err:
        zmumu_path(tmp_path / "nope.root" if how == "argument" else None)
    missing = tmp_path / "nope.root" if how == "argument" else tmp_path / "in a folder with spaces" / ZMUMU
    assert err.value.file == str(missing) and "\n" not in str(err.value)
