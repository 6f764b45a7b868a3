"""Behavioural cloning: imitation as supervised learning of the expert's actions (Pomerleau 1991), the
baseline of GAIL (Ho & Ermon 2016, Section 6).

The policy π_θ(a|s) (here the same :class:`aicanon.rl.networks.ActorCritic` GAIL trains: a
categorical head for discrete actions, a diagonal Gaussian for continuous ones) maximises the
likelihood of the expert's state-action pairs D = {(s_i, a_i)}:

    L_BC(θ) = −(1/|D|) Σ_i log π_θ(a_i | s_i)

(for the Gaussian head this is a mean-squared error on the mean scaled by the learned variance,
plus the log-determinant). As in the paper's Section 6, the pairs are split 70/30 into training
and validation sets, the policy is trained with Adam on mini-batches, and training stops when the
validation loss has not improved for ``patience`` epochs; the parameters of the best validation
epoch are kept.

Departures: none of substance; the split is random over steps (the paper does not say whether it
split by step or by trajectory), and ``max_epochs`` bounds the run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor

__all__ = ["BCConfig", "behavior_cloning_loss", "train_behavior_cloning"]


def _joint(tensor: Tensor) -> Tensor:
    return tensor.sum(-1) if tensor.dim() > 1 else tensor


def behavior_cloning_loss(policy: nn.Module, observations: Tensor, actions: Tensor) -> Tensor:
    """L_BC: the mean negative log-likelihood of ``actions`` under ``policy.distribution(observations)``.

    ``actions``: int64 ``[B]`` for a categorical policy, float ``[B, A]`` for a Gaussian one."""
    check_tensor("observations", observations, dim=2, floating=True)
    if not hasattr(policy, "distribution"):
        raise TypeError(f"policy must have a distribution(observations) method, got {type(policy).__name__}")
    continuous = bool(getattr(policy, "continuous", actions.is_floating_point()))
    if continuous:
        check_tensor("actions", actions, shape=(observations.shape[0], None), floating=True)
    else:
        check_tensor("actions", actions, shape=(observations.shape[0],))
        if actions.is_floating_point():
            raise TypeError(f"actions of a discrete policy must be integers, got {actions.dtype}")
    return -_joint(policy.distribution(observations).log_prob(actions)).mean()


@dataclass
class BCConfig:
    """Behavioural cloning's settings (module docstring)."""

    lr: float = 1e-3
    """Adam's learning rate."""
    batch_size: int = 64
    max_epochs: int = 200
    """Passes over the training split at most."""
    validation_fraction: float = 0.3
    """The paper's 70/30 split; 0 trains on everything for ``max_epochs`` epochs."""
    patience: int = 10
    """Epochs without a better validation loss before stopping."""

    def __post_init__(self) -> None:
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_int("batch_size", self.batch_size)
        check_int("max_epochs", self.max_epochs)
        check_float("validation_fraction", self.validation_fraction, 0.0, 1.0, max_inclusive=False)
        check_int("patience", self.patience)


def train_behavior_cloning(
    policy: nn.Module,
    observations: Tensor,
    actions: Tensor,
    cfg: BCConfig | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, list[float] | float | int]:
    """Fit ``policy`` to the expert pairs by L_BC (module docstring); returns the per-epoch training
    and validation losses, the best validation loss and the epoch it came from."""
    cfg = BCConfig() if cfg is None else cfg
    if not isinstance(cfg, BCConfig):
        raise TypeError(f"cfg must be a BCConfig, got {type(cfg).__name__}")
    behavior_cloning_loss(policy, observations[:1], actions[:1])  # validates shapes and dtypes
    if actions.shape[0] != observations.shape[0]:
        raise ValueError(f"actions has {actions.shape[0]} rows, observations has {observations.shape[0]}")
    size = observations.shape[0]
    order = torch.randperm(size, generator=generator)
    held_out = int(round(cfg.validation_fraction * size))
    if cfg.validation_fraction > 0 and (held_out < 1 or held_out >= size):
        raise ValueError(
            f"validation_fraction {cfg.validation_fraction} of {size} pairs leaves an empty training or "
            "validation split"
        )
    validation, training = order[:held_out], order[held_out:]
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    train_losses: list[float] = []
    validation_losses: list[float] = []
    best, best_epoch, best_state, waited = math.inf, 0, None, 0
    for epoch in range(cfg.max_epochs):
        shuffled = training[torch.randperm(training.numel(), generator=generator)]
        total, count = 0.0, 0
        for start in range(0, shuffled.numel(), cfg.batch_size):
            index = shuffled[start : start + cfg.batch_size]
            loss = behavior_cloning_loss(policy, observations[index], actions[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * index.numel()
            count += index.numel()
        train_losses.append(total / count)
        if held_out == 0:
            continue
        with torch.no_grad():
            value = float(behavior_cloning_loss(policy, observations[validation], actions[validation]))
        validation_losses.append(value)
        if value < best:
            best, best_epoch, best_state, waited = value, epoch, copy.deepcopy(policy.state_dict()), 0
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    if best_state is not None:
        policy.load_state_dict(best_state)
    return {
        "train_loss": train_losses,
        "validation_loss": validation_losses,
        "best_validation_loss": best if held_out else math.nan,
        "best_epoch": best_epoch if held_out else len(train_losses) - 1,
    }
