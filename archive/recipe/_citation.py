"""``CITATION.cff`` beside a recipe: who wrote the analysis and under which licence (Citation File Format 1.2).

GitHub, Zenodo and Software Heritage read the same file, so the recipe's authors are written once. Only what a
catalog record needs is taken: ``authors`` (persons and entities), ``license``, ``keywords``, ``abstract``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from archive.errors import ValidationError

__all__ = ["CITATION_FILE", "read_citation"]

CITATION_FILE = "CITATION.cff"
_ORCID = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")


def _creator(author: Any, where: str, label: str) -> dict[str, Any]:
    if not isinstance(author, dict):
        raise ValidationError("an author must be a mapping (a person or an entity)", file=label, field=where)
    family, given = author.get("family-names"), author.get("given-names")
    if family:
        name = f"{family}, {given}" if given else str(family)
    elif author.get("name"):
        name = str(author["name"])
    else:
        raise ValidationError("an author needs family-names (a person) or name (an entity)", file=label, field=where)
    out: dict[str, Any] = {"name": name}
    if author.get("orcid"):
        m = _ORCID.match(str(author["orcid"]))
        if not m:
            raise ValidationError(f"{author['orcid']!r} is not an ORCID (https://orcid.org/0000-0000-0000-0000)",
                                  file=label, field=f"{where}.orcid")
        out["orcid"] = m.group(1)
    if author.get("affiliation"):
        out["affiliation"] = [{"name": str(author["affiliation"])}]
    return out


def read_citation(path: Path) -> dict[str, Any]:
    """Record envelope fields (``creators``, ``license``, ``keywords``, ``abstract``) from a CITATION.cff."""
    from archive.schema._yaml import load_yaml_file

    label = str(path)
    data = load_yaml_file(path, source=label)
    if not isinstance(data, dict):
        raise ValidationError("CITATION.cff must be a mapping", file=label)
    for key in ("cff-version", "message", "authors"):
        if key not in data:
            raise ValidationError(f"'{key}' is required by the Citation File Format", file=label, field=key)
    authors = data["authors"]
    if not isinstance(authors, list) or not authors:
        raise ValidationError("'authors' must be a non-empty list", file=label, field="authors")
    out: dict[str, Any] = {"creators": [_creator(a, f"authors[{i}]", label) for i, a in enumerate(authors)]}
    lic = data.get("license")
    if isinstance(lic, list):
        lic = " OR ".join(str(x) for x in lic)
    if lic:
        out["license"] = str(lic)
    if data.get("keywords"):
        if not isinstance(data["keywords"], list):
            raise ValidationError("'keywords' must be a list", file=label, field="keywords")
        out["keywords"] = [str(k) for k in data["keywords"]]
    if data.get("abstract"):
        out["abstract"] = str(data["abstract"]).strip()
    return out
