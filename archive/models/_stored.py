"""Finding model records and laying their stored files out as a runnable folder (verified copies)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from archive.digest import digest_file, digest_json
from archive.errors import IntegrityError, ValidationError
from archive.schema.v1._common import FileEntry
from archive.schema.v1.model import ModelRecord

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["load_model_record", "materialise", "model_ref", "read_file_bytes"]


def model_ref(ref: str) -> str:
    """``NAME``, ``NAME@V``, ``model/NAME[@V]`` -> ``model/NAME[@V]``."""
    ref = ref.strip()
    if ref.startswith("model/"):
        return ref
    if "/" in ref.split("@", 1)[0]:
        raise ValidationError(f"{ref!r} is not a model reference; use NAME[@VERSION] or model/NAME[@VERSION]")
    return f"model/{ref}"


def load_model_record(archive: Archive, ref: str) -> ModelRecord:
    """The model record for ``NAME[@VERSION]`` (latest version when none is given)."""
    record = archive.record(model_ref(ref))
    if not isinstance(record, ModelRecord):  # pragma: no cover - the catalog types records by kind
        raise ValidationError(f"{ref} is not a model record")
    if record.model.onnx is None:
        raise ValidationError(f"{record.ref} has no ONNX model section; register the file with `hep-archive model "
                              "add`", field="model.onnx")
    return record


def _entry(record: ModelRecord, path: str) -> FileEntry:
    for f in record.files:
        if f.path == path:
            return f
    raise ValidationError(f"{record.ref} lists no file {path!r}", field="files")  # pragma: no cover - schema rule


def read_file_bytes(archive: Archive, record: ModelRecord, path: str) -> bytes:
    """A record file's bytes, read through the digest-verifying reader."""
    entry = _entry(record, path)
    with archive.open_object(entry.sha256) as fh:
        return fh.read()


def _copy_verified(archive: Archive, entry: FileEntry, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with archive.open_object(entry.sha256) as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def materialise(archive: Archive, record: ModelRecord) -> Path:
    """The ONNX file of ``record`` in a folder with its external data at the recorded relative locations.

    The folder is ``.hep-archive/models/<key>/`` (``key`` from the files' digests); files are copied through
    the verifying reader, re-hashed on reuse and rebuilt when changed. Returns the path of the ONNX file."""
    onnx_info = record.model.onnx
    assert onnx_info is not None
    wanted = [_entry(record, onnx_info.file), *(_entry(record, p) for p in onnx_info.external_data)]
    key = digest_json([[e.path, e.sha256] for e in wanted]).split(":", 1)[1][:24]
    base = archive.state_dir / "models"
    folder = base / key
    if folder.is_dir():
        try:
            for e in wanted:
                if digest_file(folder / e.path).sha256 != e.sha256:
                    raise IntegrityError(f"cached copy of {e.path} changed", file=str(folder / e.path))
            return folder / onnx_info.file
        except (OSError, IntegrityError):
            shutil.rmtree(folder, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=base))
    try:
        for e in wanted:
            _copy_verified(archive, e, tmp / e.path)
        with contextlib.suppress(OSError):  # another process won the race: use its copy
            tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / onnx_info.file
