"""The reference archive built by ``hep-archive demo``.

For now: an archive root with one small, real-format dataset file generated in code, its record published,
then ``validate`` and ``verify``. The reference analysis chain (issue 8) replaces the body of ``build_demo``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from archive._archive import Archive, init_archive
from archive.catalog import validate_archive
from archive.integrity import verify_archive
from archive.schema import parse_record

__all__ = ["build_demo"]


def build_demo(output: str | Path, *, events: int = 2000, device: str = "cpu") -> dict[str, Any]:
    out = Path(output)
    archive = Archive(out) if (out / "archive.yaml").exists() else init_archive(out, name="hep-archive-demo")
    rng = np.random.default_rng(20260)
    with tempfile.TemporaryDirectory() as tmp:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "pT_ll": rng.exponential(30.0, events).astype("float32"),
            "weights_nominal": rng.normal(1.0, 0.05, events).astype("float32"),
        })
        path = Path(tmp) / "events.parquet"
        pq.write_table(table, path, compression="zstd", use_dictionary=False, write_page_checksum=True)
        entry = archive.file_entry(path, role="events", media_type="application/vnd.apache.parquet")
    record = parse_record({
        "id": "dataset/demo-dimuon", "version": "1.0.0", "title": "Demo dimuon events",
        "description": f"{events} generated events (seed 20260) with a nominal weight.",
        "creators": [{"name": "hep-archive demo"}], "license": "CC0-1.0", "experiment": "DEMO",
        "keywords": ["demo", "muon"], "files": [entry.model_dump(mode="json", exclude_none=True)],
    })
    if not archive.catalog.exists(record.id, record.version):
        archive.add_record(record)
        archive.catalog.publish(record.ref)
    problems = validate_archive(archive)
    report = verify_archive(archive)
    return {"archive": str(archive.root), "records": len(list(archive.catalog.files())),
            "validate": "ok" if not problems else [str(p) for p in problems],
            "verify": report.counts(), "ok": not problems and report.ok}
