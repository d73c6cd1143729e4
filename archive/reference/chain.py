"""Run the whole reference chain in one process, step by step, exactly as ``recipes/zjets-omnifold/reana.yaml``.

``python -m archive.reference.chain --workdir work --events 3000``

Each step is called through its module's ``main(argv)`` with the same arguments the REANA workflow passes, so
a rerun through REANA, a container or this function produces the same bytes. Returns per-step timings and the
closure summary.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archive.errors import ArchiveRootNotFoundError, ObjectNotFoundError, ValidationError
from archive.reference._common import load_card, run_main

__all__ = ["DEFAULT_EVENTS", "DEFAULT_SEEDS", "RECIPE_PATH", "build_reference_archive", "chain_steps",
           "find_source", "reference_cards", "run_chain"]

#: where the reference recipe lives inside an archive root (a checkout of hep-archive is one); the installed
#: package carries no recipe: the caller names the root, or it is found above the current directory
RECIPE_PATH = Path("recipes") / "zjets-omnifold"
_ROOT_ENV = "HEP_ARCHIVE_ROOT"
DEFAULT_EVENTS = 3000
DEFAULT_SEEDS = {"sim": 1, "data": 2, "alt": 3, "detector_sim": 11, "detector_data": 12, "detector_alt": 13,
                 "unfold": 7}


def _holds_recipe(root: Path) -> bool:
    return (root / RECIPE_PATH / "reana.yaml").is_file()


def find_source(source: str | os.PathLike[str] | None = None) -> Path:
    """The archive root that holds the reference recipe ``recipes/zjets-omnifold`` (a hep-archive checkout).

    ``source`` when given (it must hold the recipe); else ``$HEP_ARCHIVE_ROOT`` when it holds the recipe; else
    the nearest directory at or above the current one that does. Raises ``ObjectNotFoundError`` (a given
    ``source`` without the recipe) or ``ArchiveRootNotFoundError`` (none found).
    """
    if source is not None:
        root = Path(source).absolute()
        if not _holds_recipe(root):
            raise ObjectNotFoundError(
                f"no reference recipe here ({RECIPE_PATH.as_posix()}/reana.yaml is missing); pass the root of a "
                "hep-archive checkout", file=str(root), field="source")
        return root
    env = os.environ.get(_ROOT_ENV)
    if env and _holds_recipe(Path(env).absolute()):
        return Path(env).absolute()
    here = Path.cwd()
    for d in (here, *here.parents):
        if _holds_recipe(d):
            return d
    raise ArchiveRootNotFoundError(
        f"no archive root holding the reference recipe ({RECIPE_PATH.as_posix()}/reana.yaml) at or above this "
        f"directory{' or at $' + _ROOT_ENV if env else ''}; run from a hep-archive checkout or pass its root "
        "(--source PATH)", file=str(here))


def reference_cards(source: str | os.PathLike[str] | None = None) -> Path:
    """The reference recipe's ``cards`` folder in the archive root ``source`` (default: :func:`find_source`)."""
    cards = find_source(source) / RECIPE_PATH / "cards"
    if not cards.is_dir():
        raise ObjectNotFoundError("the reference recipe has no cards folder", file=str(cards))
    return cards


def _cards(cards: str | os.PathLike[str] | None) -> Path:
    if cards is None:
        return reference_cards()
    path = Path(cards)
    if not path.is_dir():
        raise ObjectNotFoundError("cards folder does not exist; pass the recipe's cards folder", file=str(path),
                                  field="cards")
    return path


def chain_steps(work: Path, *, events: int = DEFAULT_EVENTS, cards: Path | None = None, device: str = "cpu",
                jobs: int = 1, threads: int = 1, seeds: Mapping[str, int] | None = None,
                unfold_overrides: Mapping[str, int] | None = None, variations: Sequence[str] | None = None
                ) -> list[tuple[str, str, list[str]]]:
    """The steps as ``(stage, module, argv)``, in order.

    ``cards``: the recipe's cards folder, written into the arguments as given (default: that of
    :func:`reference_cards`). ``variations`` defaults to those declared in ``cards/detector.yaml``; with
    ``variations`` given, ``cards`` is not read (it may be a path relative to where the steps will run).
    """
    if cards is None:
        cards = reference_cards()
    s = {**DEFAULT_SEEDS, **(seeds or {})}
    w, c = str(work), str(cards)
    common = ["--device", device, "--threads", str(threads)]
    if variations is None:
        variations = list(load_card(cards / "detector.yaml").get("variations") or {})
    steps: list[tuple[str, str, list[str]]] = []
    for sample in ("sim", "data", "alt"):
        steps.append(("generate", "generate", [
            "--card", f"{c}/generator.yaml", "--sample", sample, "--events", str(events), "--seed", str(s[sample]),
            "--jobs", str(jobs), "--output", f"{w}/{sample}_particles.parquet", *common]))
    for sample in ("sim", "data", "alt"):
        steps.append(("detsim", "detsim", [
            "--card", f"{c}/detector.yaml", "--input", f"{w}/{sample}_particles.parquet",
            "--seed", str(s[f"detector_{sample}"]), "--output", f"{w}/{sample}_detector.parquet", *common]))
    for v in variations:
        steps.append(("detsim", "detsim", [
            "--card", f"{c}/detector.yaml", "--input", f"{w}/sim_particles.parquet", "--seed", str(s["detector_sim"]),
            "--variation", v, "--output", f"{w}/sim_detector_{v}.parquet", *common]))
    reco_io = [("sim_particles", "sim_truth"), ("data_particles", "data_truth"), ("alt_particles", "alt_truth"),
               ("sim_detector", "sim_reco"), ("data_detector", "data_reco"), ("alt_detector", "alt_reco"),
               *((f"sim_detector_{v}", f"sim_reco_{v}") for v in variations)]
    for src, dst in reco_io:
        steps.append(("reco", "reco", ["--selection", f"{c}/fiducial.yaml", "--input", f"{w}/{src}.parquet",
                                       "--output", f"{w}/{dst}.parquet", *common]))
    unfold = ["--card", f"{c}/unfold.yaml", "--sim-truth", f"{w}/sim_truth.parquet",
              "--sim-reco", f"{w}/sim_reco.parquet", "--data-reco", f"{w}/data_reco.parquet"]
    for v in variations:
        unfold += ["--variation", f"{v}={w}/sim_reco_{v}.parquet"]
    for key, value in (unfold_overrides or {}).items():
        unfold += [f"--{key.replace('_', '-')}", str(value)]
    unfold += ["--seed", str(s["unfold"]), "--jobs", str(jobs), "--output", f"{w}/unfolded.parquet",
               "--models", f"{w}/models", *common]
    steps.append(("unfold", "unfold", unfold))
    # the same pseudo-data unfolded with the alternative prior (one training; the unfolding-model uncertainty)
    steps.append(("unfold", "unfold", [
        "--card", f"{c}/unfold.yaml", "--sim-truth", f"{w}/alt_truth.parquet", "--sim-reco", f"{w}/alt_reco.parquet",
        "--data-reco", f"{w}/data_reco.parquet", "--ensemble", "1", "--bootstrap-data", "0", "--bootstrap-mc", "0",
        "--no-data-driven", "--seed", str(s["unfold"]), "--jobs", "1", "--output", f"{w}/unfolded_altprior.parquet",
        *common]))
    steps.append(("validate", "validate", [
        "--card", f"{c}/validate.yaml", "--unfolded", f"{w}/unfolded.parquet", "--truth", f"{w}/data_truth.parquet",
        "--prior", f"{w}/sim_truth.parquet", "--alternative", f"{w}/unfolded_altprior.parquet",
        "--output", f"{w}/closure.json", "--figure", f"{w}/closure.png",
        *common]))
    return steps


def run_chain(work: Path, *, events: int = DEFAULT_EVENTS, cards: Path | None = None, device: str = "cpu",
              jobs: int = 1, threads: int = 1, seeds: Mapping[str, int] | None = None,
              unfold_overrides: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Run every step in order; returns ``{"timings": {stage: seconds}, "closure": {...}, "workdir": ...}``.

    ``cards``: the recipe's cards folder (default: ``recipes/zjets-omnifold/cards`` of :func:`find_source`).
    """
    if events < 50:
        raise ValidationError("--events must be at least 50 (the selection keeps about 40 %)", field="events")
    cards = _cards(cards)
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    for stage, module, argv in chain_steps(work, events=events, cards=cards, device=device, jobs=jobs,
                                           threads=threads, seeds=seeds, unfold_overrides=unfold_overrides):
        start = time.perf_counter()
        importlib.import_module(f"archive.reference.{module}").main(argv)
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 3)
    closure = json.loads((work / "closure.json").read_text(encoding="utf-8"))
    return {
        "workdir": str(work), "events": events, "timings": timings,
        "closure": {"passed": closure["passed"],
                    "p_values": {k: v["p_value"] for k, v in closure["observables"].items()}},
    }


def build_reference_archive(output: Path, *, events: int = DEFAULT_EVENTS, device: str = "cpu", jobs: int = 1,
                            source: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run the recipe through the engine and store its results in the archive root ``output``.

    The same as ``hep-archive demo``: see :func:`archive.demo.build_demo` (``source``: the archive root that
    holds the recipe, default :func:`find_source`).
    """
    from archive.demo import build_demo

    return build_demo(output, events=events, device="gpu" if device == "cuda" else device, jobs=jobs,
                      source=source)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archive.reference.chain", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="work folder (or archive root with --archive)")
    parser.add_argument("--archive", action="store_true", help="store the results in an archive root at --workdir")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--cards", type=Path, default=None,
                        help="the recipe's cards folder (default: recipes/zjets-omnifold/cards of --source)")
    parser.add_argument("--source", type=Path, default=None,
                        help="archive root holding recipes/zjets-omnifold (default: $HEP_ARCHIVE_ROOT or the "
                             "nearest one at or above the current directory)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.archive:
        summary = build_reference_archive(args.workdir, events=args.events, device=args.device, jobs=args.jobs,
                                          source=args.source)
    else:
        cards = args.cards if args.cards is not None else reference_cards(args.source)
        summary = run_chain(args.workdir, events=args.events, cards=cards, device=args.device, jobs=args.jobs,
                            threads=args.threads)
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    raise SystemExit(run_main(main, None))
