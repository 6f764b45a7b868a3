"""An exponential moving average of a model's weights (Polyak averaging), as diffusion models sample with.

After every optimiser step, ``ema.update(model)`` sets θ̄ ← d θ̄ + (1 − d) θ for every floating-point
parameter and buffer (integer buffers, e.g. batch-norm counters, are copied). ``ema.average`` is a
frozen copy of the model holding θ̄: evaluate or sample with it. ``warmup`` uses the decay
min(d, (1 + n)/(10 + n)) at update n, so early averages are not dominated by the initialisation.
The state (the averaged weights and the update count) saves and loads with the run's checkpoint.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from aicanon.core.checks import check_float

__all__ = ["EMA"]


class EMA:
    """The moving average of ``model``'s weights with decay ``decay`` (e.g. 0.9999 for ADM)."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, *, warmup: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.decay = check_float("decay", decay, 0.0, 1.0)
        self.warmup = bool(warmup)
        self.updates = 0
        self.average = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        ours, theirs = self.average.state_dict(), model.state_dict()
        if ours.keys() != theirs.keys():
            raise ValueError("model does not have the averaged model's parameters and buffers")
        for name, value in theirs.items():
            target = ours[name]
            if target.is_floating_point():
                target.lerp_(value.detach().to(target.dtype), 1.0 - decay)
            else:
                target.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"average": self.average.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.average.load_state_dict(state["average"])
        self.updates = int(state["updates"])
