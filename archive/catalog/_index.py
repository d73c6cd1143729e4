"""The search index: a derived SQLite (FTS5) file that can be deleted and rebuilt from the YAML at any time.

It is rebuilt automatically whenever the catalog's fingerprint (path, size, mtime of every record file)
changes, so it can never answer from stale records.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive._fsutil import semver_key
from archive.catalog._store import Catalog
from archive.schema import RecordBase, record_to_data

__all__ = ["Index", "SearchHit"]

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE records(
  key TEXT PRIMARY KEY, id TEXT, kind TEXT, name TEXT, version TEXT, status TEXT, title TEXT,
  experiment TEXT, collaboration TEXT, path TEXT, latest INTEGER
);
CREATE TABLE lookups(value TEXT, key TEXT, scheme TEXT);
CREATE INDEX lookups_value ON lookups(value);
CREATE VIRTUAL TABLE fts USING fts5(
  key UNINDEXED, title, keywords, description, body, tokenize = 'porter unicode61'
);
"""


@dataclass(frozen=True, slots=True)
class SearchHit:
    ref: str
    id: str
    kind: str
    version: str
    status: str
    title: str
    experiment: str | None
    score: float
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


def _flatten_text(obj: Any, out: list[str]) -> None:
    if isinstance(obj, str):
        if not obj.startswith("sha256:"):
            out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _flatten_text(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _flatten_text(v, out)


def _lookups(record: RecordBase) -> Iterable[tuple[str, str]]:
    yield record.id, "id"
    yield record.ref, "ref"
    ids = record.identifiers
    for scheme in ("doi", "concept_doi", "arxiv", "inspire", "hepdata", "swhid"):
        value = getattr(ids, scheme)
        if value:
            yield value.lower(), scheme
    for f in record.files:
        yield f.sha256, "sha256"


class Index:
    def __init__(self, catalog: Catalog, path: Path) -> None:
        self.catalog = catalog
        self.path = path

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for f in self.catalog.files():
            st = f.path.stat()
            h.update(f"{f.label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def is_current(self) -> bool:
        if not self.path.exists():
            return False
        try:
            with contextlib.closing(self._connect()) as db:
                row = db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        except sqlite3.DatabaseError:
            return False
        return bool(row) and row[0] == self.fingerprint()

    def ensure(self) -> None:
        if not self.is_current():
            self.rebuild()

    def rebuild(self) -> int:
        """Rebuild from the YAML files; returns the number of records indexed. Atomic (temp file + rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fp = self.fingerprint()
        records = list(self.catalog.iter_records())
        latest: dict[str, str] = {}
        for _, r in records:
            if r.id not in latest or semver_key(r.version) > semver_key(latest[r.id]):
                latest[r.id] = r.version
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript(_SCHEMA)
            for f, r in records:
                key = r.ref
                db.execute(
                    "INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (key, r.id, r.kind, r.name, r.version, r.status, r.title, r.experiment, r.collaboration,
                     f.label, int(latest[r.id] == r.version)),
                )
                body: list[str] = []
                data = record_to_data(r)
                for k in ("title", "keywords", "description", "id", "version", "status", "schema_version"):
                    data.pop(k, None)
                _flatten_text(data, body)
                db.execute(
                    "INSERT INTO fts VALUES (?,?,?,?,?)",
                    (key, r.title + " " + r.name.replace("-", " ").replace("_", " "), " ".join(r.keywords),
                     r.description, " ".join(body)),
                )
                db.executemany("INSERT INTO lookups VALUES (?,?,?)", [(v, key, s) for v, s in _lookups(r)])
            db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fp,))
            db.commit()
        tmp.replace(self.path)
        return len(records)

    def search(
        self, query: str, *, kind: str | None = None, experiment: str | None = None, status: str | None = None,
        all_versions: bool = False, limit: int = 20,
    ) -> list[SearchHit]:
        """Ranked full-text search (bm25; title counts most). Any query word may match; records that match
        more words, and in the title, rank first."""
        self.ensure()
        words = re.findall(r"\w+", query.lower())
        where, params = [], []
        if kind:
            where.append("r.kind = ?")
            params.append(kind)
        if experiment:
            where.append("lower(r.experiment) = lower(?)")
            params.append(experiment)
        if status:
            where.append("r.status = ?")
            params.append(status)
        if not all_versions:
            where.append("r.latest = 1")
        cond = (" AND " + " AND ".join(where)) if where else ""
        with contextlib.closing(self._connect()) as db:
            if words:
                match = " OR ".join(f'"{w}"*' if len(w) > 2 else f'"{w}"' for w in words)
                sql = (
                    "SELECT r.key, r.id, r.kind, r.version, r.status, r.title, r.experiment, "
                    "bm25(fts, 0.0, 10.0, 5.0, 2.0, 1.0) AS score, r.path FROM fts JOIN records r ON r.key = fts.key "
                    f"WHERE fts MATCH ?{cond} ORDER BY score LIMIT ?"
                )
                rows = db.execute(sql, [match, *params, limit]).fetchall()
            else:
                sql = (
                    "SELECT r.key, r.id, r.kind, r.version, r.status, r.title, r.experiment, 0.0, r.path "
                    f"FROM records r WHERE 1=1{cond} ORDER BY r.id LIMIT ?"
                )
                rows = db.execute(sql, [*params, limit]).fetchall()
        return [
            SearchHit(row[0], row[1], row[2], row[3], row[4], row[5], row[6], -float(row[7]), row[8]) for row in rows
        ]

    def lookup(self, value: str) -> list[str]:
        """Exact look-up by id, id@version, DOI, arXiv, INSPIRE, HEPData, SWHID or file digest."""
        self.ensure()
        v = value.strip()
        v = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", v, flags=re.I)
        candidates = {v, v.lower()}
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT DISTINCT key FROM lookups WHERE value IN ({','.join('?' * len(candidates))}) ORDER BY key",
                sorted(candidates),
            ).fetchall()
        return [r[0] for r in rows]
