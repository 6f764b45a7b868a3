"""The experiment protocol shared by every paper.

An experiment module ``aicanon.experiments.<slug with underscores>`` defines:

* ``Config``: a dataclass deriving from :class:`ExperimentConfig`, every field documented,
  with ``Config.quick()`` (two CPU cores, about a minute) and ``Config.full()`` (the paper's
  setting);
* ``run(cfg) -> Result``: trains and evaluates **one seed** (``cfg.seed``) and returns its
  metrics, figures and details (``cfg.seeds`` is how many seeds the whole reproduction runs: for
  notes, never a loop inside ``run``);
* ``CLAIMS``: a list of :class:`Claim` naming the metric that carries each of the paper's claims,
  the paper's number and where it comes from, and the threshold we must meet at each scale.

:func:`reproduce` takes the experiment module (the catalog finds it: :func:`aicanon.catalog.load_experiment`),
runs ``cfg.seeds`` seeds (``cfg.seed``, ``cfg.seed + 1``, ...), averages each
metric over them (keeping the standard deviation and the per-seed values), checks the claims on
the means and returns a :class:`Reproduction`, which :mod:`aicanon.core.results` writes to disk.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import numpy as np

from aicanon.core.checks import check_int

Scale = Literal["quick", "full"]
SCALES: tuple[str, ...] = ("quick", "full")


@dataclass
class ExperimentConfig:
    """Fields every experiment config has. Subclasses add their own, each with a comment."""

    seed: int = 0
    """First seed; seed ``i`` of a multi-seed run is ``seed + i``."""
    seeds: int = 1
    """How many seeds :func:`reproduce` runs; claims are checked on the mean over them."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    scale: str = "quick"
    """``quick`` or ``full``; set by :meth:`quick`/:meth:`full`, used to pick claim thresholds."""
    threads: int = 0
    """torch CPU threads while :func:`reproduce` runs the experiment (restored afterwards); 0 leaves
    torch's setting. On a busy 2-core machine one thread is often far faster for small models, and
    metrics can differ in their last digits between thread counts, so the count is recorded."""

    @classmethod
    def quick(cls) -> ExperimentConfig:
        return cls(scale="quick")

    @classmethod
    def full(cls) -> ExperimentConfig:
        return cls(scale="full")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, tied to one metric of our experiment.

    ``quick``/``full`` are our thresholds at each scale; ``None`` means the metric is reported at
    that scale but not claimed (for instance a result that needs the paper's scale to hold).
    """

    metric: str
    description: str
    paper: float | None
    source: str
    quick: float | None = None
    full: float | None = None
    higher_is_better: bool = True
    unit: str = ""

    def threshold(self, scale: str) -> float | None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        return self.quick if scale == "quick" else self.full

    def check(self, value: float | None, scale: str) -> bool | None:
        """True/False when claimed at ``scale``, None when only reported."""
        threshold = self.threshold(scale)
        if threshold is None:
            return None
        if value is None or not math.isfinite(value):
            return False
        return value >= threshold if self.higher_is_better else value <= threshold


@dataclass
class Result:
    """What ``run(cfg)`` returns for one seed."""

    metrics: dict[str, float]
    figures: dict[str, Any] = field(default_factory=dict)
    """name -> matplotlib Figure; written as ``<name>.png`` beside result.json."""
    details: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable extras: curves, per-layer values, confusion matrices."""
    notes: list[str] = field(default_factory=list)
    """Plain statements of departures from the paper or caveats for this run."""


@dataclass
class ClaimOutcome:
    metric: str
    description: str
    source: str
    paper: float | None
    ours: float | None
    ours_std: float | None
    threshold: float | None
    higher_is_better: bool
    unit: str
    passed: bool | None


@dataclass
class Reproduction:
    """Everything ``result.json`` holds about one reproduction (all seeds of one scale)."""

    slug: str
    scale: str
    config: dict[str, Any]
    seeds: list[int]
    metrics: dict[str, float]
    metrics_std: dict[str, float]
    per_seed: list[dict[str, float]]
    claims: list[ClaimOutcome]
    details: dict[str, Any]
    notes: list[str]
    seconds: float
    device: str
    figures: dict[str, Any] = field(default_factory=dict, repr=False)
    environment: dict[str, Any] = field(default_factory=dict)
    resume: Any = field(default=None, repr=False)
    """The store of finished seeds (``SeedStore``) when resumable; cleared once the result is written."""

    @property
    def passed(self) -> bool:
        """All claims made at this scale hold (reported-only claims do not count)."""
        return all(c.passed is not False for c in self.claims)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(dataclasses.replace(self, figures={}, resume=None))
        data.pop("figures")
        data.pop("resume")
        data["passed"] = self.passed
        return data


def check_experiment(module: ModuleType) -> ModuleType:
    """Return ``module`` if it follows the experiment protocol (``Config``, ``run``, ``CLAIMS``)."""
    for name in ("Config", "run", "CLAIMS"):
        if not hasattr(module, name):
            raise TypeError(f"experiment {module.__name__} lacks {name}; see aicanon.core.experiment")
    if not issubclass(module.Config, ExperimentConfig):
        raise TypeError(f"{module.__name__}.Config must derive from ExperimentConfig")
    return module


def make_config(module: ModuleType, scale: str, **overrides: Any) -> ExperimentConfig:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    cfg = module.Config.quick() if scale == "quick" else module.Config.full()
    known = {f.name for f in dataclasses.fields(cfg)}
    updates: dict[str, Any] = {"scale": scale}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in known:
            raise ValueError(f"{module.Config.__name__} has no field {key!r}; fields: {sorted(known)}")
        updates[key] = value
    # replace() builds a new config, so the Config's own checks (__post_init__) see the overrides too
    cfg = dataclasses.replace(cfg, **updates)
    check_int("threads", cfg.threads, 0)
    return cfg


def reproduce(
    module: ModuleType,
    cfg: ExperimentConfig,
    *,
    slug: str,
    on_seed: Callable[[int, int], None] | None = None,
    resume_dir: str | os.PathLike | None = None,
) -> Reproduction:
    """Run ``cfg.seeds`` seeds of the experiment ``module`` (the paper ``slug``'s) and check its
    claims on the means.

    The device is resolved here, once: each seed's config carries the concrete device (``cpu``,
    ``cuda``, ``cuda:N``) in place of ``auto``, and ``cfg.threads`` is applied around the whole run.

    With ``resume_dir`` (the results folder), every finished seed is stored there
    (:class:`aicanon.core.seed_store.SeedStore`) and a rerun of the same configuration runs only the
    seeds still missing: a finished seed is never rerun. The caller clears the store once the
    reproduction is written (``Reproduction.resume`` names it).
    """
    from aicanon.core.device import select_device
    from aicanon.core.environment import environment
    from aicanon.core.seed_store import SeedRecord, SeedStore
    from aicanon.core.seeding import torch_threads

    check_experiment(module)
    if cfg.seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {cfg.seeds}")
    device = str(select_device(cfg.device))
    start = time.perf_counter()
    per_seed: list[dict[str, float]] = []
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    notes: list[str] = []
    run_config = dataclasses.replace(cfg, device=device).to_dict()
    store = SeedStore(resume_dir, slug, cfg.scale, run_config) if resume_dir is not None else None
    restored = 0
    with torch_threads(cfg.threads):
        for index, seed in enumerate(seeds):
            record = store.load(seed) if store is not None else None
            if record is None:
                if on_seed is not None:
                    on_seed(index, len(seeds))
                # run() trains seed ``seed``; cfg.seeds keeps the run's total so notes can state it.
                seed_cfg = dataclasses.replace(cfg, seed=seed, device=device)
                result = module.run(seed_cfg)
                if not isinstance(result, Result):
                    raise TypeError(f"{module.__name__}.run must return aicanon.core.Result, got {type(result)}")
                record = SeedRecord(
                    {k: float(v) for k, v in result.metrics.items()},
                    list(result.notes),
                    result.details if index == 0 else {},
                    result.figures if index == 0 else {},
                )
                if store is not None:
                    store.save(seed, record)
            else:
                restored += 1
            per_seed.append(record.metrics)
            if index == 0:  # figures and details of the first seed stand for the run
                figures, details = record.figures, record.details
            for note in record.notes:
                if note not in notes:
                    notes.append(note)
        env = environment(device)
    names = list(dict.fromkeys(k for m in per_seed for k in m))
    # A mean over the seeds that happen to report a metric would silently be a mean over fewer
    # seeds: a metric some seed lacks gets no value at all (and any claim on it fails, below).
    partial = [k for k in names if any(k not in m for m in per_seed)]
    metrics = {k: float(np.mean([m[k] for m in per_seed])) for k in names if k not in partial}
    metrics_std = {k: float(np.std([m[k] for m in per_seed])) for k in names if k not in partial}
    claims = [
        ClaimOutcome(
            metric=c.metric,
            description=c.description,
            source=c.source,
            paper=c.paper,
            ours=metrics.get(c.metric),
            ours_std=metrics_std.get(c.metric) if len(seeds) > 1 else None,
            threshold=c.threshold(cfg.scale),
            higher_is_better=c.higher_is_better,
            unit=c.unit,
            # A claim made at this scale whose metric the run did not produce (or not for every
            # seed) fails; a claim only reported at this scale may lack it (e.g. a full-only arm).
            passed=(
                c.check(metrics[c.metric], cfg.scale)
                if c.metric in metrics
                else (False if c.threshold(cfg.scale) is not None or c.metric in partial else None)
            ),
        )
        for c in module.CLAIMS
    ]
    if restored:
        notes.append(f"resumed: {restored} of {len(seeds)} seeds were finished by an earlier run of this command")
    absent = [
        c.metric
        for c in module.CLAIMS
        if c.metric not in metrics and (c.threshold(cfg.scale) is not None or c.metric in partial)
    ]
    if absent:
        notes.append(f"claimed metrics missing from the run's result (claims failed): {', '.join(absent)}")
    return Reproduction(
        slug=slug,
        scale=cfg.scale,
        config=cfg.to_dict(),
        seeds=seeds,
        metrics=metrics,
        metrics_std=metrics_std,
        per_seed=per_seed,
        claims=claims,
        details=details,
        notes=notes,
        seconds=time.perf_counter() - start,
        device=device,
        figures=figures,
        environment=env,
        resume=store,
    )
