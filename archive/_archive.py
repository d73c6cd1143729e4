"""The archive root: configuration, catalog, index and object stores, found from a directory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.config import CONFIG_NAME, ArchiveConfig
from archive.errors import ArchiveRootNotFoundError, LockError, ObjectNotFoundError, ValidationError
from archive.schema import FileEntry, RecordBase, problems_from_pydantic, write_schemas
from archive.schema._yaml import dump_yaml, load_yaml_file
from archive.storage import ObjectInfo, ObjectStore, VerifyingReader, open_store

if TYPE_CHECKING:
    from archive.catalog._index import Index
    from archive.catalog._store import Catalog
    from archive.datasets import Dataset

__all__ = ["Archive", "find_root", "init_archive", "open_archive"]

ROOT_ENV = "HEP_ARCHIVE_ROOT"
STATE_DIR = ".hep-archive"
DATA_DIRS = ("catalog", "schemas", "recipes", "containers")
GITIGNORE = "# hep-archive: stored objects and derived state are never committed\n/objects/\n/.hep-archive/\n"


class Archive:
    """An opened archive root. Cheap to create; parts are loaded on first use."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        cfg_path = self.root / CONFIG_NAME
        if not cfg_path.is_file():
            raise ArchiveRootNotFoundError(
                f"not an archive root (no {CONFIG_NAME}); create one with `hep-archive init PATH`", file=str(self.root)
            )
        import pydantic

        data = load_yaml_file(cfg_path, source=str(cfg_path))
        try:
            self.config = ArchiveConfig.model_validate(data or {})
        except pydantic.ValidationError as err:
            problems = problems_from_pydantic(err, str(cfg_path))
            raise ValidationError("invalid archive configuration", file=str(cfg_path), problems=problems) from None

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"

    # --- parts ----------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @cached_property
    def catalog(self) -> Catalog:
        from archive.catalog._store import Catalog

        return Catalog(self.root)

    @cached_property
    def index(self) -> Index:
        from archive.catalog._index import Index

        return Index(self.catalog, self.state_dir / "index.sqlite")

    @cached_property
    def stores(self) -> dict[str, ObjectStore]:
        out: dict[str, ObjectStore] = {}
        for sc in self.config.stores:
            url = sc.url
            if "://" not in url and not os.path.isabs(url):
                url = str(self.root / url)
            if sc.kind == "datalad" and not url.startswith("datalad://"):
                url = "datalad://" + url
            out[sc.name] = open_store(url, sc.options)
        return out

    @property
    def store(self) -> ObjectStore:
        """The primary (first configured) object store: new objects are written here."""
        return next(iter(self.stores.values()))

    @contextlib.contextmanager
    def lock(self, timeout: float = 60.0) -> Iterator[None]:
        """An exclusive lock on the archive for writers (other processes wait up to ``timeout`` s)."""
        import filelock

        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.state_dir / "lock"), timeout=timeout)
        try:
            with lock:
                yield
        except filelock.Timeout:
            raise LockError(f"another process holds the archive lock for more than {timeout:.0f} s",
                            file=str(self.state_dir / "lock")) from None

    # --- objects --------------------------------------------------------------------------
    def put(self, path: str | os.PathLike[str], **kw: Any) -> ObjectInfo:
        return self.store.put_file(path, **kw)

    def file_entry(
        self, path: str | os.PathLike[str], *, name: str | None = None, role: str = "other",
        media_type: str | None = None, description: str | None = None, tree: bool = False,
    ) -> FileEntry:
        """Store a file (unless ``tree``: it lives in the archive tree) and describe it as a FileEntry."""
        p = Path(path)
        rel = name or p.name
        if tree:
            from archive.digest import digest_file

            h = digest_file(p, adler32=True)
            info = ObjectInfo(h.sha256, h.size, h.adler32)
            locations = [f"tree:{p.absolute().relative_to(self.root).as_posix()}"]
        else:
            info = self.store.put_file(p, adler32=True)
            locations = []
        return FileEntry.model_validate(
            {"path": rel, "size": info.size, "sha256": info.digest, "adler32": info.adler32, "role": role,
             "media_type": media_type, "description": description, "locations": locations}
        )

    def find_object(self, digest: str) -> ObjectStore:
        for store in self.stores.values():
            if store.exists(digest):
                return store
        raise ObjectNotFoundError(f"object {digest} is in none of the stores ({', '.join(self.stores)})")

    def open_object(self, digest: str) -> VerifyingReader:
        return self.find_object(digest).open(digest)

    def object_path(self, digest: str) -> Path:
        """A local path to an object's bytes (for readers that need a file, e.g. pyarrow, h5py)."""
        for store in self.stores.values():
            p = store.local_path(digest)
            if p is not None:
                return p
        raise ObjectNotFoundError(f"object {digest} has no local copy in any store")

    def file_path(self, entry: FileEntry) -> Path:
        """Where a record's file can be read locally: the object store, else its tree location."""
        with contextlib.suppress(ObjectNotFoundError):
            return self.object_path(entry.sha256)
        for loc in entry.locations:
            if loc.startswith("tree:"):
                p = self.root / loc[5:]
                if p.exists():
                    return p
        raise ObjectNotFoundError(f"{entry.path} ({entry.sha256}) is not stored in this archive")

    # --- records --------------------------------------------------------------------------
    def add_record(self, record: RecordBase) -> Path:
        with self.lock():
            return self.catalog.add(record)

    def record(self, ref: str, version: str | None = None) -> RecordBase:
        return self.catalog.get(ref, version)

    def dataset(self, name: str, version: str | None = None) -> Dataset:
        """Column access to ``dataset/name`` (``name@version`` accepted; default: latest published, else latest)."""
        from archive.datasets import open_dataset

        return open_dataset(self, name, version)


def find_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest archive root: ``HEP_ARCHIVE_ROOT``, else the closest directory above ``start`` (or the
    current directory) that holds an ``archive.yaml``."""
    env = os.environ.get(ROOT_ENV)
    if start is None and env:
        return Path(env)
    here = Path(start or os.getcwd()).absolute()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d
    raise ArchiveRootNotFoundError(
        f"no archive root at or above this directory (no {CONFIG_NAME}); pass --root PATH, set {ROOT_ENV}, "
        "or create one with `hep-archive init PATH`",
        file=str(here),
    )


def open_archive(root: str | os.PathLike[str] | None = None) -> Archive:
    """Open an archive root (``None``: the nearest one above the current directory, or ``HEP_ARCHIVE_ROOT``)."""
    return Archive(find_root() if root is None else root)


def init_archive(
    path: str | os.PathLike[str], *, name: str | None = None, stores: list[dict[str, Any]] | None = None,
    exist_ok: bool = False, datalad: bool = False,
) -> Archive:
    """Create an archive root: ``archive.yaml``, the data folders, and a copy of the schemas in force.
    With ``datalad``, the root is also made a DataLad dataset whose ``objects/`` are annexed."""
    root = Path(path).absolute()
    cfg = root / CONFIG_NAME
    if cfg.exists() and not exist_ok:
        raise ValidationError("already an archive root", file=str(cfg))
    root.mkdir(parents=True, exist_ok=True)
    for d in DATA_DIRS:
        (root / d).mkdir(exist_ok=True)
    write_schemas(root / "schemas")
    if not cfg.exists():
        config = ArchiveConfig.model_validate({"name": name or root.name, **({"stores": stores} if stores else {})})
        from archive._fsutil import atomic_write_text

        atomic_write_text(cfg, dump_yaml(config.model_dump(mode="json")))
    gi = root / ".gitignore"
    if not gi.exists():
        gi.write_text(GITIGNORE)
    for d in ("recipes", "containers"):
        keep = root / d / ".keep"
        if not any((root / d).iterdir()):
            keep.touch()
    if datalad:
        from archive.storage._datalad import make_dataset, save

        make_dataset(root)
        save(root, "hep-archive: create archive")
    return Archive(root)
