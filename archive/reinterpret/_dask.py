"""Scale-out: the same fill as one Dask task per dataset partition on a ``dask.distributed`` cluster.

``scheduler`` is ``"local"`` (an in-process ``LocalCluster``), ``"dask://HOST:PORT"`` / ``"tcp://HOST:PORT"``
(an existing scheduler), or a ``distributed.Client``. Datasets that know their archive are re-opened on the
worker from ``(root, name, version)`` (workers must see the same archive path); other dataset objects are
scattered to the workers. Tasks return float64 partials that the caller sums in partition order, so the result
is bit-identical to the single-process run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from archive.errors import MissingDependencyError, ValidationError
from archive.reinterpret._fill import FillPlan, Partial, fill_range

__all__ = ["run_on_dask"]


@lru_cache(maxsize=8)
def _open_on_worker(root: str, name: str, version: str) -> Any:
    from archive._archive import open_archive
    from archive.datasets import open_dataset

    return open_dataset(open_archive(root), name, version)


def _task_by_ref(root: str, name: str, version: str, plan: FillPlan, start: int, stop: int) -> Partial:
    return fill_range(_open_on_worker(root, name, version), plan, start, stop)


def _task_by_object(dataset: Any, plan: FillPlan, start: int, stop: int) -> Partial:
    return fill_range(dataset, plan, start, stop)


def _address(scheduler: str) -> str | None:
    s = scheduler.strip()
    if s == "local":
        return None
    for prefix, proto in (("dask://", "tcp://"), ("tcp://", "tcp://"), ("tls://", "tls://"),
                          ("inproc://", "inproc://")):
        if s.startswith(prefix):
            rest = s[len(prefix):]
            if not rest:
                break
            return proto + rest
    raise ValidationError(f"unknown scheduler {scheduler!r}; use 'local' or 'dask://HOST:PORT'", field="scheduler")


@contextlib.contextmanager
def _client(scheduler: Any) -> Iterator[Any]:
    try:
        import distributed
    except ImportError:  # pragma: no cover - in the analysis extra
        raise MissingDependencyError("dask.distributed", "install hep-archive[analysis]") from None
    if not isinstance(scheduler, str):
        yield scheduler  # an existing Client: the caller owns it
        return
    Client: Any = distributed.Client
    LocalCluster: Any = distributed.LocalCluster
    address = _address(scheduler)
    if address is None:
        with LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=20)
    except OSError as err:
        raise ValidationError(f"cannot reach the Dask scheduler at {address}: {err}; start one with "
                              "`dask scheduler` or use --scheduler local", field="scheduler") from None
    with client:
        yield client


def _locator(dataset: Any) -> tuple[str, str, str] | None:
    archive = getattr(dataset, "archive", None)
    root = getattr(archive, "root", None)
    if root is None:
        return None
    return str(root), str(dataset.name), str(dataset.version)


def run_on_dask(dataset: Any, plan: FillPlan, ranges: Sequence[tuple[int, int]], scheduler: Any) -> list[Partial]:
    """Fill each row range as one task; returns the partials in ``ranges`` order."""
    task_plan = FillPlan(**{**plan.__dict__, "nthreads": 1})
    with _client(scheduler) as client:
        loc = _locator(dataset)
        if loc is not None:
            futures = [client.submit(_task_by_ref, *loc, task_plan, a, b, pure=False) for a, b in ranges]
        else:
            [ds] = client.scatter([dataset], broadcast=True, hash=False)
            futures = [client.submit(_task_by_object, ds, task_plan, a, b, pure=False) for a, b in ranges]
        results: list[Partial] = client.gather(futures)
    return list(results)
