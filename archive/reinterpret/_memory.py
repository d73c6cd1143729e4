"""In-memory datasets: awkward arrays, pandas frames and dicts of columns in the :class:`DatasetLike` shape.

``histogram(data, ...)`` wraps such data with :func:`as_dataset`, so a notebook can histogram what it already
holds, with the same expressions, kernels and uncertainty rules as an archived dataset. Weight families are
given as records (``WeightFamily`` objects or dicts of the same fields); without any, every event weighs 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archive.errors import ValidationError

__all__ = ["InMemoryDataset", "as_dataset", "is_in_memory"]

#: rows per partition of an in-memory dataset (partitions are only the unit of work here)
PARTITION_ROWS = 1_048_576


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def is_in_memory(data: Any) -> bool:
    """Whether ``data`` is in-memory columns (awkward array, pandas frame, mapping of arrays), not a dataset."""
    return isinstance(data, Mapping) or _module(data) in ("awkward", "pandas")


class InMemoryDataset:
    """Columns held in memory, with the :class:`~archive.reinterpret.DatasetLike` methods histogramming uses."""

    def __init__(self, columns: Mapping[str, Any], weight_families: Sequence[Any] = (), *, name: str = "in-memory",
                 version: str = "0", partition_rows: int = PARTITION_ROWS) -> None:
        if not columns:
            raise ValidationError("the in-memory data has no columns", field="dataset")
        self.data = dict(columns)
        lengths = {c: len(v) for c, v in self.data.items()}
        if len(set(lengths.values())) > 1:
            raise ValidationError(f"in-memory columns differ in length: {lengths}", field="dataset")
        self.name, self.version = name, version
        self.num_rows = next(iter(lengths.values()))
        self.columns = list(self.data)
        self.partition_rows = max(1, int(partition_rows))
        self.jagged_columns = [c for c, v in self.data.items() if not isinstance(v, np.ndarray)]
        self.weight_families = [_family(f) for f in weight_families]

    def partitions(self) -> list[tuple[int, int]]:
        n, step = self.num_rows, self.partition_rows
        return [(a, min(a + step, n)) for a in range(0, n, step)] or [(0, 0)]

    def read_rows(self, columns: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        return {c: self.data[c][start:stop] for c in columns}


def _family(f: Any) -> Any:
    if isinstance(f, Mapping):
        import pydantic

        from archive.schema.v1.dataset import WeightFamily

        try:
            return WeightFamily.model_validate(dict(f))
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationError(f"weight family {f.get('name', '?')!r}: {where}: {first['msg']}",
                                  field="weight_families") from None
    return f


def _column(name: str, v: Any) -> Any:
    """A flat numeric column as numpy, a list per event as an awkward array."""
    import awkward as ak

    arr = v if isinstance(v, ak.Array) else None
    if arr is None:
        if isinstance(v, np.ndarray) and v.dtype != object:
            if v.ndim != 1:
                raise ValidationError(f"in-memory column {name!r} has shape {v.shape}; give one number or one list "
                                      "per event", field=name)
            return v
        arr = ak.Array(v.tolist() if hasattr(v, "tolist") else list(v))
    if arr.ndim == 1 and not str(arr.type.content).startswith(("?", "option")):
        try:
            return np.asarray(ak.to_numpy(arr))
        except (ValueError, TypeError):
            pass
    if arr.fields:
        raise ValidationError(f"in-memory column {name!r} holds records; give its fields as columns", field=name)
    return arr


def as_dataset(data: Any, weight_families: Sequence[Any] = (), *, name: str = "in-memory") -> InMemoryDataset:
    """Wrap an awkward record array, a pandas DataFrame or a mapping of arrays as a dataset.

    Args:
        data: ``ak.Array`` of records (its fields are the columns; jagged fields stay lists per event),
            ``pandas.DataFrame`` (its columns; cells holding lists become jagged columns) or ``{name: array}``.
        weight_families: the data's weight families (``WeightFamily`` records or dicts with their fields); none:
            every event weighs 1.
        name: the dataset name used in results.

    Raises:
        ValidationError: no columns, columns of different lengths, records or 2-D arrays as columns.
    """
    mod = _module(data)
    if mod == "awkward":
        if not data.fields:
            raise ValidationError("an awkward array given as data must be an array of records (one field per "
                                  "column), e.g. ak.zip({'Muon_pt': pt, ...}, depth_limit=1)", field="dataset")
        columns = {f: _column(f, data[f]) for f in data.fields}
    elif mod == "pandas":
        columns = {str(c): _column(str(c), data[c].to_numpy()) for c in data.columns}
    elif isinstance(data, Mapping):
        columns = {str(c): _column(str(c), v) for c, v in data.items()}
    else:  # pragma: no cover - is_in_memory() chose this path
        raise ValidationError(f"cannot histogram a {type(data).__name__}", field="dataset")
    return InMemoryDataset(columns, weight_families, name=name)
