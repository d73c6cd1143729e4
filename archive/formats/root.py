"""ROOT files through uproot: TTree and RNTuple readers (flat and jagged), and a TTree writer for exports.

Jagged branches are kept as lists (arrow ``large_list`` in batches, awkward on reading). Counter branches that
uproot itself adds on writing (``n<branch>`` counting exactly ``<branch>``) are skipped on reading, so an
exported file reads back with the same columns; a file's own counters (``NJet`` for ``Jet_Px[NJet]``) are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import MissingDependencyError, ValidationError
from archive.formats._base import Batch, ColumnInfo, Source

__all__ = ["RootSource", "awkward_dtype", "write_root"]


def _uproot() -> Any:
    try:
        import uproot
    except ImportError:  # pragma: no cover - installed with the package
        raise MissingDependencyError("uproot", "pip install uproot awkward") from None
    return uproot


def awkward_dtype(type_str: str) -> str | None:
    """Map an awkward type string (``var * float32``, ``?int32``, ``string``) to a column dtype, or None."""
    t = type_str.replace("?", "")
    if t in ("string", "bytes"):
        return t
    if t.startswith("var * "):
        inner = t[len("var * "):]
        return f"var * {inner}" if _numeric(inner) else None
    return t if _numeric(t) else None


def _numeric(t: str) -> bool:
    try:
        return np.dtype(t).kind in "biuf"
    except TypeError:
        return False


def to_batch_value(arr: Any, dtype: str) -> Any:
    """An awkward column as a batch value: numpy for flat numbers, arrow for jagged lists and strings."""
    import awkward as ak

    if dtype.startswith("var * ") or dtype in ("string", "bytes"):
        return ak.to_arrow(arr, extensionarray=False)
    return np.asarray(ak.to_numpy(arr))


@dataclass
class RootSource(Source):
    """A TTree or RNTuple, read in entry ranges."""

    tree_name: str = ""
    _file: Any = None
    _obj: Any = None
    _names: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, *, tree: str | None = None, columns: Sequence[str] | None = None,
             **_: Any) -> RootSource:
        uproot = _uproot()
        try:
            f = uproot.open(path)
        except Exception as exc:  # uproot raises many kinds
            raise ValidationError(f"not a readable ROOT file: {exc}", file=str(path)) from None
        try:
            classes = {k.split(";")[0]: v for k, v in f.classnames().items()}
            kinds = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")
            candidates = [k for k, v in classes.items() if v in kinds]
            if tree is None:
                if not candidates:
                    raise ValidationError("no TTree or RNTuple in the file", file=str(path))
                if len(candidates) > 1:
                    raise ValidationError(f"several trees ({', '.join(candidates)}); choose one with tree=",
                                          file=str(path))
                tree = candidates[0]
            if tree not in classes:
                raise ValidationError(f"no tree {tree!r} (trees: {', '.join(candidates)})", file=str(path))
            obj = f[tree]
            rntuple = "RNTuple" in classes[tree]
            if rntuple:
                names = [k for k in obj.keys() if "." not in k and not k.startswith("_")]  # noqa: SIM118
            else:
                names = [k for k in obj.keys(recursive=False)]
                for b in obj.branches:
                    cb = getattr(b, "count_branch", None)
                    if cb is not None and cb.name == f"n{b.name}" and cb.name in names:
                        names.remove(cb.name)
            if columns is not None:
                missing = [c for c in columns if c not in names]
                if missing:
                    raise ValidationError(f"no such branches: {', '.join(missing)}", file=str(path), field="columns")
                names = list(columns)
            probe = obj.arrays(names, entry_start=0, entry_stop=min(1, obj.num_entries))
            cols: list[ColumnInfo] = []
            bad: list[str] = []
            for n in names:
                t = str(probe[n].type).split(" * ", 1)[1]
                dt = awkward_dtype(t)
                if dt is None:
                    bad.append(f"{n} ({t})")
                else:
                    cols.append(ColumnInfo(n, dt))
            if bad:
                raise ValidationError(
                    f"unsupported branch types (nested records or lists of lists): {', '.join(bad[:5])}; "
                    "ingest the other branches with columns=", file=str(path), field=tree)
            dups = sorted({n for n in names if names.count(n) > 1})
            if dups:
                raise ValidationError(f"duplicate column names: {', '.join(dups)}", file=str(path), field=tree)
        except BaseException:
            f.close()
            raise
        meta: dict[str, Any] = {"_tree": tree, "_container": "RNTuple" if rntuple else "TTree"}
        return cls(path=path, format="root", num_rows=int(obj.num_entries), columns=cols, metadata=meta,
                   tree_name=tree, _file=f, _obj=obj, _names=[c.name for c in cols])

    def iter_batches(self, batch_rows: int) -> Iterator[Batch]:
        dtypes = {c.name: c.dtype for c in self.columns}
        for start in range(0, self.num_rows, batch_rows):
            stop = min(start + batch_rows, self.num_rows)
            arrs = self._obj.arrays(self._names, entry_start=start, entry_stop=stop)
            yield {n: to_batch_value(arrs[n], dtypes[n]) for n in self._names}

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_root(path: Path, columns: Sequence[ColumnInfo], batches: Iterator[Batch], *, tree: str = "events",
               progress: Any = None) -> Path:
    """Write a TTree readable by uproot and ROOT; jagged columns get uproot's ``n<name>`` counter branches.

    Raises:
        ValidationError: for string or dense columns (not written by uproot); choose other columns.
    """
    import awkward as ak

    uproot = _uproot()
    for c in columns:
        if c.dtype in ("string", "bytes") or c.dense:
            raise ValidationError(f"column {c.name!r} ({c.dtype}) cannot be written to a ROOT TTree by uproot; "
                                  "leave it out with --columns or export parquet", field=c.name)
    branch_types: dict[str, Any] = {}
    for c in columns:
        branch_types[c.name] = c.dtype if c.jagged else np.dtype(c.dtype)
    with uproot.recreate(path) as f:
        t = f.mktree(tree, branch_types)
        for batch in batches:
            data = {}
            for c in columns:
                v = batch[c.name]
                data[c.name] = ak.from_arrow(v, highlevel=True) if c.jagged else v
            t.extend(data)
            if progress is not None:
                progress(len(batch[columns[0].name]) if columns else 0)
    return path
