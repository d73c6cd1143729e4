"""Container benchmark: the safe layer unpacker and ``add_image`` against baselines run side by side.

* unpack: ``archive.container.unpack_layers`` vs ``tarfile.extractall(filter="tar")`` (stdlib, follows no
  safety rules of ours) vs GNU ``tar -xf`` (when installed), on a generated layer (many small files, symlinks,
  one large file), plain and gzip;
* add: ``add_image`` (verify, store byte for byte, diff_id check) vs copying the same blobs with
  ``shutil.copyfile``.

Writes ``benchmarks/results/bench_containers.json``. Usage: ``python benchmarks/bench_containers.py [--files N]``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from archive._archive import init_archive
from archive.container import add_image, unpack_layers
from archive.container.testing import build_busybox_oci
from archive.digest import digest_bytes, hex_of

RESULTS = Path(__file__).parent / "results" / "bench_containers.json"


def make_layer(n_files: int, big_mib: int) -> bytes:
    rng = os.urandom
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in range(max(1, n_files // 50)):
            info = tarfile.TarInfo(f"usr/share/d{d:04d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for i in range(n_files):
            data = rng(1024)
            info = tarfile.TarInfo(f"usr/share/d{i // 50:04d}/f{i:06d}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
            if i % 10 == 0:
                link = tarfile.TarInfo(f"usr/share/d{i // 50:04d}/l{i:06d}")
                link.type, link.linkname = tarfile.SYMTYPE, f"/usr/share/d{i // 50:04d}/f{i:06d}"
                tar.addfile(link)
        big = rng(big_mib << 20)
        info = tarfile.TarInfo("opt/big.bin")
        info.size = len(big)
        tar.addfile(info, io.BytesIO(big))
    return buf.getvalue()


def timed(fn: Callable[[Path], None], work: Path, repeat: int) -> float:
    times = []
    for i in range(repeat):
        dst = work / f"run{i}-{time.perf_counter_ns()}"
        dst.mkdir()
        t0 = time.perf_counter()
        fn(dst)
        times.append(time.perf_counter() - t0)
        shutil.rmtree(dst)
    return statistics.median(times)


def run_overhead(work: Path, layout: Path, repeat: int) -> dict[str, float | str]:
    """Median wall time of ``true`` per runner (image already unpacked), as ratios against ``local``."""
    from archive.container import Mount, SandboxSpec, get_runner, unpacked_root

    arc = init_archive(work / "run-arc")
    add_image(arc, layout, name="bb")
    rootfs = unpacked_root(arc, "bb")
    ws = work / "ws"
    ws.mkdir()
    out: dict[str, float | str] = {}
    for name in ("local", "bwrap", "podman"):
        runner = get_runner(name)
        reason = runner.available()
        if reason is not None:
            out[f"{name}_skipped"] = reason
            continue
        spec = SandboxSpec(argv=["true"], rootfs=None if name == "local" else rootfs,
                           mounts=[Mount(ws, "/workspace", read_only=False)])
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            runner.run(spec, stdout=work / "o", stderr=work / "e")
            times.append(time.perf_counter() - t0)
        out[f"{name}_true_s"] = statistics.median(times)
    for name in ("bwrap", "podman"):
        if f"{name}_true_s" in out:
            out[f"{name}_ratio_vs_local"] = float(out[f"{name}_true_s"]) / float(out["local_true_s"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000, help="small files in the generated layer")
    ap.add_argument("--big-mib", type=int, default=32, help="size of the one large file")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, object] = {"machine": platform.machine(), "python": platform.python_version(),
                                  "files": args.files, "big_mib": args.big_mib, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp:
        work = Path(tmp)
        plain = make_layer(args.files, args.big_mib)
        layers = {"tar": plain, "tar+gzip": gzip.compress(plain, compresslevel=6, mtime=0)}
        unpack: dict[str, dict[str, float]] = {}
        for kind, data in layers.items():
            path = work / f"layer.{kind}"
            path.write_bytes(data)

            def stdlib(dst: Path, path: Path = path) -> None:
                with tarfile.open(path) as t:
                    t.extractall(dst, filter="tar")

            def ours(dst: Path, path: Path = path) -> None:
                unpack_layers([path], dst)

            row = {"stdlib_extractall_s": timed(stdlib, work, args.repeat), "safe_unpack_s": timed(ours, work,
                                                                                                  args.repeat)}
            if shutil.which("tar"):
                def gnu(dst: Path, path: Path = path) -> None:
                    subprocess.run(["tar", "-xf", str(path), "-C", str(dst)], check=True)

                row["gnu_tar_s"] = timed(gnu, work, args.repeat)
                row["ratio_vs_gnu_tar"] = row["safe_unpack_s"] / row["gnu_tar_s"]
            row["ratio_vs_stdlib"] = row["safe_unpack_s"] / row["stdlib_extractall_s"]
            row["layer_bytes"] = len(data)
            unpack[kind] = row
        results["unpack"] = unpack
        # add_image vs copying the blobs
        lay = build_busybox_oci(work / "img")
        big = layers["tar+gzip"]
        blobs = lay / "blobs/sha256"
        manifest = json.loads((blobs / hex_of(json.loads((lay / "index.json").read_text())["manifests"][0]["digest"]))
                              .read_bytes())
        config = json.loads((blobs / hex_of(manifest["config"]["digest"])).read_bytes())
        (blobs / hex_of(digest_bytes(big))).write_bytes(big)
        config["rootfs"]["diff_ids"].append(digest_bytes(plain))
        cb = json.dumps(config).encode()
        (blobs / hex_of(digest_bytes(cb))).write_bytes(cb)
        manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": digest_bytes(big), "size": len(big)})
        manifest["config"] = {**manifest["config"], "digest": digest_bytes(cb), "size": len(cb)}
        mb = json.dumps(manifest).encode()
        (blobs / hex_of(digest_bytes(mb))).write_bytes(mb)
        (lay / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": manifest["mediaType"], "digest": digest_bytes(mb), "size": len(mb)}]}))
        size = sum(p.stat().st_size for p in blobs.iterdir())

        arcs = iter([init_archive(work / f"arc{i}") for i in range(args.repeat)])

        def add(dst: Path) -> None:
            add_image(next(arcs), lay, name="bench")

        def copy(dst: Path) -> None:
            for p in blobs.iterdir():
                shutil.copyfile(p, dst / p.name)
                with open(dst / p.name, "rb") as f:
                    os.fsync(f.fileno())

        t_add, t_copy = timed(add, work, args.repeat), timed(copy, work, args.repeat)
        results["add"] = {"image_bytes": size, "add_image_s": t_add, "copy_blobs_s": t_copy,
                          "ratio_vs_copy": t_add / t_copy}
        results["run"] = run_overhead(work, build_busybox_oci(work / "small"), args.repeat * 3)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
