"""Les Houches Event files (plain or gzipped XML), parsed with a streaming expat parser.

Safety as in defusedxml: a document type declaration, any entity declaration or external entity reference is
refused (``UnsafeInputError``) before it is expanded; parameter entities are never parsed. The file is fed to
the parser in 1 MiB blocks and events are emitted in batches, so memory stays bounded.

Columns: event-level ``nparticles``, ``process_id``, ``weight`` (XWGTUP, signed), ``scale``, ``aqed``, ``aqcd``;
per-particle jagged lists ``pdg_id``, ``status``, ``mother1``, ``mother2``, ``color1``, ``color2``, ``px``, ``py``,
``pz``, ``e``, ``m``, ``lifetime``, ``spin``; one ``weight_<id>`` column per ``<rwgt><wgt id=...>`` variation.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

import numpy as np

from archive.errors import UnsafeInputError, ValidationError
from archive.formats._base import Batch, ColumnInfo, Source

__all__ = ["LHESource", "parse_lhe_events"]

BLOCK = 1 << 20
EVENT_COLS = [("nparticles", "int32"), ("process_id", "int32"), ("weight", "float64"), ("scale", "float64"),
              ("aqed", "float64"), ("aqcd", "float64")]
PARTICLE_COLS = [("pdg_id", "int32"), ("status", "int32"), ("mother1", "int32"), ("mother2", "int32"),
                 ("color1", "int32"), ("color2", "int32"), ("px", "float64"), ("py", "float64"), ("pz", "float64"),
                 ("e", "float64"), ("m", "float64"), ("lifetime", "float64"), ("spin", "float64")]
UNITS = {"weight": "pb", "scale": "GeV", "px": "GeV", "py": "GeV", "pz": "GeV", "e": "GeV", "m": "GeV",
         "lifetime": "mm"}
BEAMS = {2212: "p", -2212: "pbar", 11: "e-", -11: "e+", 13: "mu-", -13: "mu+", 22: "gamma"}


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _num(tok: str) -> float:
    return float(tok.replace("D", "E").replace("d", "e"))


class _Parser:
    """Collects the header, <init> and <event> texts (with their <wgt> values) from fed blocks."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.p = expat.ParserCreate()
        self.p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.p.StartDoctypeDeclHandler = self._refuse_doctype
        self.p.EntityDeclHandler = self._refuse_entity
        self.p.ExternalEntityRefHandler = self._refuse_external
        self.p.StartElementHandler = self._start
        self.p.EndElementHandler = self._end
        self.p.CharacterDataHandler = self._text
        self.p.buffer_text = True
        self.stack: list[str] = []
        self.text: list[str] = []
        self.header: list[str] = []
        self.init: str | None = None
        self.weight_ids: list[str] = []
        self.events: list[tuple[str, dict[str, float]]] = []
        self._wgt_id: str | None = None
        self._wgts: dict[str, float] = {}
        self._wtext: list[str] = []

    def _refuse_doctype(self, *a: Any) -> None:
        raise UnsafeInputError("document type declarations (DTD) are refused in LHE input", file=self.label)

    def _refuse_entity(self, *a: Any) -> None:
        raise UnsafeInputError("entity declarations are refused in LHE input (entity expansion attack)",
                               file=self.label)

    def _refuse_external(self, *a: Any) -> int:
        raise UnsafeInputError("external entity references are refused in LHE input", file=self.label)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self.stack.append(name)
        if name in ("event", "init"):
            self.text = []
            self._wgts = {}
        elif name == "wgt":
            self._wgt_id = attrs.get("id", str(len(self._wgts)))
            self._wtext = []
        elif name == "weight" and "initrwgt" in self.stack:
            self.weight_ids.append(attrs.get("id", str(len(self.weight_ids))))

    def _end(self, name: str) -> None:
        self.stack.pop()
        if name == "event":
            self.events.append(("".join(self.text), self._wgts))
        elif name == "init":
            self.init = "".join(self.text)
        elif name == "wgt" and self._wgt_id is not None:
            self._wgts[self._wgt_id] = _num("".join(self._wtext).strip())
            self._wgt_id = None

    def _text(self, data: str) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        if top in ("event", "init"):
            self.text.append(data)
        elif top == "wgt":
            self._wtext.append(data)
        elif "header" in self.stack and len(self.header) < 4096:
            self.header.append(data)

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self.p.Parse(data, final)
        except expat.ExpatError as exc:
            raise ValidationError(f"malformed LHE XML: {exc}", file=self.label) from None


def _parse_event(text: str, weight_ids: list[str], wgts: dict[str, float], label: str, row: int) -> list[Any]:
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        head = lines[0].split()
        nup = int(head[0])
        ev = [nup, int(head[1]), _num(head[2]), _num(head[3]), _num(head[4]), _num(head[5])]
        parts = [[_num(t) for t in ln.split()[:13]] for ln in lines[1:1 + nup]]
        if len(parts) != nup or any(len(p) != 13 for p in parts):
            raise ValueError(f"expected {nup} particle lines of 13 numbers")
    except (ValueError, IndexError) as exc:
        raise ValidationError(f"event {row}: malformed event block ({exc})", file=label) from None
    missing = [w for w in weight_ids if w not in wgts]
    if missing:
        raise ValidationError(f"event {row}: missing reweighting weights {', '.join(missing[:3])}", file=label)
    return [ev, parts, [wgts[w] for w in weight_ids]]


def parse_lhe_events(events: list[list[Any]], weight_ids: list[str]) -> Batch:
    """Columns of a list of parsed events (the output of the streaming parser)."""
    import pyarrow as pa

    out: Batch = {}
    for j, (name, dt) in enumerate(EVENT_COLS):
        out[name] = np.array([e[0][j] for e in events], dtype=dt)
    counts = np.array([len(e[1]) for e in events], dtype=np.int64)
    offsets = np.zeros(len(events) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.array([p for e in events for p in e[1]], dtype=np.float64).reshape(-1, 13)
    for j, (name, dt) in enumerate(PARTICLE_COLS):
        vals = flat[:, j].astype(dt)
        out[name] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(vals))
    for k, wid in enumerate(weight_ids):
        out[f"weight_{wid}"] = np.array([e[2][k] for e in events], dtype=np.float64)
    return out


@dataclass
class LHESource(Source):
    weight_ids: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, **_: Any) -> LHESource:
        parser = _Parser(str(path))
        count = 0
        tail = b""
        with _open(path) as f:
            while parser.init is None or not parser.events:
                block = f.read(BLOCK)
                if not block:
                    break
                count += (tail + block).count(b"</event>")
                tail = block[-8:]
                parser.feed(block)
            while block := f.read(BLOCK):
                count += (tail + block).count(b"</event>")
                tail = block[-8:]
        if parser.init is None:
            raise ValidationError("no <init> block: not a Les Houches Event file", file=str(path))
        cols = [ColumnInfo(n, dt, unit=UNITS.get(n)) for n, dt in EVENT_COLS]
        cols += [ColumnInfo(n, f"var * {dt}", unit=UNITS.get(n)) for n, dt in PARTICLE_COLS]
        wids = parser.weight_ids or (list(parser.events[0][1]) if parser.events else [])
        cols += [ColumnInfo(f"weight_{w}", "float64", unit="pb") for w in wids]
        return cls(path=path, format="lhe", num_rows=count, columns=cols, metadata=_metadata(parser),
                   weight_ids=wids)

    def iter_batches(self, batch_rows: int) -> Iterator[Batch]:
        parser = _Parser(str(self.path))
        row = 0
        pending: list[list[Any]] = []
        with _open(self.path) as f:
            while True:
                block = f.read(BLOCK)
                parser.feed(block, final=not block)
                for text, wgts in parser.events:
                    pending.append(_parse_event(text, self.weight_ids, wgts, str(self.path), row))
                    row += 1
                    if len(pending) == batch_rows:
                        yield parse_lhe_events(pending, self.weight_ids)
                        pending = []
                parser.events = []
                if not block:
                    break
        if pending:
            yield parse_lhe_events(pending, self.weight_ids)
        if row != self.num_rows:
            raise ValidationError(f"read {row} events, counted {self.num_rows} '</event>' tags", file=str(self.path))


def _metadata(parser: _Parser) -> dict[str, Any]:
    """Record fields from <init> (beams, energies) and the header (generator and version)."""
    meta: dict[str, Any] = {}
    init = [ln.split() for ln in (parser.init or "").strip().splitlines() if ln.strip()]
    if init and len(init[0]) >= 4:
        b1, b2 = int(init[0][0]), int(init[0][1])
        e1, e2 = _num(init[0][2]), _num(init[0][3])
        if b1 in BEAMS and b2 in BEAMS and e1 == e2:
            meta["collision"] = {"energy_gev": e1 + e2, "beams": [BEAMS[b1], BEAMS[b2]]}
    header = "".join(parser.header)
    gens = []
    m = re.search(r"VERSION\s+(\d+\.\d+\.\d+)", header)
    if "MadGraph5_aMC@NLO" in header:
        gens.append({"name": "MadGraph5_aMC@NLO", "version": m.group(1) if m else None, "role": "prior"})
    elif "POWHEG" in header.upper():
        gens.append({"name": "POWHEG-BOX", "role": "prior"})
    proc = re.search(r"^\s*generate\s+(.+?)\s*$", header, re.M)
    meta["measurement"] = {"generators": gens, **({"process": proc.group(1)[:500]} if proc else {})}
    return meta
