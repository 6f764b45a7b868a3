"""Autoformer against Informer on ETTh1, multivariate (Wu et al., NeurIPS 2021, Section 4, Table 2).

The paper's protocol (Section 4 "Implementation details", the official code's ETT scripts), per
horizon and seed:

1. ETTh1 with Informer's 12/4/4-month splits, every channel standardised with the training
   split's statistics, features ``M`` (7 channels in, 7 out); MSE/MAE on the standardised scale
   (:mod:`aicanon.testbeds.forecasting`).
2. Input 96 steps, the decoder's known part ``label_len`` 48, horizons 96, 192, 336 and 720.
3. Autoformer with d_model 512, 8 heads, 2 encoder layers and 1 decoder layer, d_ff 2048, moving
   average 25, ``c = 1`` in ``k = floor(c ln L)`` (the paper's c lies in 1..3; its scripts use
   the run default of 1 for ETT), dropout 0.05, GELU; Adam at lr 1e-4, batch 32, MSE loss, at most
   10 epochs, learning rate halved every epoch, early stopping with patience 3.
4. Informer of the same size trained the same way (the paper reports Informer from its own runs
   of Informer's code, with 6 epochs; here it gets Autoformer's budget, as the issue asks).

Table 2 reports ETTm2 (Autoformer 0.255 / Informer 0.365 MSE at horizon 96); the appendix's full ETT
table reports ETTh1, which is what is staged here. The claims: Autoformer's ETTh1 test MSE, and
Autoformer below Informer at long horizons. The ablation of Section 4.2 ("Ablation of
decomposition") runs with ``decomposition=False``: the same network whose decomposition blocks
keep the trend inside the seasonal path and whose decoder starts from Informer's start token; it
fails the quick claims.

Cost of ``--full`` (estimate, not run): per horizon about 8,400 training windows = 260 batches per
epoch; Autoformer at d_model 512 takes about 0.1 s per batch on one modern GPU (the official repo's
ETTh1 runs take minutes), so 10 epochs of both models at four horizons and 3 seeds is roughly
30-60 GPU-minutes; on two CPU cores a single epoch at horizon 96 takes on the order of 10-20
minutes, so the full run is a GPU job. Every training of the full run is checkpointed after each
epoch (``checkpoint``), so a killed run resumes where it was (the trainings share one shuffling
generator, whose state each checkpoint carries); the checkpoints are removed once the seed is done.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.core.results import checkpoint_folder
from aicanon.testbeds.forecasting import ForecastProtocol, load_forecast_data, train_forecaster
from aicanon.timeseries.autocorrelation import AGGREGATIONS
from aicanon.timeseries.autoformer import MECHANISMS, Autoformer
from aicanon.timeseries.informer import Informer

PAPER_HORIZONS = (96, 192, 336, 720)


@dataclass
class Config(ExperimentConfig, ForecastProtocol):
    pred_len: int = 96
    """Forecast horizon when ``horizons`` is empty (96, the paper's shortest)."""
    epochs: int = 10
    """Maximum epochs (10 in Autoformer's code)."""
    d_model: int = 512
    """Model width of both networks (512)."""
    n_heads: int = 8
    """Heads of both networks (8)."""
    e_layers: int = 2
    """Encoder layers (2)."""
    d_layers: int = 1
    """Decoder layers (1)."""
    d_ff: int = 2048
    """Feed-forward width (2048)."""
    moving_avg: int = 25
    """Kernel of the series decomposition's moving average (25)."""
    factor: float = 1.0
    """``c`` in ``k = floor(c ln L)`` lags (Eq. 6; 1 in the official ETT scripts)."""
    dropout: float = 0.05
    """Dropout of both networks (0.05)."""
    activation: str = "gelu"
    """Feed-forward activation (GELU)."""
    decomposition: bool = True
    """False: the ablation without series decomposition (trend kept inside the seasonal path)."""
    mechanism: str = "auto-correlation"
    """``auto-correlation`` or ``attention`` (full self-attention in Autoformer's place, Table 5)."""
    aggregation: str = "auto"
    """Time-delay aggregation lags: ``auto`` (official: batch-shared in training, per sample in
    evaluation), ``batch`` or ``sample``."""
    informer: bool = True
    """Also train Informer of the same size and budget (the comparison of Table 2)."""
    informer_factor: int = 5
    """Informer's ProbSparse sampling factor (5, Informer's default)."""

    @classmethod
    def quick(cls) -> Config:
        # Small networks (d_model 32, d_ff 64) on thinned windows: every 4th training window, at most
        # 25 batches per epoch for 2 epochs, every 16th validation/test window; lr 1e-3 (not 1e-4)
        # because so few steps cannot move a network at the paper's rate. Horizon 96, 3 seeds.
        return cls(
            scale="quick",
            seeds=3,
            threads=1,
            pred_len=96,
            d_model=32,
            n_heads=4,
            d_ff=64,
            learning_rate=1e-3,
            epochs=2,
            train_stride=4,
            max_steps_per_epoch=25,
            eval_stride=16,
        )

    @classmethod
    def full(cls) -> Config:
        # Section 4: the paper's settings at every horizon, 10 epochs, patience 3, 3 runs.
        return cls(scale="full", seeds=3, epochs=10, patience=3, horizons=PAPER_HORIZONS, checkpoint=True)

    def check(self) -> None:
        self.check_protocol()
        for name in ("d_model", "n_heads", "e_layers", "d_layers", "d_ff", "moving_avg", "informer_factor"):
            check_int(name, getattr(self, name), 1)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads={self.n_heads}, got {self.d_model}")
        if self.moving_avg % 2 == 0:
            raise ValueError(f"moving_avg must be odd (the average is centred), got {self.moving_avg}")
        check_float("factor", self.factor, 0.0, min_inclusive=False, finite=True)
        check_probability("dropout", self.dropout, allow_one=False)
        check_choice("activation", self.activation, ("gelu", "relu"))
        check_choice("mechanism", self.mechanism, MECHANISMS)
        check_choice("aggregation", self.aggregation, AGGREGATIONS)


# The paper's numbers. Table 2 (ETTm2, MSE): Autoformer 0.255 / 0.281 / 0.339 / 0.422, Informer
# 0.365 / 0.533 / 1.363 / 3.379 at horizons 96 / 192 / 336 / 720. ETTh1 (the appendix's full ETT
# table, which we could not open here; the numbers as later papers quote them): Autoformer 0.449 /
# 0.500 / 0.521 / 0.514, Informer 0.865 / 1.008 / 1.107 / 1.181.
# Quick thresholds, set from our runs (CPU, one thread, seeds 0-2): Autoformer 0.541 / 0.555 / 0.546
# (mean 0.547), Informer 0.897 / 0.875 / 0.889, ratio 0.604 / 0.635 / 0.614. The MSE bound 0.60 and
# the ratio bound 0.80 leave room for seed noise; without decomposition the same network scores
# 0.843 / 0.936 / 0.801 (fails both), with full attention in place of Auto-Correlation 0.640 / 0.625
# / 0.636 (fails the MSE bound). Full thresholds: the paper's ETTh1 numbers plus about 10 %.
CLAIMS = [
    Claim(
        metric="autoformer_mse_96",
        description="Autoformer test MSE on ETTh1, multivariate, input 96, horizon 96",
        paper=0.449,
        source="appendix full-ETT table, ETTh1 horizon 96 (unverified: quoted by later papers)",
        quick=0.60,
        full=0.50,
        higher_is_better=False,
    ),
    Claim(
        metric="mse_ratio_96",
        description="Autoformer MSE / Informer MSE on ETTh1 at horizon 96 (below 1: Autoformer better)",
        paper=round(0.449 / 0.865, 3),
        source="0.449 / 0.865, appendix full-ETT table, ETTh1 (unverified); Table 2 ETTm2: 0.255 / 0.365",
        quick=0.80,
        full=0.8,
        higher_is_better=False,
    ),
    Claim(
        metric="autoformer_mse_720",
        description="Autoformer test MSE on ETTh1 at horizon 720",
        paper=0.514,
        source="appendix full-ETT table, ETTh1 horizon 720 (unverified)",
        quick=None,
        full=0.57,
        higher_is_better=False,
    ),
    Claim(
        metric="mse_ratio_720",
        description="Autoformer MSE / Informer MSE on ETTh1 at horizon 720",
        paper=round(0.514 / 1.181, 3),
        source="0.514 / 1.181, appendix full-ETT table, ETTh1 (unverified); Table 2 ETTm2: 0.422 / 3.379",
        quick=None,
        full=0.8,
        higher_is_better=False,
    ),
    Claim(
        metric="informer_mse_96",
        description="Informer (same size and budget) test MSE on ETTh1 at horizon 96",
        paper=0.865,
        source="appendix full-ETT table, ETTh1 horizon 96 (unverified)",
        quick=None,
        full=None,
        higher_is_better=False,
    ),
]


def build_autoformer(cfg: Config, channels: int, targets: int, pred_len: int) -> Autoformer:
    return Autoformer(
        channels,
        channels,
        targets,
        pred_len=pred_len,
        label_len=cfg.label_len,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        e_layers=cfg.e_layers,
        d_layers=cfg.d_layers,
        d_ff=cfg.d_ff,
        moving_avg=cfg.moving_avg,
        factor=cfg.factor,
        dropout=cfg.dropout,
        embed=cfg.embed,
        activation=cfg.activation,
        decomposition=cfg.decomposition,
        mechanism=cfg.mechanism,
        aggregation=cfg.aggregation,
    )


def build_informer(cfg: Config, channels: int, targets: int, pred_len: int) -> Informer:
    return Informer(
        channels,
        channels,
        targets,
        pred_len=pred_len,
        label_len=cfg.label_len,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        e_layers=cfg.e_layers,
        d_layers=cfg.d_layers,
        d_ff=cfg.d_ff,
        factor=cfg.informer_factor,
        dropout=cfg.dropout,
        embed=cfg.embed,
        activation=cfg.activation,
    )


def _curve_figure(curves: dict[str, dict]) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    train_axis, val_axis = figure.subplots(1, 2)
    for name, run in curves.items():
        epochs = np.arange(1, len(run["val_mse"]) + 1)
        train_axis.plot(epochs, run["train_loss"], marker="o", label=name)
        val_axis.plot(epochs, run["val_mse"], marker="o", label=name)
    train_axis.set(xlabel="epoch", ylabel="training MSE", title="training loss")
    val_axis.set(xlabel="epoch", ylabel="validation MSE", title="validation MSE (standardised)")
    train_axis.legend(fontsize="small")
    val_axis.legend(fontsize="small")
    return figure


def _forecast_figure(model: torch.nn.Module, data, cfg: Config, pred_len: int) -> Figure:
    """The first test window's oil temperature (OT): input, truth and forecast."""
    start = data.starts("test", cfg.seq_len, pred_len)[:1]
    x, x_marks, y, y_marks = data.batch(start, cfg.seq_len, cfg.label_len, pred_len)
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        forecast = model(x.to(device), x_marks.to(device), None, y_marks.to(device)).cpu()
    figure = Figure(figsize=(8, 3.5), layout="constrained")
    axis = figure.subplots()
    axis.plot(np.arange(cfg.seq_len), x[0, :, -1], color="grey", label="input")
    future = np.arange(cfg.seq_len, cfg.seq_len + pred_len)
    axis.plot(future, y[0, -pred_len:, -1], color="black", label="truth")
    axis.plot(future, forecast[0, :, -1], color="tab:blue", label="Autoformer")
    axis.set(xlabel="hour", ylabel="OT (standardised)", title=f"ETTh1 test window, horizon {pred_len}")
    axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    cfg.check()
    seed(cfg.seed)
    device = select_device(cfg.device)
    data = load_forecast_data(cfg.dataset, cfg.features, embed=cfg.embed)
    data = dataclasses.replace(data, values=data.values.to(device), marks=data.marks.to(device))
    horizons = tuple(cfg.horizons) or (cfg.pred_len,)
    generator = torch.Generator().manual_seed(cfg.seed)
    metrics: dict[str, float] = {}
    details: dict = {}
    curves: dict[str, dict] = {}
    figures = {}
    folder = checkpoint_folder("autoformer", cfg.to_dict()) if cfg.checkpoint else None
    for horizon in horizons:
        torch.manual_seed(cfg.seed * 1000 + horizon)
        model = build_autoformer(cfg, data.channels, data.targets, horizon).to(device)
        outcome = train_forecaster(
            model,
            data,
            cfg,
            pred_len=horizon,
            generator=generator,
            label=f"Autoformer {horizon}",
            checkpoint=folder and folder / f"autoformer-{horizon}",
        )
        metrics[f"autoformer_mse_{horizon}"] = outcome["test_mse"]
        metrics[f"autoformer_mae_{horizon}"] = outcome["test_mae"]
        details[f"autoformer_{horizon}"] = {k: v for k, v in outcome.items() if k != "curves"}
        curves[f"Autoformer {horizon}"] = outcome["curves"]
        if horizon == horizons[0]:
            figures["forecast"] = _forecast_figure(model, data, cfg, horizon)
        if cfg.informer:
            torch.manual_seed(cfg.seed * 1000 + horizon)
            baseline = build_informer(cfg, data.channels, data.targets, horizon).to(device)
            informed = train_forecaster(
                baseline,
                data,
                cfg,
                pred_len=horizon,
                generator=generator,
                label=f"Informer {horizon}",
                checkpoint=folder and folder / f"informer-{horizon}",
            )
            metrics[f"informer_mse_{horizon}"] = informed["test_mse"]
            metrics[f"informer_mae_{horizon}"] = informed["test_mae"]
            metrics[f"mse_ratio_{horizon}"] = outcome["test_mse"] / informed["test_mse"]
            details[f"informer_{horizon}"] = {k: v for k, v in informed.items() if k != "curves"}
            curves[f"Informer {horizon}"] = informed["curves"]
    figures["training_curves"] = _curve_figure(curves)
    details["curves"] = curves
    if folder is not None:  # every horizon trained and scored: nothing left to resume
        shutil.rmtree(folder, ignore_errors=True)
    notes = [
        (
            "Time-delay aggregation as the official code: lags shared by the batch (batch-mean "
            "correlation) in training, chosen per sample in evaluation."
        ),
        (
            "Informer is trained with Autoformer's budget and protocol (the paper quotes Informer from "
            "Informer's own setting); both share width, depth and the time-feature embedding."
        ),
        "The paper's ETTh1 numbers come from its appendix as later papers quote them (unverified here).",
    ]
    if not cfg.decomposition:
        notes.append("decomposition=False: ablation without series decomposition (Section 4.2).")
    if cfg.mechanism != "auto-correlation":
        notes.append(f"mechanism={cfg.mechanism!r}: Auto-Correlation replaced (ablation, Table 5).")
    if cfg.scale == "quick":
        notes.append(
            f"quick: d_model {cfg.d_model}, d_ff {cfg.d_ff}, lr {cfg.learning_rate}, {cfg.epochs} epochs "
            f"of at most {cfg.max_steps_per_epoch} batches over every {cfg.train_stride}th training window, "
            f"every {cfg.eval_stride}th validation/test window; horizon {cfg.pred_len} only."
        )
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
