"""BagIt 1.0 (RFC 8493) export: the release payload, its RO-Crate, sha256 + sha512 manifests and tag manifests.

The bag is written here, byte for byte and in sorted order, rather than by ``bagit.make_bag`` (which moves
files in place and stamps today's date); the Library of Congress ``bagit`` library validates it in the tests.
Layout::

    bagit.txt  bag-info.txt  manifest-sha256.txt  manifest-sha512.txt  tagmanifest-sha256.txt  tagmanifest-sha512.txt
    data/ro-crate-metadata.json   data/release.json   data/records/<kind>/<name>/<version>.json
    data/<kind>/<name>/<version>/<file path>
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from archive.errors import IntegrityError
from archive.publish._common import ReleaseView, as_json_bytes
from archive.schema import record_to_data

__all__ = ["PayloadFile", "export_bagit", "write_payload"]

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PayloadFile:
    path: str  # relative to the payload root (``data/`` in a bag)
    size: int
    sha256: str  # hex
    sha512: str  # hex


def _copy_hashing(src: Path, dst: Path, expected: str | None) -> tuple[int, str, str]:
    """Copy ``src`` to ``dst`` computing sha256 and sha512; the two digests run in two threads (hashlib releases
    the GIL on large blocks) while the block is written."""
    from concurrent.futures import ThreadPoolExecutor

    dst.parent.mkdir(parents=True, exist_ok=True)
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout, ThreadPoolExecutor(max_workers=1) as pool:
        while block := fin.read(CHUNK):
            other = pool.submit(h512.update, block)
            h256.update(block)
            fout.write(block)
            other.result()
            size += len(block)
    if expected is not None and "sha256:" + h256.hexdigest() != expected:
        raise IntegrityError(f"{src} hashes to sha256:{h256.hexdigest()}, the record says {expected}; "
                             "run `hep-archive release check`", file=str(src))
    return size, h256.hexdigest(), h512.hexdigest()


def _write_bytes(root: Path, rel: str, data: bytes) -> PayloadFile:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return PayloadFile(rel, len(data), hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest())


def write_payload(view: ReleaseView, root: Path, *, with_files: bool = True) -> list[PayloadFile]:
    """Write the member files (verified against their sha256 while copied) and the record JSON under ``root``."""
    out: list[PayloadFile] = []
    out.append(_write_bytes(root, "release.json", as_json_bytes(record_to_data(view.release))))
    for m in view.members:
        out.append(_write_bytes(root, f"records/{m.kind}/{m.name}/{m.version}.json", as_json_bytes(record_to_data(m))))
        if not with_files:
            continue
        (root / m.kind / m.name / m.version).mkdir(parents=True, exist_ok=True)  # the crate's folder entity
        for entry in m.files:
            rel = view.payload_path(m, entry)
            size, s256, s512 = _copy_hashing(view.local_file(entry), root / rel, entry.sha256)
            out.append(PayloadFile(rel, size, s256, s512))
    return out


def _encode(path: str) -> str:
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _manifest(files: list[tuple[str, str]]) -> bytes:
    return "".join(f"{digest}  {_encode(path)}\n" for path, digest in sorted(files)).encode("utf-8")


def export_bagit(view: ReleaseView, out: Path) -> None:
    """Write the release as a complete, valid BagIt 1.0 bag in ``out`` (an empty folder)."""
    from archive.publish._rocrate import build_crate

    data = out / "data"
    payload = write_payload(view, data)
    crate = build_crate(view, payload)
    payload.append(_write_bytes(data, "ro-crate-metadata.json", as_json_bytes(crate)))
    payload.sort(key=lambda f: f.path)
    rel = view.release
    octets = sum(f.size for f in payload)
    info = [
        ("Source-Organization", rel.release.publisher),
        ("External-Identifier", f"doi:{rel.release.doi}"),
        ("External-Description", rel.title),
        ("Bag-Group-Identifier", f"doi:{rel.release.concept_doi}"),
        ("Bagging-Date", view.date.isoformat()),
        ("Payload-Oxum", f"{octets}.{len(payload)}"),
        ("Bag-Size", _human(octets)),
        ("Bag-Software-Agent", "hep-archive"),
        ("Internal-Sender-Identifier", rel.ref),
        ("Internal-Sender-Description", f"manifest digest {rel.release.manifest_digest}"),
    ]
    tags: dict[str, bytes] = {
        "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": "".join(f"{k}: {v.replace(chr(10), ' ')}\n" for k, v in info).encode("utf-8"),
        "manifest-sha256.txt": _manifest([(f"data/{f.path}", f.sha256) for f in payload]),
        "manifest-sha512.txt": _manifest([(f"data/{f.path}", f.sha512) for f in payload]),
    }
    for name, content in tags.items():
        (out / name).write_bytes(content)
    for alg in ("sha256", "sha512"):
        rows = [(name, hashlib.new(alg, content).hexdigest()) for name, content in tags.items()]
        (out / f"tagmanifest-{alg}.txt").write_bytes(_manifest(rows))


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover
