"""Fault injection: every stored format x every fault is detected by verify, and repair heals it from a replica.

Formats: raw bytes, Parquet, HDF5, Zarr (zip store), ONNX, an OCI layer blob, and YAML catalog records.
Faults: one flipped bit, truncation, zero length, two same-size objects swapped, a deleted object, an edited
published record. Each case runs on an archive with two stores and a copies policy of two (replicated), then
on one without a replica (detected, reported as lost).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from integrity_helpers import make_archive, publish

from archive._archive import Archive
from archive.integrity import repair, replicate, verify_archive

FORMATS = ["raw", "parquet", "hdf5", "zarr", "onnx", "oci-blob", "yaml-record"]
FAULTS = ["bitflip", "truncate", "zero-length", "swap", "delete", "edit-record"]


def _raw(path: Path, seed: int) -> None:
    path.write_bytes(np.random.default_rng(seed).bytes(4096))


def _parquet(path: Path, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.random.default_rng(seed).normal(size=256)
    pq.write_table(pa.table({"x": x}), path, write_page_checksum=True, use_dictionary=False, compression="none",
                   write_statistics=False)


def _hdf5(path: Path, seed: int) -> None:
    import h5py

    with h5py.File(path, "w", track_order=False) as f:
        f.create_dataset("w", data=np.random.default_rng(seed).normal(size=256))


def _zarr(path: Path, seed: int) -> None:
    import zarr
    from zarr.codecs import Crc32cCodec

    store = zarr.storage.ZipStore(str(path), mode="w")
    g = zarr.open_group(store, mode="w")
    g.create_array("w", shape=(256,), chunks=(128,), dtype="f8", compressors=[Crc32cCodec()])[:] = (
        np.random.default_rng(seed).normal(size=256))
    store.close()


def _onnx(path: Path, seed: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(seed).normal(size=(4,)).astype("float32"), name="W")
    graph = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _oci_blob(path: Path, seed: int) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = np.random.default_rng(seed).bytes(1000)
        info = tarfile.TarInfo("usr/bin/tool")
        info.size, info.mtime, info.mode = len(data), 0, 0o755
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


WRITERS: dict[str, Callable[[Path, int], None]] = {
    "raw": _raw, "parquet": _parquet, "hdf5": _hdf5, "zarr": _zarr, "onnx": _onnx, "oci-blob": _oci_blob,
    "yaml-record": _raw,
}
SUFFIX = {"raw": ".bin", "parquet": ".parquet", "hdf5": ".h5", "zarr": ".zarr.zip", "onnx": ".onnx",
          "oci-blob": ".tar", "yaml-record": ".bin"}


def _writable(p: Path) -> Path:
    if p.is_symlink():
        p = p.resolve()
    os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    return p


def _build(tmp_path: Path, fmt: str, replicas: bool) -> tuple[Archive, list[Path], dict[str, bytes]]:
    stores = [{"name": "local", "url": "objects"}]
    if replicas:
        stores.append({"name": "mirror", "url": str(tmp_path / "mirror")})
    a = make_archive(tmp_path / "arc", stores, copies=2 if replicas else 1)
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = []
    for seed, name in ((1, "alpha"), (2, "bravo")):
        p = inputs / f"{name}{SUFFIX[fmt]}"
        WRITERS[fmt](p, seed)
        files.append(p)
        publish(a, [p], name)
    assert files[0].stat().st_size == files[1].stat().st_size, "swap needs two same-size objects"
    if replicas:
        assert replicate(a).ok
    assert verify_archive(a).ok
    original = {f.name: f.read_bytes() for f in files}
    targets = ([a.catalog.path_for("dataset/alpha", "1.0.0"), a.catalog.path_for("dataset/bravo", "1.0.0")]
               if fmt == "yaml-record" else [a.object_path(a.record("dataset/alpha@1.0.0").files[0].sha256),
                                             a.object_path(a.record("dataset/bravo@1.0.0").files[0].sha256)])
    if fmt == "yaml-record":
        assert targets[0].stat().st_size == targets[1].stat().st_size
        original.update({str(t): t.read_bytes() for t in targets})
    return a, targets, original


def _inject(a: Archive, fault: str, targets: list[Path]) -> None:
    first, second = targets
    if fault == "bitflip":
        p = _writable(first)
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x04
        p.write_bytes(bytes(data))
    elif fault == "truncate":
        p = _writable(first)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif fault == "zero-length":
        _writable(first).write_bytes(b"")
    elif fault == "swap":
        p, q = _writable(first), _writable(second)
        a_bytes, b_bytes = p.read_bytes(), q.read_bytes()
        p.write_bytes(b_bytes)
        q.write_bytes(a_bytes)
    elif fault == "delete":
        _writable(first)
        first.unlink()
    elif fault == "edit-record":
        path = a.catalog.path_for("dataset/alpha", "1.0.0")
        text = path.read_text()
        path.write_text(text.replace("title: Test record alpha", "title: Test record ALPHA (quietly edited)"))
        assert path.read_text() != text


@pytest.mark.parametrize("fmt", FORMATS)
def test_detected_and_repaired(tmp_path: Path, fmt: str) -> None:
    """All six faults, one after the other, on the same replicated archive (each healed before the next)."""
    a, targets, original = _build(tmp_path, fmt, replicas=True)
    detected = healed_ok = 0
    for fault in FAULTS:
        _inject(a, fault, targets)
        rep = verify_archive(a)
        assert not rep.ok, f"{fault} on {fmt} was not detected"
        detected += 1
        healed = repair(a)
        assert healed.ok and healed.actions, (fault, healed.as_dict())
        again = verify_archive(a)
        assert again.ok, (fault, again.as_dict())
        healed_ok += 1
        for t in targets:  # the bytes are back, byte for byte
            if str(t) in original:
                assert t.read_bytes() == original[str(t)], fault
        for name in ("alpha", "bravo"):
            entry = a.record(f"dataset/{name}@1.0.0").files[0]
            assert a.store.read_bytes(entry.sha256) == original[entry.path], fault
    assert detected == healed_ok == len(FAULTS)


@pytest.mark.parametrize("fault", ["bitflip", "truncate", "zero-length", "swap", "delete"])
def test_without_replica_detected_and_reported_lost(tmp_path: Path, fault: str) -> None:
    a, targets, _ = _build(tmp_path, "parquet", replicas=False)
    _inject(a, fault, targets)
    rep = verify_archive(a)
    assert not rep.ok
    bad = {o.digest for o in rep.objects if o.state != "ok"}
    healed = repair(a)
    assert not healed.ok and set(healed.lost) == bad
    # nothing was deleted: the damaged copies are still there for forensics
    for t in targets:
        if fault != "delete" or t != targets[0]:
            assert t.exists()


def test_real_oci_image_blobs(tmp_path: Path) -> None:
    """A real busybox OCI image added by the containers layer: a rotten layer blob is found and healed."""
    container = pytest.importorskip("archive.container")
    testing = pytest.importorskip("archive.container.testing")
    try:
        layout = testing.build_busybox_oci(tmp_path / "oci")
    except Exception as err:  # MissingDependencyError when busybox-static is absent
        pytest.skip(str(err))
    a = make_archive(tmp_path / "arc", [{"name": "local", "url": "objects"},
                                        {"name": "mirror", "url": str(tmp_path / "mirror")}], copies=2)
    rec = container.add_image(a, layout, name="busybox", version="1.0.0")
    assert replicate(a).ok and verify_archive(a).ok
    blobs = sorted(rec.files, key=lambda f: f.size)
    victim = blobs[-1]  # the largest blob: the busybox layer
    p = _writable(a.object_path(victim.sha256))
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0x80
    p.write_bytes(bytes(data))
    rep = verify_archive(a)
    assert [o.digest for o in rep.objects if o.state != "ok"] == [victim.sha256]
    assert repair(a).ok and verify_archive(a).ok
