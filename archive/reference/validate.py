"""Step 5: the closure test (unfolded pseudo-data vs its known truth) and a figure with uncertainty bands.

``python -m archive.reference.validate --card cards/validate.yaml --unfolded unfolded.parquet
--truth data_truth.parquet --prior sim_truth.parquet --output closure.json --figure closure.png``

For every closure observable: histograms of the nominal weights and of every replica/variation column,
per-family covariances by the family's combination rule, chi2 = D^T V^-1 D with D = unfolded - truth and V the
sum of the card's covariance families, ndf = number of bins, p-value from the chi2 distribution.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.reference._common import (
    OBSERVABLES,
    StepTimer,
    add_common_arguments,
    load_card,
    read_parquet,
    run_main,
    write_json,
    write_provenance,
)
from archive.reference._derived import observable

__all__ = ["closure", "family_covariance", "main", "resolve_columns"]


def resolve_columns(family: Mapping[str, Any]) -> list[str]:
    """Column names of a weight family (explicit columns, pattern + index range, or pairs)."""
    if family.get("columns"):
        return [str(c) for c in family["columns"]]
    if family.get("pairs"):
        return [str(c) for pair in family["pairs"] for c in pair]
    pattern, rng = family.get("pattern"), family.get("index_range")
    if not pattern or not rng:
        raise ValidationError("a family needs columns or pattern + index_range", field=str(family.get("name")))
    return [str(pattern).format(i=i) for i in range(int(rng[0]), int(rng[1]))]


def _hist(x: np.ndarray, w: np.ndarray, bins: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    return np.histogram(x[ok], bins=bins, weights=w[ok].astype(np.float64))[0]


def family_covariance(family: Mapping[str, Any], hists: np.ndarray, nominal: np.ndarray,
                      sumw2: np.ndarray | None = None) -> np.ndarray:
    """Covariance (n_bins x n_bins) of one family from its histograms (n_members x n_bins).

    Rules follow the dataset contract: std_replicas (sample covariance, ddof), sem_median_ensemble
    (factor^2 * sample covariance / N), quadrature_diff (sum of outer products of signed deltas),
    sum_w2 (diagonal sum of squared weights), alternative_sample (outer product of the delta).
    """
    comb = family.get("combination") or {}
    rule = comb.get("rule")
    ddof = int(comb.get("ddof", 1))
    if rule in ("std_replicas", "sem_median_ensemble"):
        if len(hists) <= ddof:
            return np.zeros((len(nominal), len(nominal)))
        delta = hists - hists.mean(axis=0)
        cov = delta.T @ delta / (len(hists) - ddof)
        if rule == "sem_median_ensemble":
            factor = comb.get("factor")
            factor = 1.253 if factor is None else float(factor)
            cov = cov * factor**2 / len(hists)
        return np.asarray(cov)
    if rule in ("quadrature_diff", "alternative_sample"):
        delta = hists - nominal
        return np.asarray(delta.T @ delta)
    if rule == "sum_w2":
        return np.diag(sumw2 if sumw2 is not None else np.zeros(len(nominal)))
    return np.zeros((len(nominal), len(nominal)))


def _paired_covariance(pairs: Sequence[Sequence[str]], x: np.ndarray, cols: Mapping[str, np.ndarray],
                       bins: np.ndarray, h_ref: np.ndarray) -> np.ndarray:
    """paired_closure: per pair delta = (h_a - h_b) * h_ref / h_b, outer products summed over the pairs."""
    cov = np.zeros((len(h_ref), len(h_ref)))
    for a, b in pairs:
        h_a = _hist(x, cols[a].astype(np.float64), bins)
        h_b = _hist(x, cols[b].astype(np.float64), bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(h_b != 0, (h_a - h_b) * h_ref / h_b, 0.0)
        cov += np.outer(delta, delta)
    return cov


def closure(unfolded: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], families: Sequence[Mapping[str, Any]],
            observables: Mapping[str, Sequence[float]], covariance: Sequence[str], threshold: float,
            prior: Mapping[str, np.ndarray] | None = None, truth_statistics: bool = True,
            alternative: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The closure test on every observable; ``passed`` when every p-value exceeds ``threshold``.

    With ``truth_statistics`` the truth histogram's own statistical variance (sum of squared weights) is added
    to the covariance: the unfolding regularises (it only partly follows the pseudo-data's fluctuations), so
    the truth's fluctuations enter the difference D. ``alternative`` (the same pseudo-data unfolded with the
    alternative prior) adds the ``unfolding_prior`` term |h_alt - h_nominal| (rule ``alternative_sample``).
    """
    from scipy import stats

    by_name = {str(f["name"]): f for f in families}
    for name in covariance:
        if name not in by_name and name != "unfolding_prior":
            raise ValidationError(f"covariance family {name!r} is not in the unfolded file's families",
                                  field="covariance")
    results: dict[str, Any] = {}
    for obs, edges in observables.items():
        bins = np.asarray(edges, dtype=np.float64)
        if bins.ndim != 1 or len(bins) < 2 or np.any(np.diff(bins) <= 0):
            raise ValidationError("bins must be increasing edges", field=f"closure.{obs}")
        x = observable(obs, unfolded)
        w_nom = unfolded["weights_nominal"].astype(np.float64)
        h_nom = _hist(x, w_nom, bins)
        sumw2 = _hist(x, w_nom**2, bins)
        xt = observable(obs, truth)
        wt = truth["weight_mc"].astype(np.float64)
        h_truth = _hist(xt, wt, bins)
        covs: dict[str, np.ndarray] = {}
        for fam in families:
            name = str(fam["name"])
            if name in ("nominal", "prior"):
                continue
            if fam.get("pairs"):
                covs[name] = _paired_covariance(fam["pairs"], x, unfolded, bins, h_nom)
                continue
            hists = np.array([_hist(x, unfolded[c].astype(np.float64), bins) for c in resolve_columns(fam)])
            covs[name] = family_covariance(fam, hists, h_nom, sumw2)
        if alternative is not None:
            h_alt = _hist(observable(obs, alternative), alternative["weights_nominal"].astype(np.float64), bins)
            covs["unfolding_prior"] = np.outer(h_alt - h_nom, h_alt - h_nom)
        missing = [name for name in covariance if name not in covs]
        if missing:
            raise ValidationError(f"covariance terms {missing} are not available (is --alternative missing?)",
                                  field="covariance")
        v = sum((covs[name] for name in covariance), np.zeros((len(h_nom), len(h_nom))))
        if truth_statistics:
            v = v + np.diag(_hist(xt, wt**2, bins))
        d = h_nom - h_truth
        try:
            chi2 = float(d @ np.linalg.solve(v, d))
            ndf = len(d)
        except np.linalg.LinAlgError:
            chi2 = float(d @ np.linalg.pinv(v) @ d)
            ndf = int(np.linalg.matrix_rank(v))
        p = float(stats.chi2.sf(chi2, ndf))
        total = sum(covs.values(), np.zeros_like(v))
        entry: dict[str, Any] = {
            "bins": bins.tolist(), "unfolded": h_nom.tolist(), "truth": h_truth.tolist(),
            "uncertainty": {name: np.sqrt(np.clip(np.diag(c), 0, None)).tolist() for name, c in covs.items()},
            "closure_uncertainty": np.sqrt(np.clip(np.diag(v), 0, None)).tolist(),
            "total_uncertainty": np.sqrt(np.clip(np.diag(total), 0, None)).tolist(),
            "chi2": chi2, "ndf": ndf, "p_value": p, "passed": p > threshold,
        }
        if prior is not None:
            # the same test on the prior: how far the truth is from where the unfolding started
            h_prior = _hist(observable(obs, prior), prior["weight_mc"].astype(np.float64), bins)
            dp = h_prior - h_truth
            entry["prior"] = h_prior.tolist()
            entry["prior_chi2"] = float(dp @ np.linalg.pinv(v) @ dp)
            entry["prior_p_value"] = float(stats.chi2.sf(entry["prior_chi2"], ndf))
        results[obs] = entry
    return {"observables": results, "threshold_p_value": threshold, "covariance": list(covariance),
            "truth_statistics": truth_statistics,
            "passed": all(r["passed"] for r in results.values())}


def plot(result: Mapping[str, Any], observable_name: str, label: str, path: Path) -> Path:
    """Unfolded (band: total uncertainty) vs truth and prior, with the ratio to the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = result["observables"][observable_name]
    edges = np.asarray(r["bins"])
    width = np.diff(edges)
    nom = np.asarray(r["unfolded"]) / width
    tot = np.asarray(r["total_uncertainty"]) / width
    truth = np.asarray(r["truth"]) / width
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, (ax, rx) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.stairs(nom + tot, edges, baseline=nom - tot, fill=True, alpha=0.3, color="C0", label="total uncertainty")
    ax.stairs(nom, edges, color="C0", label="unfolded pseudo-data (MultiFold)")
    ax.errorbar(centres, truth, fmt="ko", ms=4, label="truth (pseudo-data particle level)")
    if "prior" in r:
        ax.stairs(np.asarray(r["prior"]) / width, edges, color="C1", ls="--", label="prior (simulation)")
    ax.set_ylabel("d$\\sigma$/dx [fb per unit]")
    title = f"closure: $\\chi^2$/ndf = {r['chi2']:.1f}/{r['ndf']}, p = {r['p_value']:.2f}"
    if "prior_p_value" in r:
        title += f" (prior: p = {r['prior_p_value']:.2g})"
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 1.45 * float(max(np.max(nom + tot), np.max(truth))))
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    safe = np.where(truth > 0, truth, 1.0)
    rx.stairs((nom + tot) / safe, edges, baseline=(nom - tot) / safe, fill=True, alpha=0.3, color="C0")
    rx.stairs(nom / safe, edges, color="C0")
    if "prior" in r:
        rx.stairs(np.asarray(r["prior"]) / width / safe, edges, color="C1", ls="--")
    rx.axhline(1.0, color="k", lw=0.8)
    rx.set_ylabel("unfolded / truth")
    rx.set_xlabel(label, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None} if path.suffix == ".png" else {"Creator": None,
                                                                                         "CreationDate": None})
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archive.reference.validate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="validation card (YAML)")
    parser.add_argument("--unfolded", type=Path, required=True, help="unfold output (Parquet)")
    parser.add_argument("--truth", type=Path, required=True, help="reco output of the pseudo-data, particle level")
    parser.add_argument("--prior", type=Path, default=None, help="reco output of the simulation, particle level")
    parser.add_argument("--alternative", type=Path, default=None,
                        help="the pseudo-data unfolded with the alternative prior (unfold output)")
    parser.add_argument("--output", type=Path, required=True, help="closure result (JSON)")
    parser.add_argument("--figure", type=Path, required=True, help="figure (PNG or PDF)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    timer = StepTimer()
    card = load_card(args.card)
    fam_path = args.unfolded.with_name(args.unfolded.name + ".families.json")
    if not fam_path.is_file():
        raise ValidationError("the weight-families sidecar of the unfolded file is missing; rerun unfold",
                              file=str(fam_path))
    families = json.loads(fam_path.read_text(encoding="utf-8"))["weight_families"]
    unfolded = read_parquet(args.unfolded)
    truth_all = read_parquet(args.truth, [*OBSERVABLES, "pass", "weight_mc"])
    sel = truth_all["pass"].astype(bool)
    truth = {k: v[sel] for k, v in truth_all.items()}
    prior = None
    if args.prior is not None:
        prior_all = read_parquet(args.prior, [*OBSERVABLES, "pass", "weight_mc"])
        psel = prior_all["pass"].astype(bool)
        prior = {k: v[psel] for k, v in prior_all.items()}
    observables = card.get("closure")
    if not isinstance(observables, dict) or not observables:
        raise ValidationError("card needs a mapping 'closure: {observable: [bin edges]}'", file=str(args.card),
                              field="closure")
    alternative = read_parquet(args.alternative, [*OBSERVABLES, "weights_nominal"]) if args.alternative else None
    result = closure(unfolded, truth, families, observables, list(card.get("covariance", [])),
                     float(card.get("threshold_p_value", 0.01)), prior=prior,
                     truth_statistics=bool(card.get("truth_statistics", True)), alternative=alternative)
    fig_cfg = card.get("figure") or {}
    fig_obs = str(fig_cfg.get("observable", next(iter(observables))))
    if fig_obs not in observables:
        raise ValidationError("figure.observable must be one of the closure observables", file=str(args.card),
                              field="figure.observable")
    plot(result, fig_obs, str(fig_cfg.get("label", fig_obs)), args.figure)
    result["figure"] = {"observable": fig_obs, "file": args.figure.name}
    write_json(args.output, result)
    inputs = [args.card, args.unfolded, args.truth, *([args.alternative] if args.alternative else [])]
    write_provenance(args.output, step="validate", inputs=inputs,
                     outputs=[args.output, args.figure],
                     parameters={"passed": result["passed"],
                                 "p_values": {k: v["p_value"] for k, v in result["observables"].items()}},
                     device_requested=args.device, device_used="cpu", seconds=timer.seconds())
    print(json.dumps({"passed": result["passed"],
                      "p_values": {k: round(v["p_value"], 4) for k, v in result["observables"].items()}}))


if __name__ == "__main__":
    raise SystemExit(run_main(main, None))
