"""Release checks and BagIt/RO-Crate export against their plain baselines, side by side in one process.

A release of one dataset record holding ``--mb`` MiB of random bytes in ``--files`` files is
* checked (``check_release``: re-hash every member file) next to ``hashlib.sha256`` over the same files, and
* exported as a bag (copy + sha256 + sha512 while copying, manifests, RO-Crate) next to ``shutil.copyfile``
  of the same files (the least any export must do) and to sha256 + sha512 of the same files in one thread
  (the digests a bag must hold).
Medians of ``--repeat`` runs; figures go to ``benchmarks/results/bench_publish.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from archive._archive import init_archive
    from archive.publish import check_release, create_release, export_release
    from archive.schema import parse_record

    tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        archive = init_archive(tmp / "arc")
        src = tmp / "src"
        src.mkdir()
        per = args.mb * 1024 * 1024 // args.files
        files = []
        for i in range(args.files):
            p = src / f"part-{i}.bin"
            p.write_bytes(os.urandom(per))
            files.append(archive.file_entry(p, role="events").model_dump(mode="json"))
        record = parse_record({"id": "dataset/bench", "version": "1.0.0", "title": "bench", "description": "d",
                               "license": "CC0-1.0", "creators": [{"name": "Bench"}], "files": files}, source="b")
        archive.add_record(record)
        create_release(archive, "bench", "1.0.0", [record.ref], description="d", usage="u",
                       created=dt.date(2026, 1, 1))
        paths = [archive.object_path(f["sha256"]) for f in files]

        def timed(fn: object) -> float:
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            return time.perf_counter() - t0

        def sha_only() -> None:
            for p in paths:
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    while b := f.read(8 * 1024 * 1024):
                        h.update(b)

        def sha256_sha512() -> None:
            for p in paths:
                h1, h2 = hashlib.sha256(), hashlib.sha512()
                with open(p, "rb") as f:
                    while b := f.read(8 * 1024 * 1024):
                        h1.update(b)
                        h2.update(b)

        def copy_only(dest: Path) -> None:
            dest.mkdir()
            for i, p in enumerate(paths):
                shutil.copyfile(p, dest / f"{i}.bin")

        res: dict[str, list[float]] = {"check": [], "sha256": [], "bagit": [], "copy": [], "sha256_sha512": []}
        for r in range(args.repeat):
            res["sha256"].append(timed(sha_only))
            res["check"].append(timed(lambda: check_release(archive, "bench@1.0.0")))
            res["copy"].append(timed(lambda r=r: copy_only(tmp / f"copy{r}")))
            res["sha256_sha512"].append(timed(sha256_sha512))
            res["bagit"].append(timed(lambda r=r: export_release(archive, "bench@1.0.0", "bagit", tmp / f"bag{r}")))
            shutil.rmtree(tmp / f"copy{r}")
            shutil.rmtree(tmp / f"bag{r}")
        med = {k: statistics.median(v) for k, v in res.items()}
        out = {
            "mb": args.mb, "files": args.files, "repeat": args.repeat, "median_s": med,
            "ratio_check_over_sha256": med["check"] / med["sha256"],
            "ratio_bagit_over_copy": med["bagit"] / med["copy"],
            "ratio_bagit_over_sha256_sha512": med["bagit"] / med["sha256_sha512"],
            "load_average": os.getloadavg()[0],
        }
        target = Path(__file__).parent / "results" / "bench_publish.json"
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
