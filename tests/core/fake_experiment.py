"""A tiny experiment following the protocol, used to test the framework without training anything."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aicanon.core import Claim, ExperimentConfig, Result, seed


@dataclass
class Config(ExperimentConfig):
    value: float = 1.0
    """The metric this fake experiment reports (plus seeded noise)."""
    noise: float = 0.0
    """Standard deviation of the seeded noise added to ``value``."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=2)

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=3, value=2.0)


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    noise = float(torch.randn(()).item()) * cfg.noise
    import matplotlib.figure

    fig = matplotlib.figure.Figure()
    fig.add_subplot().plot([0, 1], [0, cfg.value])
    return Result(
        metrics={"score": cfg.value + noise, "loss": -cfg.value},
        figures={"curve": fig},
        details={"seed": cfg.seed},
        notes=["fake experiment: no paper behind it"],
    )


CLAIMS = [
    Claim("score", "score is high", paper=1.5, source="Table 0", quick=0.5, full=1.5),
    Claim("loss", "loss is low", paper=None, source="Fig. 0", quick=None, full=-1.0, higher_is_better=False),
]
