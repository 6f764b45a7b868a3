"""The catalog of the 100 papers (``catalog.toml``) and each paper's derived status.

Status is never typed by hand; it is the highest rung of this ladder that the paper reaches:

* ``planned``: no module implements it yet;
* ``implemented``: every module listed under ``modules`` and the experiment module exist;
* ``verified``: implemented, and its reference-parity tests passed when last recorded
  (``results/<slug>/parity.json``, written by ``aicanon verify``). A paper with no reference
  library has nothing to be verified against and skips this rung;
* ``reproduced-quick``: verified, and the latest quick reproduction passed every quick claim;
* ``reproduced-full``: that, and the latest full reproduction passed every full claim.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType

from aicanon.core import results as _results
from aicanon.core.experiment import ExperimentConfig, Reproduction, check_experiment

AREAS = (
    "vision", "language", "align", "reasoning", "evals", "generative", "rl", "graphs", "learning",
    "timeseries", "multimodal", "explain", "medical", "society",
)  # fmt: skip
KINDS = ("architecture", "method", "dataset-metric", "system", "survey")
STATUSES = ("planned", "implemented", "verified", "reproduced-quick", "reproduced-full")


class UnknownPaper(ValueError):
    """A slug that is not in the catalog; the message suggests the closest slugs."""


@dataclass(frozen=True)
class Paper:
    rank: int
    slug: str
    title: str
    year: int
    citations: int
    arxiv: str
    area: str
    pack: str
    kind: str
    modules: tuple[str, ...] = field(default_factory=tuple)
    experiment: str = ""
    reference: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else ""


def _validate(papers: list[Paper]) -> None:
    ranks = sorted(p.rank for p in papers)
    if ranks != list(range(1, len(papers) + 1)) or len(papers) != 100:
        raise ValueError(f"catalog ranks must be exactly 1..100, got {len(papers)} papers")
    slugs = [p.slug for p in papers]
    dupes = {s for s in slugs if slugs.count(s) > 1}
    if dupes:
        raise ValueError(f"catalog slugs must be unique; repeated: {sorted(dupes)}")
    for p in papers:
        if p.area not in AREAS:
            raise ValueError(f"paper {p.slug}: area must be one of {AREAS}, got {p.area!r}")
        if p.kind not in KINDS:
            raise ValueError(f"paper {p.slug}: kind must be one of {KINDS}, got {p.kind!r}")


def parse(text: str) -> list[Paper]:
    raw = tomllib.loads(text)
    papers = []
    for entry in raw.get("paper", []):
        entry = dict(entry)
        entry["modules"] = tuple(entry.get("modules", ()))
        entry["reference"] = tuple(entry.get("reference", ()))
        papers.append(Paper(**entry))
    _validate(papers)
    return sorted(papers, key=lambda p: p.rank)


@functools.cache
def papers() -> tuple[Paper, ...]:
    return tuple(parse(resources.files("aicanon").joinpath("catalog.toml").read_text()))


def get(slug: str) -> Paper:
    by_slug = {p.slug: p for p in papers()}
    if slug in by_slug:
        return by_slug[slug]
    close = difflib.get_close_matches(slug, list(by_slug), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `aicanon list` shows all slugs"
    raise UnknownPaper(f"unknown paper slug {slug!r}{hint}")


def module_exists(dotted: str) -> bool:
    """Whether ``aicanon.<dotted>`` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(f"aicanon.{dotted}") is not None
    except ModuleNotFoundError:
        return False


def is_implemented(paper: Paper) -> bool:
    return bool(paper.modules) and all(module_exists(m) for m in (*paper.modules, paper.experiment))


def load_experiment(slug: str) -> ModuleType:
    """The experiment module of ``slug``, as the catalog's ``experiment`` field names it, checked
    against the experiment protocol (:func:`aicanon.core.experiment.check_experiment`)."""
    paper = get(slug)
    if not paper.experiment:
        raise ValueError(f"paper {slug!r} has no experiment in the catalog yet")
    return check_experiment(importlib.import_module(f"aicanon.{paper.experiment}"))


def reproduce(
    slug: str, cfg: ExperimentConfig, on_seed: Callable[[int, int], None] | None = None
) -> Reproduction:
    """Run ``slug``'s experiment at ``cfg`` (:func:`aicanon.core.experiment.reproduce`)."""
    from aicanon.core.experiment import reproduce as run_reproduction

    return run_reproduction(load_experiment(slug), cfg, slug=slug, on_seed=on_seed)


def status(paper: Paper, results_base: str | Path | None = None) -> str:
    if not is_implemented(paper):
        return "planned"
    if paper.reference:
        parity = _results.parity_record(paper.slug, results_base)
        if not (parity and parity.get("ok")):
            return "implemented"
    level = "verified"
    quick = _results.latest(paper.slug, "quick", results_base)
    if quick and quick.get("passed"):
        level = "reproduced-quick"
        full = _results.latest(paper.slug, "full", results_base)
        if full and full.get("passed"):
            level = "reproduced-full"
    return level
