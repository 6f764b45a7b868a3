"""Long-sequence forecasting on ETT, the Informer protocol shared by the Informer and Autoformer experiments.

The protocol of Informer (Zhou et al. 2021, Section 5 "Datasets" and "Setup") and of its code, which
Autoformer (Wu et al. 2021) reuses:

* **Splits** of ETTh1/ETTh2: the first 12 months for training, the next 4 for validation, the next
  4 for test (12/4/4 months of 30 days, hourly: 8,640 / 2,880 / 2,880 rows; the rest of the file is
  unused). A validation or test window may look back into the previous split for its input (its
  first target lies in the split).
* **Scaling**: every channel is standardised with the training split's mean and standard deviation;
  MSE and MAE are reported on that standardised scale, as both papers do.
* **Features**: ``M`` (7 channels in, 7 out), ``S`` (the target ``OT`` alone, univariate), ``MS``
  (7 in, ``OT`` out).
* **Windows**: input ``x`` = ``seq_len`` steps; the decoder sees the last ``label_len`` of them (the
  "start token", Section 3.3) followed by ``pred_len`` placeholders (zeros), and the model predicts
  those ``pred_len`` steps. Time-stamp marks come with both.
* **Training**: Adam, MSE loss, batch 32, learning rate halved after each epoch, early stopping on
  the validation MSE with patience 3 (the best model is the one evaluated on test).

A forecaster is any ``nn.Module`` called as ``model(x, x_marks, decoder_input, decoder_marks)`` that
returns ``[B, >= pred_len, c_out]`` (the last ``pred_len`` steps are the forecast).

Departure: the official loaders drop the last incomplete batch of the validation and test sets
(``drop_last=True``); we evaluate every window.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core import track
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.ett import COLUMNS, TARGET, load_ett
from aicanon.timeseries.time_features import calendar_fields, time_features

__all__ = [
    "ForecastData",
    "ForecastProtocol",
    "decoder_input",
    "evaluate_forecaster",
    "load_forecast_data",
    "train_forecaster",
]

MONTH = 30 * 24
"""Hours in the protocol's 30-day month."""
HOURLY_BORDERS = (12 * MONTH, 16 * MONTH, 20 * MONTH)
"""End rows of the training, validation and test splits of ETTh1/ETTh2."""
SPLITS = ("train", "val", "test")
FEATURES = ("M", "S", "MS")


@dataclass(frozen=True)
class ForecastData:
    """A scaled series with its marks and split borders."""

    name: str
    features: str
    values: Tensor
    """float32 ``[T, C]``: the standardised input channels (``C`` = 7, or 1 for ``S``)."""
    marks: Tensor
    """``[T, F]``: float time features ("timeF") or int64 calendar fields ("fixed"/"learned")."""
    mean: np.ndarray
    std: np.ndarray
    borders: tuple[int, int, int]
    columns: tuple[str, ...]

    @property
    def channels(self) -> int:
        return self.values.size(1)

    @property
    def targets(self) -> int:
        """Output channels: all of them for ``M``, one for ``S`` and ``MS``."""
        return self.channels if self.features == "M" else 1

    def starts(self, split: str, seq_len: int, pred_len: int, stride: int = 1) -> Tensor:
        """First rows of the windows whose first target lies in ``split`` and whose last fits in it."""
        check_choice("split", split, SPLITS)
        index = SPLITS.index(split)
        first_target = 0 if index == 0 else self.borders[index - 1]
        first = max(first_target - seq_len, 0)
        last = self.borders[index] - seq_len - pred_len  # inclusive
        if last < first:
            raise ValueError(
                f"split {split!r} holds no window of seq_len={seq_len} + pred_len={pred_len} "
                f"(rows {first}..{self.borders[index]})"
            )
        return torch.arange(first, last + 1, stride)

    def batch(self, starts: Tensor, seq_len: int, label_len: int, pred_len: int) -> tuple[Tensor, ...]:
        """``(x, x_marks, y, y_marks)``: inputs ``[B, seq_len, C]`` and the decoder's span ``[B,
        label_len + pred_len, C]`` (its last ``pred_len`` steps are the targets), with their marks."""
        inputs = starts.unsqueeze(1) + torch.arange(seq_len)
        outputs = starts.unsqueeze(1) + (seq_len - label_len) + torch.arange(label_len + pred_len)
        return self.values[inputs], self.marks[inputs], self.values[outputs], self.marks[outputs]


def load_forecast_data(
    name: str = "ETTh1", features: str = "M", *, embed: str = "timeF", target: str = TARGET
) -> ForecastData:
    """ETTh1/ETTh2 standardised with the training split's statistics, with its time-stamp marks."""
    check_choice("features", features, FEATURES)
    check_choice("embed", embed, ("timeF", "fixed", "learned"))
    check_choice("target", target, COLUMNS)
    series = load_ett(name)
    values = series.values[: HOURLY_BORDERS[-1]]
    stamps = series.timestamps[: HOURLY_BORDERS[-1]]
    columns = COLUMNS
    if features == "S":
        values, columns = values[:, [COLUMNS.index(target)]], (target,)
    elif target != COLUMNS[-1]:
        # MS predicts the last channel; put the target there (the official loaders do the same).
        order = [c for c in COLUMNS if c != target] + [target]
        values, columns = values[:, [COLUMNS.index(c) for c in order]], tuple(order)
    train = values[: HOURLY_BORDERS[0]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    scaled = torch.from_numpy(((values - mean) / std).astype(np.float32))
    if embed == "timeF":
        marks = torch.from_numpy(time_features(stamps, "h"))
    else:
        marks = torch.from_numpy(calendar_fields(stamps, "h"))
    return ForecastData(name, features, scaled, marks, mean, std, HOURLY_BORDERS, columns)


def decoder_input(y: Tensor, label_len: int, pred_len: int) -> Tensor:
    """The start token (the last ``label_len`` known steps) followed by ``pred_len`` zeros (Section 3.3)."""
    return torch.cat([y[:, :label_len], torch.zeros_like(y[:, label_len : label_len + pred_len])], dim=1)


@dataclass
class ForecastProtocol:
    """The training and evaluation settings of the ETT protocol; experiment Configs inherit them."""

    dataset: str = "ETTh1"
    """``ETTh1`` or ``ETTh2``."""
    features: str = "M"
    """``M`` multivariate, ``S`` univariate (``OT``), ``MS`` (7 in, ``OT`` out)."""
    seq_len: int = 96
    """Encoder input length."""
    label_len: int = 48
    """Known steps fed to the decoder as its start token."""
    pred_len: int = 24
    """Forecast horizon."""
    embed: str = "timeF"
    """Time-stamp encoding: ``timeF`` (linear), ``fixed`` or ``learned`` tables."""
    batch_size: int = 32
    learning_rate: float = 1e-4
    """Adam's initial learning rate, halved after every epoch."""
    lr_decay: float = 0.5
    epochs: int = 6
    """Maximum epochs (Informer's code: 6; Autoformer's: 10)."""
    patience: int = 3
    """Epochs without a better validation MSE before stopping."""
    train_stride: int = 1
    """Use every ``train_stride``-th training window (1: all; a quick run thins them)."""
    eval_stride: int = 1
    """Use every ``eval_stride``-th validation and test window (1: all)."""
    max_steps_per_epoch: int = 0
    """Cap on optimiser steps per epoch (0: a full pass)."""
    grad_clip: float = 0.0
    """Clip the gradient norm to this (0: off, as the papers)."""
    horizons: tuple[int, ...] = field(default_factory=tuple)
    """Several horizons to train one model each for (empty: ``pred_len`` alone)."""
    checkpoint: bool = False
    """Save every training's state after each epoch under the results folder and resume a killed run
    there (:func:`train_forecaster`'s ``checkpoint``; full runs: on)."""

    def check_protocol(self) -> None:
        check_choice("dataset", self.dataset, ("ETTh1", "ETTh2"))
        check_choice("features", self.features, FEATURES)
        check_choice("embed", self.embed, ("timeF", "fixed", "learned"))
        check_int("seq_len", self.seq_len, 1)
        check_int("label_len", self.label_len, 0, self.seq_len, note="at most seq_len")
        check_int("pred_len", self.pred_len, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("learning_rate", self.learning_rate, 0.0, min_inclusive=False)
        check_float("lr_decay", self.lr_decay, 0.0, 1.0, min_inclusive=False)
        check_int("epochs", self.epochs, 1)
        check_int("patience", self.patience, 1)
        check_int("train_stride", self.train_stride, 1)
        check_int("eval_stride", self.eval_stride, 1)
        check_int("max_steps_per_epoch", self.max_steps_per_epoch, 0)
        check_float("grad_clip", self.grad_clip, 0.0)
        for horizon in self.horizons:
            check_int("horizons[i]", horizon, 1)
        if not isinstance(self.checkpoint, bool):
            raise TypeError(f"checkpoint must be a bool, got {self.checkpoint!r}")


def _forecast(model: nn.Module, data: ForecastData, starts: Tensor, p: ForecastProtocol, pred_len: int):
    x, x_marks, y, y_marks = data.batch(starts, p.seq_len, p.label_len, pred_len)
    out = model(x, x_marks, decoder_input(y, p.label_len, pred_len), y_marks)
    if out.dim() != 3 or out.size(1) < pred_len or out.size(2) < data.targets:
        raise ValueError(f"the model must return [B, >= {pred_len}, {data.targets}], got {tuple(out.shape)}")
    # M: every channel; S/MS: the target, the last channel.
    return out[:, -pred_len:, -data.targets :], y[:, -pred_len:, -data.targets :]


@torch.no_grad()
def evaluate_forecaster(
    model: nn.Module, data: ForecastData, split: str, protocol: ForecastProtocol, pred_len: int | None = None
) -> tuple[float, float]:
    """``(MSE, MAE)`` on the standardised scale over the split's windows (every ``eval_stride``-th)."""
    pred_len = protocol.pred_len if pred_len is None else pred_len
    was_training = model.training
    model.eval()
    starts = data.starts(split, protocol.seq_len, pred_len, protocol.eval_stride)
    squared = absolute = 0.0
    count = 0
    for chunk in starts.split(max(protocol.batch_size, 256)):
        prediction, truth = _forecast(model, data, chunk, protocol, pred_len)
        squared += float((prediction - truth).square().sum())
        absolute += float((prediction - truth).abs().sum())
        count += truth.numel()
    model.train(was_training)
    return squared / count, absolute / count


def train_forecaster(
    model: nn.Module,
    data: ForecastData,
    protocol: ForecastProtocol,
    *,
    pred_len: int | None = None,
    generator: torch.Generator | None = None,
    label: str = "forecaster",
    checkpoint: str | os.PathLike | None = None,
) -> dict:
    """Train with the protocol, restore the best validation model, and return its test MSE/MAE.

    Returns ``test_mse``, ``test_mae``, ``val_mse`` (best), ``epochs`` run, ``steps``, and the curves
    ``train_loss`` (per epoch mean) and ``val_mse`` (per epoch). With ``checkpoint`` (a folder), the
    training state is saved after every epoch (weights, Adam with its halved rate, the shuffling
    generator, the best weights so far, early-stopping counters, curves) and a rerun resumes there.
    """
    protocol.check_protocol()
    pred_len = protocol.pred_len if pred_len is None else pred_len
    check_int("pred_len", pred_len, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.learning_rate)
    starts = data.starts("train", protocol.seq_len, pred_len, protocol.train_stride)
    steps_per_epoch = math.floor(starts.numel() / protocol.batch_size)  # drop_last, as the official loader
    if protocol.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, protocol.max_steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(
            f"{starts.numel()} training windows make no batch of batch_size={protocol.batch_size}"
        )
    curves: dict[str, list[float]] = {"train_loss": [], "val_mse": []}
    progress: dict[str, Any] = {
        "best": math.inf,
        "best_state": copy.deepcopy(model.state_dict()),
        "waited": 0,
        "steps": 0,
        "stopped": False,
    }
    parts = {"model": model, "optimizer": optimizer, "curves": curves, "progress": progress}
    checkpoints = LoopCheckpoints(
        checkpoint,
        1,
        config={"protocol": asdict(protocol), "pred_len": pred_len, "label": label},
        **parts,
        **({"generator": generator} if generator is not None else {}),
    )
    for epoch in range(checkpoints.resume(), protocol.epochs):
        if progress["stopped"]:  # a resumed run that had already stopped early
            break
        model.train()
        order = starts[torch.randperm(starts.numel(), generator=generator)]
        losses = []
        batches = order[: steps_per_epoch * protocol.batch_size].split(protocol.batch_size)
        for chunk in track(batches, f"{label} epoch {epoch + 1}", total=steps_per_epoch):
            prediction, truth = _forecast(model, data, chunk, protocol, pred_len)
            loss = F.mse_loss(prediction, truth)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if protocol.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            progress["steps"] += 1
        val_mse, _ = evaluate_forecaster(model, data, "val", protocol, pred_len)
        curves["train_loss"].append(float(np.mean(losses)))
        curves["val_mse"].append(val_mse)
        if val_mse < progress["best"]:
            progress.update(best=val_mse, best_state=copy.deepcopy(model.state_dict()), waited=0)
        else:
            progress["waited"] += 1
            progress["stopped"] = progress["waited"] >= protocol.patience
        if not progress["stopped"]:
            for group in optimizer.param_groups:  # Informer's "type1" schedule: halve after every epoch
                group["lr"] = protocol.learning_rate * protocol.lr_decay ** (epoch + 1)
        checkpoints.done(epoch + 1, protocol.epochs)
        if progress["stopped"]:
            break
    model.load_state_dict(progress["best_state"])
    test_mse, test_mae = evaluate_forecaster(model, data, "test", protocol, pred_len)
    return {
        "test_mse": test_mse,
        "test_mae": test_mae,
        "val_mse": progress["best"],
        "epochs": len(curves["val_mse"]),
        "steps": progress["steps"],
        "curves": curves,
    }
