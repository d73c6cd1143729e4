"""HEPData submission: ``submission.yaml`` plus one table per standard observable, validated offline.

The tables are computed by the reinterpretation engine from the archived unbinned data (one per official binning
of each dataset member); each table's ``additional_resources`` and the submission's first document point to the
unbinned data by DOI, as the HEPData docs recommend for large per-event releases. ``hepdata-validator`` checks
the folder with remote schema loading off before it is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archive.errors import ValidationError
from archive.publish._common import ReleaseView, member_doi, spdx_url

# one offline hepdata-validator call for the whole project (schema 1.1.1, remote schemas off)
from archive.reinterpret._hepdata import validate_hepdata as validate_submission

__all__ = ["export_hepdata", "validate_submission"]


def _dump_all(docs: list[dict[str, Any]]) -> str:
    import yaml

    return str(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=120))


def export_hepdata(view: ReleaseView, out: Path) -> None:
    """Write the submission folder (``submission.yaml`` and one ``<table>.yaml`` per observable) into ``out``."""
    import yaml

    from archive.publish._observables import standard_observables

    rel = view.release
    observables = standard_observables(view)
    if not observables:
        raise ValidationError(f"{rel.ref} has no standard observable: no dataset member has stored tables and an "
                              "official binning (dataset.binnings); nothing to tabulate for HEPData")
    license_ = {"name": rel.license or "CC0-1.0", "url": spdx_url(rel.license) or "https://spdx.org/licenses/CC0-1.0"}
    resources = []
    for ds in view.of_kind("dataset"):
        resources.append({"location": f"https://doi.org/{member_doi(rel, ds)}",
                          "description": f"Unbinned data (events and per-event weights) of {ds.title}, "
                                         f"{ds.ref}; sha256 of every file in the release manifest.",
                          "type": "unbinned data", "license": license_})
    resources.append({"location": f"https://doi.org/{rel.release.doi}",
                      "description": f"The complete open data release {rel.ref} ({rel.title}).",
                      "license": license_})
    docs: list[dict[str, Any]] = [{
        "comment": (rel.description or rel.title).strip(),
        "additional_resources": resources,
        "dateupdated": view.date.strftime("%d/%m/%Y 00:00:00"),
        "modifications": [{"action": f"Created by hep-archive from {rel.ref}", "who": rel.release.publisher}],
    }]
    used: set[str] = set()
    for so in observables:
        h = so.histogram
        name = f"{so.observable} in {so.dataset.name}"[:64]
        stem = so.slug[:60]
        if stem in used:  # pragma: no cover - slugs are unique per (dataset, version, observable)
            raise ValidationError(f"two tables would both be written to {stem}.yaml")
        used.add(stem)
        description = (f"Distribution of {so.observable} computed from the unbinned dataset {so.dataset.ref} with "
                       f"its official binning{f' ({so.source})' if so.source else ''}; one uncertainty per weight "
                       "family, each combined by the family's recorded rule.")
        table = h.to_hepdata_table(name, description)
        keywords: list[dict[str, Any]] = [{"name": "observables", "values": [so.observable]}]
        if so.dataset.collision is not None:
            keywords.append({"name": "cmenergies", "values": [so.dataset.collision.energy_gev]})
        docs.append({
            "name": name, "description": description, "keywords": keywords, "data_file": f"{stem}.yaml",
            "location": f"Release {rel.ref}", "data_license": license_,
            "additional_resources": [{"location": f"https://doi.org/{member_doi(rel, so.dataset)}",
                                      "description": "the unbinned data this table is a projection of",
                                      "type": "unbinned data"}],
        })
        (out / f"{stem}.yaml").write_text(yaml.safe_dump(table, sort_keys=False, allow_unicode=True, width=120),
                                          encoding="utf-8")
    (out / "submission.yaml").write_text(_dump_all(docs), encoding="utf-8")
    validate_submission(out)
