"""DataLad/git-annex: an archive root as a DataLad dataset, a store kind on one, and publishing to siblings.

Objects keep the local layout ``objects/sha256/ab/cdef…``; in a DataLad dataset git-annex replaces each one
by a symlink into ``.git/annex/objects`` (content keyed by SHA256E) and tracks where copies live, while the
catalog (YAML, ledger) stays in plain git. Reading an annexed object whose content is not present locally
fetches it with ``datalad get``. DataLad is imported only inside functions (it is slow to import).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from archive.errors import MissingDependencyError, StorageError
from archive.storage._fsspec import LocalStore

__all__ = ["GITATTRIBUTES", "DataladStore", "datalad_available", "make_dataset", "push", "save"]

#: annex every stored object, keep everything else (records, ledger, schemas, recipes) in git
GITATTRIBUTES = (
    "* annex.backend=SHA256E\n"
    "**/.git* annex.largefiles=nothing\n"
    "* annex.largefiles=nothing\n"
    "objects/** annex.largefiles=anything\n"
)
#: never tracked: temporaries of interrupted writes and derived state
GITIGNORE_LINES = ("/objects/tmp/", "/.hep-archive/")


def datalad_available() -> str | None:
    """``None`` when DataLad and git-annex can be used, else the reason they cannot."""
    try:
        import datalad  # noqa: F401
    except ImportError:
        return "the Python package datalad is not installed (pip install 'hep-archive[integrity]')"
    if shutil.which("git-annex") is None:
        return "git-annex is not on PATH (apt-get install git-annex)"
    return None


def _api() -> Any:
    reason = datalad_available()
    if reason is not None:
        raise MissingDependencyError("DataLad", reason)
    import logging
    import sys

    # DataLad's helpers (git-annex-remote-ora for RIA stores, ...) are installed beside this Python
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path
    logging.getLogger("datalad").setLevel(logging.WARNING)
    import datalad.api as dl

    return dl


def _call(what: str, where: Path, fn: Any, *args: Any, **kw: Any) -> list[dict[str, Any]]:
    """Run a DataLad command; raise StorageError with the first failure's message."""
    kw.setdefault("result_renderer", "disabled")
    kw.setdefault("on_failure", "ignore")
    kw.setdefault("return_type", "list")
    kw.setdefault("result_xfm", None)  # plain result dicts (create would return Dataset objects)
    kw.setdefault("result_filter", None)
    try:
        results: list[dict[str, Any]] = fn(*args, **kw)
    except Exception as err:  # datalad raises IncompleteResultsError, CommandError, ValueError...
        raise StorageError(f"datalad {what} failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
                           file=str(where)) from err
    bad = [r for r in results if r.get("status") in ("error", "impossible")]
    if bad:
        msg = bad[0].get("message") or bad[0].get("error_message") or "unknown error"
        if isinstance(msg, tuple):
            msg = msg[0] % msg[1:] if len(msg) > 1 else msg[0]
        raise StorageError(f"datalad {what} failed: {msg}", file=str(bad[0].get("path") or where))
    return results


def make_dataset(root: Path) -> None:
    """Make ``root`` (which may already hold files) a DataLad dataset whose ``objects/`` are annexed."""
    dl = _api()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".datalad" / "config").exists():
        _call("create", root, dl.create, path=str(root), force=True, annex=True)
    (root / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
    gi = root / ".gitignore"
    lines = gi.read_text(encoding="utf-8").splitlines() if gi.exists() else []
    # objects are tracked (annexed) in a DataLad archive: drop a plain-git "/objects/" ignore rule
    lines = [ln for ln in lines if ln.strip() not in ("/objects/", "objects/", "objects")]
    lines += [ln for ln in GITIGNORE_LINES if ln not in lines]
    gi.write_text("\n".join(lines) + "\n", encoding="utf-8")


def is_dataset(root: Path) -> bool:
    return (root / ".datalad" / "config").is_file()


def save(root: Path, message: str = "hep-archive: save") -> None:
    """``datalad save`` everything (objects are annexed, records committed to git)."""
    dl = _api()
    if not is_dataset(root):
        raise StorageError("not a DataLad dataset; create the archive with `hep-archive init --datalad`",
                           file=str(root))
    _call("save", root, dl.save, dataset=str(root), message=message)


def push(root: Path, sibling: str, *, ria_url: str | None = None) -> list[str]:
    """Save, then publish the dataset and its annexed objects to ``sibling``.

    With ``ria_url`` (``ria+file:///path`` or a plain directory path) the sibling is first created as a RIA
    store there (``datalad create-sibling-ria``) unless it already exists. Returns the pushed paths/refs."""
    dl = _api()
    save(root, f"hep-archive: push to {sibling}")
    from datalad.distribution.dataset import Dataset

    ds = Dataset(str(root))
    names = {r.get("name") for r in _call("siblings", root, ds.siblings, action="query")}
    if sibling not in names:
        if ria_url is None:
            have = ", ".join(sorted(n for n in names if n)) or "none"
            raise StorageError(f"no sibling {sibling!r} (siblings: {have}); "
                               "pass --ria URL to create a RIA store sibling", field="sibling")
        url = ria_url if ria_url.startswith("ria+") else "ria+file://" + str(Path(ria_url).absolute())
        _call("create-sibling-ria", root, ds.create_sibling_ria, url=url, name=sibling, new_store_ok=True)
    results = _call("push", root, dl.push, dataset=str(root), to=sibling)
    return sorted({str(r.get("path", "")) for r in results if r.get("status") == "ok"})


def dataset_id(root: Path) -> str:
    """The DataLad dataset id (for ``datalad clone ria+file:///store#<id>``)."""
    import configparser

    cp = configparser.ConfigParser()
    cp.read(root / ".datalad" / "config")
    try:
        return cp['datalad "dataset"']["id"]
    except KeyError:
        raise StorageError("no dataset id in .datalad/config", file=str(root)) from None


class DataladStore(LocalStore):
    """An object store inside a DataLad dataset (``datalad:///path``): ``<path>/objects/sha256/...``, annexed.

    Writes are plain atomic object writes; :meth:`sync` runs ``datalad save`` so git-annex takes the new
    content over. Reading an object whose annexed content is absent runs ``datalad get`` first."""

    def __init__(self, dataset: str | os.PathLike[str]) -> None:
        self.dataset = Path(dataset).absolute()
        super().__init__(self.dataset / "objects")
        self.url = f"datalad://{self.dataset}"
        self._dirty = False

    def put_stream(self, stream: BinaryIO, **kw: Any) -> Any:
        if not is_dataset(self.dataset):
            make_dataset(self.dataset)
        info = super().put_stream(stream, **kw)
        self._dirty = True
        return info

    def sync(self) -> None:
        if self._dirty:
            save(self.dataset, "hep-archive: store objects")
            self._dirty = False

    def _annexed_absent(self, digest: str) -> bool:
        p = self._path(digest)
        return p.is_symlink() and not p.exists()

    def open_raw(self, digest: str) -> BinaryIO:
        if self._annexed_absent(digest):
            dl = _api()
            _call("get", self.dataset, dl.get, path=str(self._path(digest)), dataset=str(self.dataset))
        return super().open_raw(digest)

    def exists(self, digest: str) -> bool:
        return super().exists(digest) or self._annexed_absent(digest)

    def remove(self, digest: str) -> None:
        """Remove this copy, including the annexed content (see :meth:`LocalStore.remove`)."""
        super().remove(digest)
        self._dirty = True
