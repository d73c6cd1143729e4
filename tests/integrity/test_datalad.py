"""DataLad/git-annex, for real: ``init --datalad``, ``push`` to a RIA store, ``datalad clone`` + ``get`` +
``verify``; and a DataLad dataset as a replica store that ``replicate`` fills and ``repair`` reads from."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from integrity_helpers import make_archive, publish

from archive._archive import Archive
from archive.integrity import repair, replicate, verify_archive
from archive.storage._datalad import datalad_available

pytestmark = pytest.mark.skipif(datalad_available() is not None, reason=str(datalad_available()))


def test_init_push_clone_get_verify(tmp_path: Path, cli: Any, write_file: Callable[[str, bytes], Path]) -> None:
    root = tmp_path / "arc"
    res = cli("--json", "init", root, "--datalad")
    assert res.code == 0, res.err
    assert (root / ".datalad" / "config").is_file()
    assert "objects/** annex.largefiles=anything" in (root / ".gitattributes").read_text()
    a = Archive(root)
    rec = publish(a, [write_file("events.bin", os.urandom(50_000)), write_file("small.txt", b"hello")], "dl")
    res = cli("--root", root, "--json", "push", "origin", "--ria", tmp_path / "ria")
    assert res.code == 0, res.err
    out = res.json()
    assert out["clone_url"].startswith("ria+file://") and out["dataset_id"] in out["clone_url"]
    for f in rec.files:  # annexed in the archive itself
        p = root / "objects" / a.store.object_key(f.sha256)
        assert p.is_symlink() and ".git/annex/objects" in os.readlink(p)

    import datalad.api as dl

    clone = tmp_path / "clone"
    dl.clone(source=out["clone_url"], path=str(clone), result_renderer="disabled")
    before = cli("--root", clone, "--json", "verify")
    assert before.code == 3 and before.json()["counts"] == {"missing": 2}, "content is not there before get"
    dl.get(path=str(clone / "objects"), dataset=str(clone), result_renderer="disabled")
    after = cli("--root", clone, "--json", "verify")
    assert after.code == 0, after.err
    assert after.json()["counts"] == {"ok": 2}
    assert cli("--root", clone, "validate").code == 0


def test_push_unknown_sibling_is_a_clear_error(tmp_path: Path, cli: Any) -> None:
    root = tmp_path / "arc"
    assert cli("init", root, "--datalad").code == 0
    res = cli("--root", root, "push", "nowhere")
    assert res.code == 1 and "no sibling 'nowhere'" in res.err and "--ria" in res.err


def test_datalad_store_as_replica(tmp_path: Path, write_file: Callable[[str, bytes], Path]) -> None:
    a = make_archive(tmp_path / "arc", [{"name": "local", "url": "objects"},
                                        {"name": "annex", "url": f"datalad://{tmp_path / 'annex'}"}], copies=2)
    rec = publish(a, [write_file("w.bin", os.urandom(20_000))], "annexed")
    assert verify_archive(a).counts() == {"under-replicated": 1}
    assert replicate(a).ok
    d = rec.files[0].sha256
    link = tmp_path / "annex" / "objects" / a.store.object_key(d)
    assert link.is_symlink(), "replicate saved the dataset: the object is annexed"
    assert verify_archive(a).ok
    p = a.object_path(d)
    os.chmod(p, 0o644)
    p.write_bytes(b"rotten")
    assert not verify_archive(a).ok
    assert repair(a).ok
    assert verify_archive(a).ok and a.store.read_bytes(d) == Archive(a.root).stores["annex"].read_bytes(d)
    # now the annexed copy rots inside .git/annex: repair drops it and annexes good bytes again
    content = link.resolve()
    os.chmod(content.parent, 0o755)
    os.chmod(content, 0o644)
    content.write_bytes(b"annex rot")
    rep = verify_archive(a)
    assert rep.objects[0].copies == {"local": "ok", "annex": "corrupt"}
    healed = repair(a)
    assert healed.ok and [(x.target, x.action) for x in healed.actions] == [("annex", "replaced")]
    assert verify_archive(a).ok and link.is_symlink()
