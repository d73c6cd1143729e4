"""What changed between two versions of a dataset (or two datasets): columns, rows, families, tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archive.datasets._dataset import open_dataset

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["diff"]


def diff(archive: Archive, a: str, b: str) -> dict[str, Any]:
    """Compare ``NAME@V1`` with ``NAME@V2`` by the record alone (column digests, dtypes, row counts).

    Returns:
        ``{"a", "b", "rows": {"a", "b", "changed"}, "columns_added", "columns_removed", "columns_changed":
        [{"name", "reason"}], "families_added", "families_removed", "families_changed", "tables_reused",
        "identical"}``.
    """
    da, db = open_dataset(archive, a), open_dataset(archive, b)
    va = {v.name: v for v in da.record.dataset.variables}
    vb = {v.name: v for v in db.record.dataset.variables}
    changed = []
    for n in va:
        if n not in vb:
            continue
        x, y = va[n], vb[n]
        reasons = []
        if x.dtype != y.dtype or (x.shape or []) != (y.shape or []):
            reasons.append(f"dtype {x.dtype}{x.shape or ''} -> {y.dtype}{y.shape or ''}")
        if x.digest and y.digest and x.digest != y.digest and not reasons:
            reasons.append("values differ")
        for attr in ("unit", "description", "level", "expression"):
            if getattr(x, attr) != getattr(y, attr):
                reasons.append(f"{attr}: {getattr(x, attr)!r} -> {getattr(y, attr)!r}")
        if reasons:
            changed.append({"name": n, "reason": "; ".join(reasons)})
    fa = {f.name: f for f in da.weight_families}
    fb = {f.name: f for f in db.weight_families}
    sha_a = {f.sha256 for f in da.record.files}
    out: dict[str, Any] = {
        "a": f"{da.name}@{da.version}", "b": f"{db.name}@{db.version}",
        "rows": {"a": da.num_rows, "b": db.num_rows, "changed": da.num_rows != db.num_rows},
        "columns_added": [n for n in vb if n not in va],
        "columns_removed": [n for n in va if n not in vb],
        "columns_changed": changed,
        "families_added": [n for n in fb if n not in fa],
        "families_removed": [n for n in fa if n not in fb],
        "families_changed": [n for n in fa if n in fb and fa[n] != fb[n]],
        "tables_reused": [t.name for t in db.record.dataset.tables
                          if any(f.path == t.path and f.sha256 in sha_a for f in db.record.files)],
    }
    out["identical"] = not (out["rows"]["changed"] or out["columns_added"] or out["columns_removed"] or changed
                            or out["families_added"] or out["families_removed"] or out["families_changed"])
    return out
