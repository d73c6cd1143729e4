"""The safe unpacker: whiteouts, links, and crafted malicious layers refused or neutralised."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from archive.container import container_record, unpack_layers, unpacked_root
from archive.container._unpack import ensure_mountpoint
from archive.container.testing import Entry, layer_tar
from archive.errors import IntegrityError, UnsafeInputError


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    """``root`` (the target) and ``outside`` (a host directory with a file that must never change)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("host file\n")
    return {"root": root, "outside": outside, "tmp": tmp_path}


def _layers(tmp: Path, *layers: list[Entry]) -> list[Path]:
    out = []
    for i, entries in enumerate(layers):
        p = tmp / f"layer{i}.tar"
        p.write_bytes(layer_tar(entries))
        out.append(p)
    return out


def _snapshot(tmp: Path) -> set[str]:
    """Everything under tmp except the target root and the layer files."""
    return {p.relative_to(tmp).as_posix() for p in tmp.rglob("*")
            if not p.relative_to(tmp).as_posix().startswith("root") and not p.name.startswith("layer")}


def _refused(box: dict[str, Path], match: str, *layers: list[Entry]) -> UnsafeInputError:
    before = _snapshot(box["tmp"])
    with pytest.raises(UnsafeInputError, match=match) as exc:
        unpack_layers(_layers(box["tmp"], *layers), box["root"])
    assert _snapshot(box["tmp"]) == before, "something was created outside the target"
    assert (box["outside"] / "keep.txt").read_text() == "host file\n"
    assert "\n" not in str(exc.value)
    return exc.value


def test_dotdot_name_refused(box: dict[str, Path]) -> None:
    err = _refused(box, r"'\.\.' component", [("../escape.txt", "file", b"x", 0o644)])
    assert "'../escape.txt'" in str(err) and "layer0.tar" in str(err)
    assert not (box["tmp"] / "escape.txt").exists()


def test_absolute_name_refused(box: dict[str, Path]) -> None:
    target = box["outside"] / "abs.txt"
    _refused(box, "absolute name", [(str(target), "file", b"x", 0o644)])
    assert not target.exists()


def test_relative_symlink_escape_refused(box: dict[str, Path]) -> None:
    _refused(box, "climbs above the image root",
             [("evil", "symlink", "../../..", 0o777), ("evil/escape.txt", "file", b"x", 0o644)])


def test_symlink_escape_across_layers_refused(box: dict[str, Path]) -> None:
    _refused(box, "climbs above the image root",
             [("etc/", "dir", "", 0o755), ("etc/up", "symlink", "../../outside", 0o777)],
             [("etc/up/keep.txt", "file", b"overwritten", 0o644)])


def test_absolute_symlink_parent_is_resolved_inside_root(box: dict[str, Path]) -> None:
    outside = str(box["outside"])
    report = unpack_layers(_layers(box["tmp"], [("evil", "symlink", outside, 0o777),
                                                ("evil/keep.txt", "file", b"pwned", 0o644),
                                                ("slash", "symlink", "/", 0o777),
                                                ("slash/at-root.txt", "file", b"r", 0o644)]), box["root"])
    assert (box["outside"] / "keep.txt").read_text() == "host file\n"
    inside = box["root"] / outside.lstrip("/") / "keep.txt"
    assert inside.read_text() == "pwned"
    assert (box["root"] / "at-root.txt").read_text() == "r"
    assert os.readlink(box["root"] / "evil") == outside  # absolute symlinks are kept as they are
    assert any("resolved inside the image root" in n for n in report.notes)


def test_file_replaces_symlink_never_writes_through_it(box: dict[str, Path]) -> None:
    target = box["outside"] / "keep.txt"
    unpack_layers(_layers(box["tmp"], [("f", "symlink", str(target), 0o777)],
                          [("f", "file", b"new", 0o644)]), box["root"])
    assert target.read_text() == "host file\n"
    f = box["root"] / "f"
    assert not f.is_symlink() and f.read_text() == "new"


def test_hardlinks_checked(box: dict[str, Path]) -> None:
    _refused(box, "hardlink to the absolute path", [("h", "hardlink", "/etc/passwd", 0o644)])
    _refused(box, r"'\.\.' component", [("h", "hardlink", "../outside/keep.txt", 0o644)])
    _refused(box, "not an existing regular file",
             [("s", "symlink", str(box["outside"] / "keep.txt"), 0o777), ("h", "hardlink", "s", 0o644)])
    _refused(box, "not an existing regular file", [("h", "hardlink", "missing.txt", 0o644)])
    unpack_layers(_layers(box["tmp"], [("a.txt", "file", b"same", 0o644), ("b.txt", "hardlink", "a.txt", 0o644)]),
                  box["root"])
    assert os.stat(box["root"] / "a.txt").st_ino == os.stat(box["root"] / "b.txt").st_ino


def test_devices_skipped_and_setuid_dropped(box: dict[str, Path]) -> None:
    report = unpack_layers(_layers(box["tmp"], [("dev/", "dir", "", 0o755), ("dev/null", "chr", "", 0o666),
                                                ("fifo", "fifo", "", 0o644),
                                                ("suid", "file", b"#!/bin/sh\n", 0o6755)]), box["root"])
    assert not os.path.lexists(box["root"] / "dev/null") and not os.path.lexists(box["root"] / "fifo")
    mode = os.stat(box["root"] / "suid").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & 0o755 == 0o755
    assert report.skipped == 2
    assert any("device node skipped" in n for n in report.notes)
    assert any("setuid/setgid bit dropped" in n for n in report.notes)


def test_whiteouts_and_opaque_directories(box: dict[str, Path]) -> None:
    lower: list[Entry] = [("a/", "dir", "", 0o755), ("a/x", "file", b"x", 0o644), ("b.txt", "file", b"b", 0o644),
                          ("d/", "dir", "", 0o755), ("d/old", "file", b"o", 0o644), ("d/sub/", "dir", "", 0o755),
                          ("d/sub/deep", "file", b"d", 0o644), ("keep", "file", b"k", 0o644)]
    upper: list[Entry] = [("new.txt", "file", b"n", 0o644), (".wh.new.txt", "file", b"", 0o644),
                          (".wh.a", "file", b"", 0o644), (".wh.b.txt", "file", b"", 0o644),
                          ("d/.wh..wh..opq", "file", b"", 0o644), ("d/fresh", "file", b"f", 0o644)]
    report = unpack_layers(_layers(box["tmp"], lower, upper), box["root"])
    root = box["root"]
    assert not (root / "a").exists() and not (root / "b.txt").exists()
    assert sorted(p.name for p in (root / "d").iterdir()) == ["fresh"]
    assert (root / "keep").read_text() == "k"
    assert (root / "new.txt").read_text() == "n", "a whiteout never hides an entry of its own layer"
    assert not any(p.name.startswith(".wh.") for p in root.rglob("*"))
    assert report.whiteouts == 4


def test_whiteout_through_absolute_symlink_stays_inside(box: dict[str, Path]) -> None:
    unpack_layers(_layers(box["tmp"], [("evil", "symlink", str(box["outside"]), 0o777)],
                          [("evil/.wh.keep.txt", "file", b"", 0o644)]), box["root"])
    assert (box["outside"] / "keep.txt").read_text() == "host file\n"
    _refused(box, "invalid name", [(".wh..", "file", b"", 0o644)])


def test_symlink_loop_and_non_directory_parent_refused(box: dict[str, Path]) -> None:
    _refused(box, "more than 40 symlinks", [("l1", "symlink", "l2", 0o777), ("l2", "symlink", "l1", 0o777),
                                            ("l1/x", "file", b"x", 0o644)])
    _refused(box, "is not a directory", [("f", "file", b"x", 0o644), ("f/x", "file", b"x", 0o644)])


def test_not_a_tar_refused(box: dict[str, Path]) -> None:
    bad = box["tmp"] / "junk.bin"
    bad.write_bytes(gzip.compress(b"this is not a tar archive" * 40))
    with pytest.raises(UnsafeInputError, match="tar"):
        unpack_layers([bad], box["root"])


def test_mountpoint_cannot_escape(box: dict[str, Path]) -> None:
    unpack_layers(_layers(box["tmp"], [("ws", "symlink", "../../outside", 0o777)]), box["root"])
    with pytest.raises(UnsafeInputError, match="mount point"):
        ensure_mountpoint(box["root"], "/ws/inner", directory=True)
    p = ensure_mountpoint(box["root"], "/data/in", directory=True)
    assert p == box["root"] / "data" / "in" and p.is_dir()


def test_unpacked_root_cached_with_skeleton(image_archive: Any) -> None:
    root = unpacked_root(image_archive, "busybox-test")
    rec = container_record(image_archive, "busybox-test")
    assert root.parent.name == rec.container.manifest_digest.split(":")[1]
    for d in ("proc", "dev", "tmp", "workspace", "sys"):
        assert (root / d).is_dir()
    assert not (root / "etc/removed.txt").exists()
    assert sorted(p.name for p in (root / "opt/data").iterdir()) == ["new.txt"]
    assert os.readlink(root / "usr/bin/env") == "/bin/busybox"
    assert "1000" in (root / "etc/passwd").read_text()
    marker = root / "marker"
    marker.write_text("cached")
    assert unpacked_root(image_archive, rec.container.manifest_digest) == root and marker.exists()
    leftovers = [p.name for p in root.parent.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_malicious_image_refused_via_cli(tmp_archive: Any, tmp_path: Path, cli: Any) -> None:
    from archive.container.testing import build_busybox_oci

    lay = build_busybox_oci(tmp_path / "evil")
    import json

    from archive.digest import digest_bytes, hex_of

    blobs = lay / "blobs/sha256"
    manifest = json.loads((blobs / hex_of(json.loads((lay / "index.json").read_text())["manifests"][0]["digest"]))
                          .read_bytes())
    evil = layer_tar([("../escape.txt", "file", b"x", 0o644)])
    (blobs / hex_of(digest_bytes(evil))).write_bytes(evil)
    cfg = json.loads((blobs / hex_of(manifest["config"]["digest"])).read_bytes())
    cfg["rootfs"]["diff_ids"].append(digest_bytes(evil))
    cb = json.dumps(cfg).encode()
    (blobs / hex_of(digest_bytes(cb))).write_bytes(cb)
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_bytes(evil),
                               "size": len(evil)})
    manifest["config"] = {**manifest["config"], "digest": digest_bytes(cb), "size": len(cb)}
    mb = json.dumps(manifest).encode()
    (blobs / hex_of(digest_bytes(mb))).write_bytes(mb)
    (lay / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": manifest["mediaType"], "digest": digest_bytes(mb), "size": len(mb)}]}))
    # the archive keeps the bytes (preservation); unpacking refuses them
    assert cli("--root", tmp_archive.root, "container", "add", lay, "--name", "evil").code == 0
    r = cli("--root", tmp_archive.root, "container", "unpack", "evil")
    assert r.code == 5
    assert r.err.strip().count("\n") == 0
    assert "layer refused: member '../escape.txt'" in r.err
    cache = tmp_archive.state_dir / "containers" / "unpacked"
    assert [p for p in cache.iterdir() if p.is_dir()] == []
    assert not (tmp_archive.root / "escape.txt").exists() and not (cache / "escape.txt").exists()


def test_corrupt_stored_layer_detected_on_unpack(image_archive: Any) -> None:
    rec = container_record(image_archive, "busybox-test")
    path = image_archive.object_path(rec.container.layers[1].digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[700] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        unpacked_root(image_archive, "busybox-test")
    cache = image_archive.state_dir / "containers" / "unpacked"
    assert [p for p in cache.iterdir() if p.is_dir()] == []


def test_zstd_layer_needs_zstandard(box: dict[str, Path]) -> None:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("zstandard is installed; the missing-dependency path cannot be shown")
    from archive.errors import MissingDependencyError

    layer = box["tmp"] / "layer.tar.zst"
    layer.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 64)
    with pytest.raises(MissingDependencyError, match="pip install zstandard"):
        unpack_layers([layer], box["root"])


def test_same_tree_as_umoci(busybox_layout: Path, tmp_path: Path) -> None:
    """The reference implementation (umoci) and our unpacker produce the same files, links and contents."""
    import json
    import shutil
    import subprocess

    from archive.digest import digest_file, hex_of

    if shutil.which("umoci") is None:
        pytest.skip("umoci is not installed (apt-get install umoci)")
    r = subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{busybox_layout}:latest",
                        str(tmp_path / "bundle")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    blobs = busybox_layout / "blobs/sha256"
    index = json.loads((busybox_layout / "index.json").read_text())
    manifest = json.loads((blobs / hex_of(index["manifests"][0]["digest"])).read_bytes())
    ours = tmp_path / "ours"
    ours.mkdir()
    unpack_layers([blobs / hex_of(la["digest"]) for la in manifest["layers"]], ours)

    def tree(root: Path) -> dict[str, str]:
        out = {}
        for p in root.rglob("*"):
            rel = p.relative_to(root).as_posix()
            out[rel] = ("link:" + os.readlink(p) if p.is_symlink() else "dir" if p.is_dir()
                        else digest_file(p).sha256 + oct(p.stat().st_mode & 0o7777))
        return out

    theirs = tree(tmp_path / "bundle" / "rootfs")
    assert tree(ours) == theirs
    assert "etc/removed.txt" not in theirs and "opt/data/new.txt" in theirs


def _gzip_layer(tmp: Path, name: str, files: dict[str, int]) -> Path:
    """A gzip layer whose regular files are runs of zeros of the given sizes (written in a streaming way)."""
    import tarfile

    p = tmp / name
    with gzip.open(p, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for fname, size in files.items():
            info = tarfile.TarInfo(fname)
            info.size = size

            class Zeros:
                left = size

                def read(self, n: int = -1) -> bytes:
                    n = self.left if n < 0 else min(n, self.left)
                    self.left -= n
                    return b"\0" * n

            tar.addfile(info, Zeros())  # type: ignore[arg-type]
    return p


def test_decompression_bomb_refused_while_it_expands(box: dict[str, Path]) -> None:
    bomb = _gzip_layer(box["tmp"], "layer-bomb.tar.gz", {"ok.txt": 10, "zeros.bin": 64 << 20})
    assert bomb.stat().st_size < 200_000  # 64 MiB of zeros compress about 1000x
    before = _snapshot(box["tmp"])
    with pytest.raises(UnsafeInputError, match=r"member 'zeros.bin': expands to .* decompression bomb") as exc:
        unpack_layers([bomb], box["root"], min_budget=1 << 20)
    assert "\n" not in str(exc.value)
    written = (box["root"] / "zeros.bin").stat().st_size
    assert written < (8 << 20), f"the bomb wrote {written} of its 64 MiB before it was stopped"
    assert _snapshot(box["tmp"]) == before


def test_ordinary_compression_ratios_are_accepted(box: dict[str, Path]) -> None:
    layer = box["tmp"] / "layer-text.tar.gz"
    import io
    import tarfile

    rng = __import__("random").Random(1)
    text = "".join(rng.choice("abcdefghij \n") for _ in range(2 << 20)).encode()  # ~3x compressible
    with gzip.open(layer, "wb") as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("data.txt")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    report = unpack_layers([layer], box["root"], min_budget=1 << 20)
    assert report.files == 1 and (box["root"] / "data.txt").read_bytes() == text


def test_member_count_limit(box: dict[str, Path]) -> None:
    many = _layers(box["tmp"], [(f"f{i}", "file", b"x", 0o644) for i in range(50)])
    with pytest.raises(UnsafeInputError, match="in 21 entries"):
        unpack_layers(many, box["root"], max_members=20)
