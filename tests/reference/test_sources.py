"""Where the reference recipe comes from: the caller's archive root (``--source``), ``$HEP_ARCHIVE_ROOT`` or the
nearest root above the current directory that holds it; never from beside the installed package."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from archive.errors import ArchiveRootNotFoundError, ObjectNotFoundError
from archive.reference.chain import RECIPE_PATH, chain_steps, find_source, reference_cards

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A copy of the recipe and the image definition in a folder whose path has spaces (as a CI clone may)."""
    root = tmp_path / "a clone with spaces"
    for rel in (RECIPE_PATH, Path("containers") / "zjets-omnifold"):
        shutil.copytree(REPO / rel, root / rel)
    (root / "archive.yaml").write_text((REPO / "archive.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return root


def test_an_explicit_source_is_used_and_checked(clone: Path, tmp_path: Path) -> None:
    assert find_source(REPO) == REPO
    assert find_source(clone) == clone
    assert reference_cards(clone) == clone / RECIPE_PATH / "cards"
    with pytest.raises(ObjectNotFoundError) as err:
        find_source(tmp_path / "empty")
    assert err.value.file == str(tmp_path / "empty") and err.value.field == "source"
    assert "reana.yaml" in err.value.reason and "\n" not in str(err.value)


def test_the_default_is_the_nearest_root_above_cwd(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # ./run demo
    assert find_source() == REPO
    deep = clone / "recipes" / "zjets-omnifold" / "cards"
    monkeypatch.chdir(deep)
    assert find_source() == clone and reference_cards() == deep
    steps = chain_steps(Path("work"))
    assert steps[0][2][:2] == ["--card", f"{deep}/generator.yaml"]


def test_hep_archive_root_is_used_when_it_holds_the_recipe(clone: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    with pytest.raises(ArchiveRootNotFoundError) as err:
        find_source()
    assert "--source" in str(err.value) and err.value.file == str(outside)
    monkeypatch.setenv("HEP_ARCHIVE_ROOT", str(clone))
    assert find_source() == clone
    monkeypatch.setenv("HEP_ARCHIVE_ROOT", str(outside))  # an archive root without the recipe is no source
    monkeypatch.chdir(REPO)
    assert find_source() == REPO


def test_run_chain_refuses_a_missing_cards_folder_before_writing(tmp_path: Path) -> None:
    from archive.reference.chain import run_chain

    with pytest.raises(ObjectNotFoundError) as err:
        run_chain(tmp_path / "work", events=100, cards=tmp_path / "no-cards")
    assert err.value.file == str(tmp_path / "no-cards") and not (tmp_path / "work").exists()


def test_chain_module_names_a_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from archive.reference._common import run_main
    from archive.reference.chain import main

    code = run_main(main, ["--workdir", str(tmp_path / "work"), "--source", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == ObjectNotFoundError.exit_code and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists()


def test_store_results_refuses_missing_cards_before_storing(tmp_archive: Any, tmp_path: Path) -> None:
    from archive.reference._publish import store_results

    work = tmp_path / "run" / "work"
    work.mkdir(parents=True)
    with pytest.raises(ObjectNotFoundError) as err:
        store_results(tmp_archive, work, events=100)  # default: the workspace's cards/, absent here
    assert err.value.file == str(tmp_path / "run" / "cards" / "validate.yaml")
    assert tmp_archive.catalog.versions("dataset/zjets-omnifold-pseudodata") == []


def test_demo_without_a_source_is_one_error_and_writes_nothing(clone: Path, tmp_path: Path, cli: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    r = cli("demo", "--output", out, "--source", tmp_path / "empty", "--backend", "local")
    assert r.code == ObjectNotFoundError.exit_code and r.err.startswith("error: ") and "--source" not in r.out
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()
    monkeypatch.chdir(tmp_path)
    r = cli("demo", "--output", out, "--backend", "local")
    assert r.code == ArchiveRootNotFoundError.exit_code and "--source" in r.err and not out.exists()
    (clone / "containers" / "zjets-omnifold" / "Containerfile").unlink()
    r = cli("demo", "--output", out, "--source", clone, "--backend", "local")
    assert r.code == ObjectNotFoundError.exit_code and "Containerfile" in r.err and not out.exists()
