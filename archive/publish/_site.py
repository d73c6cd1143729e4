"""Static web site of a release: one page for the release and one per member record, no network needed.

Layout::

    index.html                        the release: abstract, creators, citation, identifiers, contents, plots
    records/<kind>-<name>-<version>.html   one page per member
    plots/<dataset>-<version>-<observable>.png   standard observables with their uncertainty bands
    assets/style.css

Every link between pages is relative; the only absolute links are identifiers (doi.org, orcid.org, spdx.org)
that a reader may follow. Pages embed schema.org ``Dataset`` JSON-LD for search engines. A withdrawn release
renders only its tombstone page. Deterministic: the same release gives the same bytes (the plots are drawn with
one thread and carry no timestamp).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archive.publish._common import (
    KIND_LABELS,
    ReleaseView,
    dataset_variables,
    dataset_weight_families,
    family_columns,
    kind_section,
    member_doi,
    spdx_url,
)
from archive.publish._site_templates import CSS, TEMPLATES
from archive.schema import RecordBase

__all__ = ["export_site", "page_name"]


def page_name(record: RecordBase) -> str:
    return f"records/{record.kind}-{record.name}-{record.version}.html"


def _size(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _citation(view: ReleaseView, record: RecordBase, doi: str) -> dict[str, str]:
    creators = record.creators or view.release.creators
    names = "; ".join(c.name for c in creators) or view.release.release.publisher
    year = view.date.year
    text = f"{names} ({year}). {record.title} (version {record.version}). {view.release.release.publisher}. " \
           f"https://doi.org/{doi}"
    key = f"{record.name}_{year}".replace("-", "_").replace(".", "_")
    authors = " and ".join(c.name for c in creators)
    bibtex = (f"@misc{{{key},\n  author    = {{{authors}}},\n  title     = {{{record.title}}},\n"
              f"  year      = {{{year}}},\n  version   = {{{record.version}}},\n"
              f"  publisher = {{{view.release.release.publisher}}},\n  doi       = {{{doi}}}\n}}")
    return {"text": text, "bibtex": bibtex}


def _jsonld(view: ReleaseView, record: RecordBase, doi: str) -> str:
    data: dict[str, Any] = {
        "@context": "https://schema.org", "@type": "Dataset" if record.kind != "recipe" else "SoftwareSourceCode",
        "name": record.title, "description": record.description or record.title, "version": record.version,
        "identifier": f"https://doi.org/{doi}", "datePublished": view.date.isoformat(),
        "creator": [{"@type": "Person" if "," in c.name else "Organization", "name": c.name}
                    for c in (record.creators or view.release.creators)],
    }
    if record.license or view.release.license:
        data["license"] = spdx_url(record.license or view.release.license)
    # escape '<' so the JSON can never close the script element
    return json.dumps(data, sort_keys=True, ensure_ascii=False).replace("<", "\\u003c")


def _example(view: ReleaseView, record: RecordBase, observables: list[Any]) -> str:
    if record.kind != "dataset":
        return ""
    obs = next((so.observable for so in observables if so.dataset.ref == record.ref), None)
    if obs is None:
        variables = [v["variable"] for v in dataset_variables(record) if v.get("unit")]
        obs = variables[0] if variables else "OBSERVABLE"
        bins = '"0:100:20"'
    else:
        bins = '"official"'
    return ("from pathlib import Path; from archive import open_archive; from archive.reinterpret import histogram\n"
            f'ds = open_archive("ARCHIVE_ROOT").dataset("{record.name}", version="{record.version}")\n'
            f'histogram(ds, "{obs}", {bins}).plot(Path("{obs}.png"))  # or .to_hepdata_table(...)')


def _rerun(view: ReleaseView, record: RecordBase) -> tuple[list[dict[str, str]], str]:
    rows: list[dict[str, str]] = []
    by_ref = {m.ref: m for m in view.members}
    recipes = [m for m in view.of_kind("recipe")]
    if record.kind == "run":
        rec = by_ref.get(str(kind_section(record).get("recipe")))
        recipes = [rec] if rec is not None else []
    elif record.kind == "recipe":
        recipes = [record]
    elif record.kind == "dataset":
        recipes = [r for r in recipes if record.ref in (kind_section(r).get("datasets") or {}).values()]
    else:
        recipes = []
    images: dict[str, RecordBase] = {}
    for r in recipes:
        rows.append({"what": "recipe", "ref": r.ref, "href": page_name(r).removeprefix("records/"),
                     "pin": ", ".join(f"{f.path} {f.sha256}" for f in r.files)})
        for step in kind_section(r).get("steps") or []:
            img = by_ref.get(step.get("image") or "")
            if img is not None:
                images[img.ref] = img
    for img in images.values():
        rows.append({"what": "container image", "ref": img.ref, "href": page_name(img).removeprefix("records/"),
                     "pin": str(kind_section(img).get("manifest_digest") or "")})
    if record.kind == "run":
        cmd = f"hep-archive rerun {record.ref}"
    else:
        cmd = f"hep-archive run {recipes[0].ref} --backend bwrap" if recipes else ""
    return rows, cmd


def export_site(view: ReleaseView, out: Path) -> None:
    """Render the site into ``out``."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    rel = view.release
    (out / "assets").mkdir()
    (out / "assets" / "style.css").write_text(CSS.lstrip(), encoding="utf-8")
    withdrawn = rel.status == "withdrawn"
    observables: list[Any] = []
    if not withdrawn:
        from archive.publish._observables import standard_observables

        observables = standard_observables(view)
        if observables:
            (out / "plots").mkdir()
        for so in observables:
            so.histogram.plot(out / "plots" / f"{so.slug}.png")

    def plots_for(record: RecordBase | None, root: str) -> list[dict[str, str]]:
        return [{"src": f"{root}plots/{so.slug}.png", "alt": f"{so.observable} in {so.dataset.ref}",
                 "caption": f"{so.observable} — {so.dataset.title} ({so.dataset.version})"
                            + (f"; binning: {so.source}" if so.source else "")}
                for so in observables if record is None or so.dataset.ref == record.ref]

    members = [{"kind_label": KIND_LABELS.get(m.kind, m.kind), "title": m.title, "version": m.version,
                "href": page_name(m), "nfiles": len(m.files), "doi": member_doi(rel, m)} for m in view.members]
    first_ds = next(iter(view.of_kind("dataset")), None)
    common = {"release": rel, "date": view.date.isoformat()}
    index = env.get_template("index.html").render(
        **common, root="", page_title=f"{rel.title} — release {rel.version}", members=members,
        size=_size(rel.release.total_size), citation=_citation(view, rel, rel.release.doi),
        license_url=spdx_url(rel.license), plots=plots_for(None, ""), jsonld=_jsonld(view, rel, rel.release.doi),
        example_text=_example(view, first_ds, observables) if first_ds is not None else "",
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    if withdrawn:
        return
    (out / "records").mkdir()
    template = env.get_template("record.html")
    for m in view.members:
        doi = member_doi(rel, m)
        ids = [(k, v) for k, v in m.identifiers.model_dump(exclude_none=True).items() if k != "doi"]
        families = [{"name": f.get("name", ""), "type": f.get("type", ""),
                     "columns": ", ".join(family_columns(f)[:4]) + (" …" if len(family_columns(f)) > 4 else "")
                                + f" ({len(family_columns(f))})",
                     "rule": _rule(f.get("combination") or {}),
                     "norm": " ".join(str(x) for x in (f.get("normalisation") or {}).values() if x)}
                    for f in dataset_weight_families(m)]
        rerun, cmd = _rerun(view, m)
        page = template.render(
            **common, root="../", record=m, doi=doi, kind_label=KIND_LABELS.get(m.kind, m.kind),
            page_title=f"{m.title} — {m.ref}", citation=_citation(view, m, doi), identifiers=ids,
            variables=dataset_variables(m), families=families, plots=plots_for(m, "../"),
            rerun=rerun, rerun_cmd=cmd, example_text=_example(view, m, observables), jsonld=_jsonld(view, m, doi),
        )
        (out / page_name(m)).write_text(page, encoding="utf-8")


def _rule(comb: dict[str, Any]) -> str:
    rule = str(comb.get("rule", ""))
    text = {"sum_w2": "σ² = Σ w² per bin", "std_replicas": "standard deviation over replicas",
            "sem_median_ensemble": "factor × std / √N over the ensemble", "quadrature_diff":
            "Σ (h_k − h_ref)² in quadrature", "paired_closure": "|h_a − h_b| · h_ref / h_b per pair, in quadrature",
            "alternative_sample": "|h_alt − h_ref|", "none": "not an uncertainty"}.get(rule, rule)
    extras = [f"{k}={v}" for k, v in comb.items() if k != "rule" and v is not None
              and (k != "ddof" or rule in ("std_replicas", "sem_median_ensemble"))]
    return f"{rule}: {text}" + (f" ({', '.join(extras)})" if extras else "")
