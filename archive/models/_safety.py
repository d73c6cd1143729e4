"""Refusing hostile model inputs: pickled formats (by extension and by magic bytes) and unsafe external data.

Nothing here ever unpickles: detection reads at most the first few kilobytes (and a zip's central directory)."""

from __future__ import annotations

import os
import posixpath
import stat
import zipfile
from pathlib import Path

from archive.errors import UnsafeInputError, ValidationError

__all__ = ["check_external_location", "refuse_pickled", "sniff_format"]

PICKLE_EXTENSIONS = {
    ".pt": "a PyTorch checkpoint (pickle)",
    ".pth": "a PyTorch checkpoint (pickle)",
    ".pkl": "a Python pickle",
    ".pickle": "a Python pickle",
    ".joblib": "a joblib dump (pickle)",
    ".ckpt": "a training checkpoint (pickle)",
    ".h5": "a Keras HDF5 model",
    ".hdf5": "a Keras HDF5 model",
    ".keras": "a Keras model archive",
    ".npz": "a NumPy archive (may hold pickled objects)",
}
HOW_TO_CONVERT = {
    "torch": "load it once, offline, in a sandbox with the code that defined the network and export it with "
    "archive.models.export_torch(module, example_input, ...) or torch.onnx.export(..., dynamo=False)",
    "keras": "convert it once, offline, with tf2onnx (python -m tf2onnx.convert --keras model.h5 --output "
    "model.onnx) and register the .onnx file",
    "pickle": "re-create the model in its framework, offline and sandboxed, and export it to ONNX "
    "(sklearn: skl2onnx; torch: archive.models.export_torch)",
}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
#: opcodes a protocol 0/1 pickle starts with: MARK, EMPTY_LIST/DICT/TUPLE, GLOBAL, NONE, INT, ...
_PICKLE_V0_START = set(b"(]})cNIFSVLlt")


def _hint(kind: str) -> str:
    return HOW_TO_CONVERT["keras" if "Keras" in kind else "torch" if "PyTorch" in kind or "checkpoint" in kind
                          else "pickle"]


def sniff_format(head: bytes, path: Path | None = None) -> str | None:
    """What a file's first bytes say it is, when it is a format we refuse; ``None`` otherwise.

    Args:
        head: the first bytes of the file (at least 8; 4096 recommended).
        path: the file itself, to look inside a zip's directory for ``data.pkl``.
    """
    if head.startswith(HDF5_SIGNATURE):
        return "an HDF5 file (Keras .h5 model?)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"a Python pickle (protocol {head[1]})"
    if head.startswith(ZIP_SIGNATURE):
        if path is not None:
            try:
                with zipfile.ZipFile(path) as zf:
                    names = zf.namelist()[:10_000]
            except (zipfile.BadZipFile, OSError):
                names = []
            if any(n.endswith(("data.pkl", ".pkl")) for n in names):
                return "a PyTorch zip checkpoint (contains data.pkl, a pickle)"
            if any(n in ("config.json", "model.weights.h5") for n in names):
                return "a Keras model archive"
        return "a zip archive"
    if head[:1] and head[0] in _PICKLE_V0_START and head.rstrip().endswith(b".") and len(head) < 4096:
        return "a Python pickle (protocol 0/1)"
    return None


def refuse_pickled(path: Path) -> None:
    """Raise :class:`UnsafeInputError` when ``path`` is a pickled or Keras model (by extension or content)."""
    ext = path.suffix.lower()
    if ext in PICKLE_EXTENSIONS:
        kind = PICKLE_EXTENSIONS[ext]
        raise UnsafeInputError(
            f"{kind} is refused: pickled and framework-specific formats are never loaded (loading runs code); "
            f"{_hint(kind)}", file=str(path))
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise ValidationError(f"cannot read the model file: {err.strerror}", file=str(path)) from None
    sniffed = sniff_format(head, path)
    if sniffed is not None:
        raise UnsafeInputError(
            f"the file is {sniffed}, not ONNX; it is refused and never loaded; {_hint(sniffed)}", file=str(path))


def check_external_location(model_dir: Path, location: str, *, label: str) -> Path:
    """Check one ``external_data.location`` and return the file it names.

    Refused: absolute locations, ``..`` anywhere, backslashes, non-normalised paths, a symlink in any component,
    hard-linked files, and anything that is not a regular file inside ``model_dir``."""
    field = "external_data.location"
    if not location or "\x00" in location or "\\" in location:
        raise UnsafeInputError(f"external data location {location!r} is not a plain relative path", file=label,
                               field=field)
    if location.startswith("/") or (len(location) > 1 and location[1] == ":"):
        raise UnsafeInputError(f"external data location {location!r} is absolute; external data files must lie "
                               "inside the model's own folder, named relative to it", file=label, field=field)
    parts = location.split("/")
    if ".." in parts:
        raise UnsafeInputError(f"external data location {location!r} contains '..'; external data files must lie "
                               "inside the model's own folder", file=label, field=field)
    if any(p in ("", ".") for p in parts) or posixpath.normpath(location) != location:
        raise UnsafeInputError(f"external data location {location!r} is not normalised (no '.', '//' or trailing "
                               "'/')", file=label, field=field)
    base = model_dir.absolute()
    cur = base
    for part in parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            raise ValidationError(f"external data file {location!r} does not exist next to the model; copy it into "
                                  "the model's folder", file=label, field=field) from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeInputError(f"external data location {location!r} goes through a symlink ({part}); replace "
                                   "the link with the real file", file=label, field=field)
    st = os.lstat(cur)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeInputError(f"external data location {location!r} is not a regular file", file=label, field=field)
    if st.st_nlink > 1:
        raise UnsafeInputError(f"external data file {location!r} is hard-linked ({st.st_nlink} links); copy it to "
                               "a file of its own", file=label, field=field)
    return cur
