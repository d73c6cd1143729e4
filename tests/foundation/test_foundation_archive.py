"""Archive root configuration and the crash-ordering promise of catalog writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import archive.catalog._store as store_module
from archive._archive import Archive, init_archive
from archive.catalog import validate_archive
from archive.schema import parse_record


def test_datalad_store_kind_in_config(tmp_path: Path) -> None:
    from archive.storage._datalad import DataladStore

    a = init_archive(tmp_path / "arc", stores=[
        {"name": "local", "url": "objects"},
        {"name": "annex", "url": "mirror-ds", "kind": "datalad"},
    ])
    annex = Archive(a.root).stores["annex"]
    assert isinstance(annex, DataladStore)
    assert annex.dataset == a.root / "mirror-ds"


class Killed(BaseException):
    """Stands in for SIGKILL between two writes (BaseException: nothing may catch it)."""


@pytest.mark.parametrize("operation", ["add", "publish", "withdraw"])
def test_kill_between_ledger_and_file_is_completed_by_running_again(
    tmp_archive: Any, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    cat = tmp_archive.catalog
    published = parse_record({"id": "dataset/z", "version": "1.0.0", "title": "Z", "status": "published"})
    draft = parse_record({"id": "dataset/z", "version": "1.0.0", "title": "Z"})

    def run() -> None:
        if operation == "add":
            cat.add(published)
        elif operation == "publish":
            cat.publish("dataset/z@1.0.0")
        else:
            cat.transition("dataset/z@1.0.0", "withdrawn", reason="wrong calibration")

    if operation == "publish":
        cat.add(draft)
    if operation == "withdraw":
        cat.add(published)
    real_write = store_module.atomic_write_text

    def killed_write(path: Any, text: str) -> None:
        raise Killed

    monkeypatch.setattr(store_module, "atomic_write_text", killed_write)
    with pytest.raises(Killed):
        run()
    monkeypatch.setattr(store_module, "atomic_write_text", real_write)
    assert validate_archive(tmp_archive) != []  # the interruption is visible...
    run()  # ...and running the same command again completes it
    assert validate_archive(tmp_archive) == []
