"""Plots: the distribution with its total-uncertainty band, an optional prediction, and a ratio panel; a 2-D
histogram as colour maps of its values and of its total relative uncertainty.

matplotlib with the Agg backend (no display) and the mplhep style; the file type follows the suffix
(``.png`` or ``.pdf``). The legend names every element, the ratio panel shows prediction / measured with the
measured band around 1, and a chi2/ndf label appears when a prediction is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archive.errors import ValidationError

if TYPE_CHECKING:
    from archive.reinterpret._histogram import Histogram

__all__ = ["plot_histogram", "plot_histogram2d"]

SUFFIXES = (".png", ".pdf", ".svg")


def _stairs_band(ax: Any, edges: np.ndarray, lo: np.ndarray, hi: np.ndarray, **kw: Any) -> None:
    ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", **kw)


def plot_histogram(h: Histogram, path: Path, prediction: Any = None) -> Path:
    """Draw ``h`` (and ``prediction``: a Histogram, Prediction or prediction source) to ``path``.

    Raises:
        ValidationError: an unsupported file suffix.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(f"plot file must end in {', '.join(SUFFIXES)}, got {path.name!r}", field="plot")
    if h.ndim == 2:
        if prediction is not None:
            raise ValidationError("a 2-D plot draws no prediction; compare it with --compare (chi2) instead",
                                  field="plot")
        return plot_histogram2d(h, path)
    if h.ndim > 2:
        raise ValidationError(f"a {h.ndim}-D histogram cannot be plotted; plot 1-D or 2-D histograms", field="plot")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import mplhep

    from archive.reinterpret._compare import _as_prediction, compare

    pred = _as_prediction(prediction) if prediction is not None else None
    cmp = compare(h, pred) if pred is not None else None
    edges, vals, err = h.edges, h.values, h.total
    with plt.style.context(mplhep.style.ROOT):
        fig, (ax, rax) = plt.subplots(2, 1, sharex=True, figsize=(8, 7.5),
                                      gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
        try:
            _stairs_band(ax, edges, vals - err, vals + err, color="tab:blue", alpha=0.3, lw=0,
                         label="total uncertainty")
            ax.stairs(vals, edges, color="tab:blue", lw=2, label=f"measured: {h.dataset}")
            if pred is not None:
                perr = pred.errors
                if np.any(perr > 0):
                    _stairs_band(ax, edges, pred.values - perr, pred.values + perr, facecolor="none",
                                 edgecolor="tab:red", hatch="///", lw=0, label="prediction uncertainty")
                label = f"prediction: {pred.label}"
                if cmp is not None:
                    label += f"  ($\\chi^2$/ndf = {cmp.chi2:.1f}/{cmp.ndf}, p = {cmp.p_value:.2g})"
                ax.stairs(pred.values, edges, color="tab:red", lw=2, ls="--", label=label)
            unit = f" [{h.unit}]" if h.unit and h.normalisation == "absolute" else ""
            ax.set_ylabel(("cross-section per bin" if h.normalisation == "absolute" else "weighted events per bin")
                          + unit)
            top = float(np.nanmax(np.concatenate([vals + err, pred.values if pred is not None else vals])))
            ax.set_ylim(min(0.0, float(np.nanmin(vals - err))), top * 1.45 if top > 0 else 1.0)
            title = h.dataset + (f"  |  selection: {h.where}" if h.where else "")
            ax.set_title(title, fontsize=13, loc="left")
            ax.legend(loc="upper right", fontsize=12, frameon=False)
            with np.errstate(all="ignore"):
                rel = np.where(vals != 0, err / np.abs(vals), 0.0)
            _stairs_band(rax, edges, 1 - rel, 1 + rel, color="tab:blue", alpha=0.3, lw=0)
            rax.axhline(1.0, color="tab:blue", lw=1.5)
            span = float(np.max(rel)) if rel.size else 0.0
            if pred is not None:
                with np.errstate(all="ignore"):
                    ratio = np.where(vals != 0, pred.values / vals, np.nan)
                rax.stairs(ratio, edges, color="tab:red", lw=2, ls="--")
                finite = ratio[np.isfinite(ratio)]
                if finite.size:
                    span = max(span, float(np.max(np.abs(finite - 1))))
            span = min(max(0.05, span * 1.15), 1.5)
            rax.set_ylim(1 - span, 1 + span)
            rax.set_ylabel("pred. / meas." if pred is not None else "rel. unc.", fontsize=14)
            xunit = f" [{h.observable_unit}]" if h.observable_unit else ""
            xlabel = h.observable if h.observable == h.expression else f"{h.observable} = {h.expression}"
            rax.set_xlabel(xlabel + xunit)
            rax.set_xlim(edges[0], edges[-1])
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110 if suffix == ".png" else None, bbox_inches="tight",
                        metadata={"Software": "hep-archive"} if suffix == ".png" else None)
        finally:
            plt.close(fig)
    return path


def plot_histogram2d(h: Histogram, path: Path) -> Path:
    """A 2-D histogram: the values as colours (left) and the total relative uncertainty (right)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import mplhep

    suffix = path.suffix.lower()
    (bx, by), (nx, ny) = h.binnings, h.axes_names
    vals, err = np.asarray(h.values), h.total
    with np.errstate(all="ignore"):
        rel = np.where(vals != 0, err / np.abs(vals), np.nan)
    with plt.style.context(mplhep.style.ROOT):
        fig, (ax, rax) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"wspace": 0.35})
        try:
            for a, z, what in ((ax, vals, "weighted events per bin" if h.normalisation != "absolute" else
                                "cross-section per bin" + (f" [{h.unit}]" if h.unit else "")),
                               (rax, rel, "total relative uncertainty")):
                mesh = a.pcolormesh(bx.array, by.array, z.T, cmap="viridis", shading="flat")
                fig.colorbar(mesh, ax=a, label=what)
                a.set_xlabel(h.axes[0].label)
                a.set_ylabel(h.axes[1].label)
            ax.set_title(h.dataset + (f"  |  selection: {h.where}" if h.where else ""), fontsize=13, loc="left")
            rax.set_title(f"{nx} vs {ny}", fontsize=13, loc="left")
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110 if suffix == ".png" else None, bbox_inches="tight",
                        metadata={"Software": "hep-archive"} if suffix == ".png" else None)
        finally:
            plt.close(fig)
    return path
