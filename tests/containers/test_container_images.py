"""add / export / record: byte-for-byte storage keyed by manifest digest, with real OCI and docker tars."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from archive.container import add_image, container_record, export_image, unpacked_root
from archive.container.testing import build_busybox_oci, layer_tar, oci_to_docker_archive
from archive.digest import digest_bytes, digest_file, hex_of
from archive.errors import IntegrityError, ValidationError
from archive.integrity import verify_archive
from archive.schema.v1.container import ContainerRecord


def _index_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def _objects(archive: Any) -> set[str]:
    return set(archive.store.iter_digests())


def _skopeo_inspect(ref: str) -> dict[str, Any]:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    out = subprocess.run(["skopeo", "inspect", ref], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _tree(root: Path) -> dict[str, str]:
    """path -> 'dir' | 'link:<target>' | sha256 of the content, for comparing unpacked roots."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + str(p.readlink())
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = digest_file(p).sha256
    return out


def test_busybox_image_is_deterministic(tmp_path: Path, busybox_layout: Path) -> None:
    again = build_busybox_oci(tmp_path / "again")
    assert _index_digest(again) == _index_digest(busybox_layout)
    with pytest.raises(ValidationError, match="not empty"):
        build_busybox_oci(again)


def test_add_records_digests_platform_and_config(tmp_archive: Any, busybox_layout: Path) -> None:
    rec = add_image(tmp_archive, busybox_layout, name="busybox-test")
    c = rec.container
    assert rec.ref == "container/busybox-test@1.0.0" and rec.status == "draft"
    assert c.manifest_digest == _index_digest(busybox_layout)
    manifest = json.loads((busybox_layout / "blobs/sha256" / hex_of(c.manifest_digest)).read_bytes())
    assert [la.digest for la in c.layers] == [la["digest"] for la in manifest["layers"]]
    assert c.config_digest == manifest["config"]["digest"]
    config = json.loads((busybox_layout / "blobs/sha256" / hex_of(c.config_digest)).read_bytes())
    assert [la.diff_id for la in c.layers] == config["rootfs"]["diff_ids"]
    assert c.layers[0].media_type.endswith("+gzip") and c.layers[1].diff_id == c.layers[1].digest
    assert c.platform.os == "linux" and c.platform.architecture == config["architecture"]
    assert "HEP_IMAGE=busybox-test" in c.env and c.cmd == ["/bin/sh"] and c.tag == "latest"
    assert c.source_format == "oci-layout" and c.conversion is None
    # every blob stored byte for byte, and listed as a record file so `verify` re-hashes it
    for d in (c.manifest_digest, c.config_digest, *(la.digest for la in c.layers)):
        assert tmp_archive.store.read_bytes(d) == (busybox_layout / "blobs/sha256" / hex_of(d)).read_bytes()
    roles = sorted(f.role for f in rec.files)
    assert roles == ["image-config", "image-layer", "image-layer", "image-manifest"]
    report = verify_archive(tmp_archive)
    assert report.ok and report.counts() == {"ok": 4}
    # the record on disk parses back as a container record
    assert isinstance(container_record(tmp_archive, "busybox-test@1.0.0"), ContainerRecord)
    assert container_record(tmp_archive, c.manifest_digest).ref == rec.ref


def test_export_round_trip_keeps_manifest_digest(image_archive: Any, tmp_path: Path,
                                                 busybox_layout: Path) -> None:
    rec = container_record(image_archive, "busybox-test")
    out = tmp_path / "img.tar"
    assert export_image(image_archive, "busybox-test@1.0.0", out) == rec.container.manifest_digest
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"oci-layout", "index.json", f"blobs/sha256/{hex_of(rec.container.manifest_digest)}"} <= names
    info = _skopeo_inspect(f"oci-archive:{out}")
    assert info["Digest"] == rec.container.manifest_digest
    assert info["Layers"] == [la.digest for la in rec.container.layers]
    # re-adding the export under a new name stores nothing new and pins the same digest
    before = _objects(image_archive)
    again = add_image(image_archive, out, name="busybox-again")
    assert again.container.manifest_digest == rec.container.manifest_digest
    assert again.container.source_format == "oci-archive"
    assert _objects(image_archive) == before
    # directory export is an OCI layout skopeo reads too
    d = tmp_path / "layout"
    export_image(image_archive, rec.container.manifest_digest, d)
    assert _skopeo_inspect(f"oci:{d}")["Digest"] == rec.container.manifest_digest


def test_shared_layers_stored_once_and_versions(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    add_image(tmp_archive, busybox_layout, name="busybox-test")
    n = len(_objects(tmp_archive))
    # same image again: same version returned, nothing new stored
    same = add_image(tmp_archive, busybox_layout, name="busybox-test")
    assert same.version == "1.0.0" and len(_objects(tmp_archive)) == n
    # a variant without whiteouts shares the busybox base layer: only manifest, config, layer 2 are new
    variant = build_busybox_oci(tmp_path / "nowh", whiteout=False)
    rec = add_image(tmp_archive, variant, name="busybox-test")
    assert rec.version == "1.1.0"
    assert len(_objects(tmp_archive)) == n + 3
    assert tmp_archive.catalog.versions("container/busybox-test") == ["1.0.0", "1.1.0"]


def test_docker_archive_is_converted_keeping_layer_bytes(tmp_archive: Any, busybox_layout: Path,
                                                          tmp_path: Path) -> None:
    tar = oci_to_docker_archive(busybox_layout, tmp_path / "docker.tar", repo_tag="example.org/hep/bb:2.0")
    rec = add_image(tmp_archive, tar, name="busybox-docker")
    c = rec.container
    assert c.source_format == "docker-archive" and c.conversion and "docker-archive" in c.conversion
    assert c.tag == "2.0" and c.registry == "example.org/hep/bb"
    config = json.loads(tmp_archive.store.read_bytes(c.config_digest))
    # docker save keeps uncompressed layers: the stored blobs are exactly the config's diff_ids
    assert [la.digest for la in c.layers] == config["rootfs"]["diff_ids"]
    with tarfile.open(tar) as t:
        first = t.extractfile(json.loads(t.extractfile("manifest.json").read())[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert tmp_archive.store.read_bytes(c.layers[0].digest) == first
    out = tmp_path / "from-docker.tar"
    assert export_image(tmp_archive, "busybox-docker", out) == c.manifest_digest
    assert _skopeo_inspect(f"oci-archive:{out}")["Digest"] == c.manifest_digest
    # the same files as the OCI original once unpacked
    oci = add_image(tmp_archive, busybox_layout, name="busybox-oci")
    assert _tree(unpacked_root(tmp_archive, "busybox-docker")) == _tree(unpacked_root(tmp_archive, oci.ref))


def test_skopeo_written_archives_are_accepted(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    docker_tar, oci_tar = tmp_path / "d.tar", tmp_path / "o.tar"
    for dest in (f"docker-archive:{docker_tar}:hep/busybox:1", f"oci-archive:{oci_tar}:v1"):
        r = subprocess.run(["skopeo", "copy", f"oci:{busybox_layout}:latest", dest], capture_output=True,
                           text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
    d = add_image(tmp_archive, docker_tar, name="from-skopeo-docker")
    assert d.container.source_format == "docker-archive" and d.container.tag == "1"
    o = add_image(tmp_archive, oci_tar, name="from-skopeo-oci")
    assert o.container.tag == "v1"
    assert o.container.manifest_digest == _skopeo_inspect(f"oci-archive:{oci_tar}")["Digest"]
    assert (unpacked_root(tmp_archive, d.ref) / "etc/motd").read_text() == "hep-archive busybox test image\n"


def _corrupt_layout(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "blobs/sha256" / hex_of(_index_digest(dst))).read_bytes())
    blob = dst / "blobs/sha256" / hex_of(manifest["layers"][1]["digest"])
    data = bytearray(blob.read_bytes())
    data[600] ^= 0xFF
    blob.write_bytes(bytes(data))
    return dst


def test_corrupt_blob_is_refused_leaving_nothing(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    bad = _corrupt_layout(busybox_layout, tmp_path / "bad")
    with pytest.raises(IntegrityError, match="does not match its digest"):
        add_image(tmp_archive, bad, name="bad")
    assert _objects(tmp_archive) == set()
    assert tmp_archive.catalog.versions("container/bad") == []


def test_wrong_diff_id_is_refused(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    lay = tmp_path / "diff"
    shutil.copytree(busybox_layout, lay)
    blobs = lay / "blobs/sha256"
    manifest = json.loads((blobs / hex_of(_index_digest(lay))).read_bytes())
    config = json.loads((blobs / hex_of(manifest["config"]["digest"])).read_bytes())
    config["rootfs"]["diff_ids"][0] = digest_bytes(b"something else")
    cfg = json.dumps(config).encode()
    (blobs / hex_of(digest_bytes(cfg))).write_bytes(cfg)
    manifest["config"] = {**manifest["config"], "digest": digest_bytes(cfg), "size": len(cfg)}
    mb = json.dumps(manifest).encode()
    (blobs / hex_of(digest_bytes(mb))).write_bytes(mb)
    (lay / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": manifest["mediaType"], "digest": digest_bytes(mb), "size": len(mb)}]}))
    with pytest.raises(IntegrityError, match="diff_id"):
        add_image(tmp_archive, lay, name="diff")
    assert _objects(tmp_archive) == set()


def test_tag_selection_and_bad_sources(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    lay = tmp_path / "two"
    shutil.copytree(busybox_layout, lay)
    index = json.loads((lay / "index.json").read_text())
    other = dict(index["manifests"][0], annotations={"org.opencontainers.image.ref.name": "stable"})
    index["manifests"].append(other)
    (lay / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValidationError, match="choose one with --tag"):
        add_image(tmp_archive, lay, name="two")
    assert add_image(tmp_archive, lay, name="two", tag="stable").container.tag == "stable"
    with pytest.raises(ValidationError, match="no image tagged 'nope'"):
        add_image(tmp_archive, lay, name="two", tag="nope")
    junk = tmp_path / "junk.tar"
    with tarfile.open(junk, "w") as t:
        t.add(busybox_layout / "oci-layout", arcname="hello.txt")
    with pytest.raises(ValidationError, match="neither an OCI archive"):
        add_image(tmp_archive, junk, name="junk")
    not_tar = tmp_path / "x.tar"
    not_tar.write_bytes(layer_tar([])[:100] + b"garbage")
    with pytest.raises(ValidationError):
        add_image(tmp_archive, not_tar, name="junk")
    with pytest.raises(ValidationError, match="invalid image name"):
        add_image(tmp_archive, busybox_layout, name="Bad Name")


def test_symlinked_blob_in_layout_is_refused(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    lay = tmp_path / "link"
    shutil.copytree(busybox_layout, lay)
    manifest_blob = lay / "blobs/sha256" / hex_of(_index_digest(lay))
    real = tmp_path / "elsewhere"
    manifest_blob.rename(real)
    manifest_blob.symlink_to(real)
    with pytest.raises(ValidationError, match="symlink"):
        add_image(tmp_archive, lay, name="link")


def test_definition_in_archive_tree_is_recorded(tmp_archive: Any, busybox_layout: Path) -> None:
    d = tmp_archive.root / "containers" / "busybox-test"
    d.mkdir(parents=True)
    (d / "Containerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    rec = add_image(tmp_archive, busybox_layout, name="busybox-test")
    assert rec.container.definition == "containers/busybox-test/Containerfile"
    entry = next(f for f in rec.files if f.role == "definition")
    assert entry.locations == ["tree:containers/busybox-test/Containerfile"]
    from archive.catalog import validate_archive

    assert validate_archive(tmp_archive) == []


def test_platform_selected_from_image_index(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    from archive.container.testing import goarch

    lay = tmp_path / "multi"
    shutil.copytree(busybox_layout, lay)
    desc = json.loads((lay / "index.json").read_text())["manifests"][0]
    other_arch = "s390x" if goarch() != "s390x" else "amd64"
    nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": desc["mediaType"], "digest": digest_bytes(b"absent"), "size": 6,
         "platform": {"os": "linux", "architecture": other_arch}},
        {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
         "platform": {"os": "linux", "architecture": goarch()}}]}
    nb = json.dumps(nested).encode()
    (lay / "blobs/sha256" / hex_of(digest_bytes(nb))).write_bytes(nb)
    (lay / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": nested["mediaType"], "digest": digest_bytes(nb), "size": len(nb),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    rec = add_image(tmp_archive, lay, name="multi")
    assert rec.container.manifest_digest == desc["digest"] and rec.container.index_digest == digest_bytes(nb)
    with pytest.raises(ValidationError, match="is missing from the image"):
        add_image(tmp_archive, lay, name="multi-other", platform=f"linux/{other_arch}")
    with pytest.raises(ValidationError, match="has no linux/mips manifest"):
        add_image(tmp_archive, lay, name="multi-other", platform="linux/mips")
    with pytest.raises(ValidationError, match="os/arch"):
        add_image(tmp_archive, lay, name="multi-other", platform="mips")
    assert tmp_archive.catalog.versions("container/multi-other") == []


def test_podman_saved_archives_are_accepted(tmp_archive: Any, busybox_layout: Path, tmp_path: Path) -> None:
    """What `podman save` writes (OCI and docker formats), with podman's storage isolated in tmp_path."""
    if shutil.which("podman") is None or shutil.which("skopeo") is None:
        pytest.skip("podman or skopeo is not installed")
    import tempfile

    runroot = Path(tempfile.mkdtemp(prefix="hpa-"))  # podman wants a runroot path under 50 characters
    podman = ["podman", "--root", str(tmp_path / "storage"), "--runroot", str(runroot),
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]
    try:
        _podman_round_trip(tmp_archive, busybox_layout, tmp_path, podman)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _podman_round_trip(tmp_archive: Any, busybox_layout: Path, tmp_path: Path, podman: list[str]) -> None:
    src = tmp_path / "in.tar"
    steps = [["skopeo", "copy", f"oci:{busybox_layout}:latest", f"oci-archive:{src}:localhost/bb:1"],
             [*podman, "load", "-i", str(src)],
             [*podman, "save", "--format", "oci-archive", "-o", str(tmp_path / "oci.tar"), "localhost/bb:1"],
             [*podman, "save", "--format", "docker-archive", "-o", str(tmp_path / "docker.tar"), "localhost/bb:1"]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if r.returncode != 0:
            pytest.skip(f"podman cannot load/save here: {r.stderr.strip().splitlines()[-1:]}")
    oci = add_image(tmp_archive, tmp_path / "oci.tar", name="podman-oci")
    assert (oci.container.tag, oci.container.registry) == ("1", "localhost/bb")
    # podman re-compressed the layers: a different manifest digest, which is why bytes are kept as they come
    assert oci.container.manifest_digest != _index_digest(busybox_layout)
    dock = add_image(tmp_archive, tmp_path / "docker.tar", name="podman-docker")
    assert dock.container.source_format == "docker-archive"
    # the docker-archive conversion is canonical: the same image content gives the same manifest digest
    ours = add_image(tmp_archive, oci_to_docker_archive(busybox_layout, tmp_path / "d2.tar"), name="helper-docker")
    assert dock.container.manifest_digest == ours.container.manifest_digest
    for rec in (oci, dock):
        root = unpacked_root(tmp_archive, rec.ref)
        assert sorted(p.name for p in (root / "opt/data").iterdir()) == ["new.txt"]
