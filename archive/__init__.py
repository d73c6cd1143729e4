"""hep-archive: keep particle-physics results alive for decades.

Layers, in the order data flows: ``formats`` (ingest/export) -> ``storage`` (content-addressed objects over
fsspec) -> ``catalog`` (records, index, query; models in ``schema``) -> ``execution`` (engine, backends,
cache, provenance) -> ``reinterpret`` -> ``publish``. ``integrity`` checks what is stored.

Heavy parts (torch, onnxruntime, datalad, reana-client, uproot) are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archive import errors

if TYPE_CHECKING:
    from archive._archive import Archive, init_archive, open_archive

__version__ = "0.1.0"
__all__ = ["Archive", "__version__", "errors", "init_archive", "open_archive"]

_LAZY = {"Archive": "archive._archive", "open_archive": "archive._archive", "init_archive": "archive._archive"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
