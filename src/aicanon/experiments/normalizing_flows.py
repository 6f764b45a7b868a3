"""Variational inference with normalizing flows (Rezende & Mohamed, ICML 2015): Figure 3 and Table 2.

**Figure 3 (quick and full).** The four 2-D targets ``p(z) ∝ exp(-U(z))`` of Table 1 (U1-U4,
:mod:`aicanon.testbeds.toy_densities`) are fitted by planar flows of length K = 2, 8 and 32: ``q0`` is
a learnt diagonal Gaussian and the flow parameters minimise the free energy (Eq. 15 with the energy in
place of ``-log p(x, z)``)

    F = E_q0[log q0(z0) - Σ_k log|det ∂f_k/∂z_{k-1}| + U(z_K)] = KL(q_K ‖ p) - log Z,

annealed early on (``β_t`` rising to 1, Section 6.2). The paper shows the fitted densities, which
approach the targets as K grows. We measure it: ``F`` per target and K (by Monte Carlo with many
samples after training), ``KL = F + log Z`` with ``log Z`` by quadrature, and the claim is that F
falls from K = 2 to 8 to 32 on every target, and that K = 32 comes within a stated KL of the target.

Departures in the quick run (stated in its notes): Adam at a learning rate of 6e-2 with a cosine
decay over 1200 updates of 128 samples (the paper: RMSprop 1e-5 for 500,000 updates); and
``restarts = 4`` independent initialisations per (target, K), trained side by side in the same batched
pass, of which the one with the lowest *training* free energy (β = 1, 4096 fresh samples of the
training stream, not the evaluation's) is kept - a selection by the objective itself, which the paper
does not describe (it reports one run). Without them (lr 1e-2, one run) K = 32 was far from converged
in 1200 updates and landed above K = 8 on U2-U4 seed to seed. The full run keeps the paper's optimiser
and one run (``restarts = 1``).

U2-U4 are periodic in z1: over the plane their mass is infinite, ``log Z = ∞`` and F has no lower
bound (q gains by spreading along z1). The paper plots them on the box ``[-4, 4]²``; we fit them
*restricted to that box*: outside it their energy gains a steep wall ``½ (dist(z, box) / wall_width)²``,
and their ``log Z`` is that of the walled target by quadrature (all but a sliver of it is the box's).
U1 is fitted over the plane as it is.

**Table 2 (full only).** A deep latent Gaussian model on binarised MNIST with an amortised
planar-flow posterior (:class:`aicanon.generative.flows.flow_vi.FlowVAE`), K = 0 (diagonal Gaussian),
10 and 80 flows; the test free energy (Eq. 15, an upper bound on ``-log p(x)``) and an importance
sampled ``-log p(x)``. Paper: ``-log p(x) ≤`` 89.9 (K = 0), 87.5 (K = 10), 85.1 (K = 80).
Settings (Section 6.2; the unverified ones say so in :meth:`Config.full`): 40 latent units, 400 hidden
units, RMSprop (learning rate 1e-5, momentum 0.9), minibatches of 100, 500,000 updates, free energy
annealed by ``β_t = min(1, 0.01 + t/10000)``. Cost: measured on CPU (tests/experiments) at about
5-20 ms per update for K = 0-80 with batch 100; 500k updates is about 1-3 h per K on one GPU (the
80 sequential flow layers bound it, not the matmuls), unmeasured here. The full run checkpoints
every training (each K's energy fits and MNIST model) every 10,000 updates (``checkpoint_every``;
under ``<results>/_checkpoints/normalizing-flows``), so a killed run resumes where it was; the
checkpoints are removed once the seed is done.

Ablation (``ablation="no_flow"``): the same training with every flow removed (``q = q0``, the K = 0
model at every K): F no longer falls with K, so the quick claims fail (tests show it).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.generative.flows.flow_vi import FlowVAE, PlanarDensity, free_energy
from aicanon.testbeds.toy_densities import ENERGIES, energy, grid


@dataclass
class Config(ExperimentConfig):
    energies: tuple[str, ...] = ("U1", "U2", "U3", "U4")
    """Targets of Table 1 / Figure 3 (fitted side by side, one independent flow each)."""
    flow_lengths: tuple[int, ...] = (2, 8, 32)
    """K, the number of planar layers (Figure 3: 2, 8, 32)."""
    steps: int = 1200
    """Parameter updates per K."""
    batch_size: int = 128
    """Monte Carlo samples of q0 per update and target."""
    optimizer: str = "adam"
    """``adam`` (quick: converges in few steps) or ``rmsprop`` (the paper's, with momentum 0.9)."""
    learning_rate: float = 6e-2
    """Step size of the optimiser (quick: 6e-2; at 1e-2 K = 32 is far from converged after 1200 updates,
    KL 0.3-0.8 on U3/U4, and lands above K = 8)."""
    cosine_decay: bool = True
    """Decay the learning rate to zero over the run by a cosine (quick: a short run ends with small
    steps, so F is read at a settled point); the paper keeps it constant."""
    anneal_steps: int = 600
    """``β_t = min(1, 0.01 + t / anneal_steps)`` (the paper: 10000 of its 500,000 updates)."""
    restarts: int = 4
    """Independent initialisations per (target, K), trained side by side in the same batched pass; the
    one with the lowest *training* free energy (β = 1, ``select_samples`` samples of the training
    stream) is kept and evaluated (a departure: the paper reports one run). 1: no selection."""
    select_samples: int = 4096
    """Samples of the free energy that picks the kept restart."""
    eval_samples: int = 50_000
    """Samples of q_K for the final free energy (its Monte Carlo error is well below 0.01 nats)."""
    box_limit: float = 4.0
    """U2-U4 are restricted to ``[-box_limit, box_limit]²`` (the paper's plotting box)."""
    wall_width: float = 0.1
    """Width of the wall that restricts U2-U4 to the box."""
    ablation: str = "none"
    """``none`` or ``no_flow`` (every flow removed: q = q0 for every K)."""
    vae_flow_lengths: tuple[int, ...] = ()
    """Table 2: flow lengths of the MNIST model (empty: skip it; full: 0, 10, 80)."""
    vae_steps: int = 500_000
    """Updates of each MNIST model (Section 6.2: 500,000)."""
    vae_batch_size: int = 100
    """Minibatch of the MNIST model (100)."""
    vae_learning_rate: float = 1e-5
    """RMSprop learning rate (1e-5, momentum 0.9)."""
    vae_anneal_steps: int = 10_000
    """``β_t = min(1, 0.01 + t / vae_anneal_steps)`` (Section 6.2: 10000)."""
    latent_dim: int = 40
    """Latent units of the DLGM (40)."""
    hidden_units: int = 400
    """Hidden units of encoder and decoder (400)."""
    vae_train_limit: int = 0
    """Use only this many training images (0: all 60,000); for smoke tests."""
    vae_test_limit: int = 0
    """Evaluate on this many test images (0: all 10,000)."""
    vae_importance_samples: int = 0
    """Samples of the importance-sampled -log p(x) (0: report only the free energy)."""
    checkpoint_every: int = 0
    """Updates between checkpoints of every training (each K's energy fits, each MNIST model) under
    the results folder; a killed run resumes there (0: none; full: 10,000)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", threads=1)

    @classmethod
    def full(cls) -> Config:
        # Figure 3 at the paper's optimiser and length; Table 2's MNIST models (settings unverified:
        # RMSprop 1e-5 / momentum 0.9, 500k updates of 100 and 10k annealing steps are our reading
        # of Section 6.2, not checked against the text here).
        return cls(
            scale="full",
            steps=500_000,
            batch_size=100,
            optimizer="rmsprop",
            learning_rate=1e-5,
            anneal_steps=10_000,
            cosine_decay=False,
            restarts=1,
            eval_samples=200_000,
            vae_flow_lengths=(0, 10, 80),
            vae_importance_samples=200,
            checkpoint_every=10_000,
        )


# Thresholds from our quick runs (one thread, 1200 Adam updates per K at lr 6e-2, 4 restarts per
# (target, K), the lowest training free energy kept), KL = F + log Z per K = 2 / 8 / 32:
#   seed 0: U1 0.258/0.070/0.012  U2 0.571/0.085/0.007  U3 0.404/0.186/0.076  U4 0.510/0.284/0.041
#   seed 1: U1 0.330/0.057/0.007  U2 0.565/0.065/0.009  U3 0.579/0.229/0.033  U4 0.720/0.236/0.079
#   seed 2: U1 0.282/0.064/0.011  U2 0.563/0.069/0.011  U3 0.582/0.187/0.075  U4 0.447/0.236/0.115
# so decrease_* (the smaller step of 2 -> 8 -> 32) is >= 0.050 on every target and seed (smallest: U1 and
# U2, whose K = 8 is already within 0.06-0.09 of the target, which caps their 8 -> 32 step), gain_* >=
# 0.246, kl_U1_K32 <= 0.012 and kl_U2-4_K32 <= 0.115. The no-flow ablation's gains and decreases are
# <= 0.017 (seeds 0, 1), so it fails them all. Before (lr 1e-2, one run): K = 32 landed above K = 8 on
# U2-U4 seed to seed (gain_U2 -0.08 on seed 1), and only the endpoint gain was claimable.
DECREASE_MARGIN = 0.02
GAIN_MARGIN = 0.15
CLAIMS = [
    *[
        Claim(
            metric=f"gain_{name}",
            description=f"{name}: F(K=2) - F(K=32): the bound falls as K grows",
            paper=None,
            source="Figure 3 (qualitative: q_K matches the target better as K grows)",
            quick=GAIN_MARGIN,
            full=GAIN_MARGIN,
            unit="nats",
        )
        for name in ENERGIES
    ],
    *[
        Claim(
            metric=f"decrease_{name}",
            description=f"{name}: min(F(K=2) - F(K=8), F(K=8) - F(K=32)): F falls at every step of K",
            paper=None,
            source="Figure 3 (qualitative)",
            quick=DECREASE_MARGIN,
            full=DECREASE_MARGIN,
            unit="nats",
        )
        for name in ENERGIES
    ],
    Claim(
        metric="kl_U1_K32",
        description="U1, K = 32: KL(q_K ‖ p) = F + log Z (log Z over the plane, by quadrature)",
        paper=None,
        source="Figure 3 (qualitative)",
        quick=0.05,
        full=0.1,
        higher_is_better=False,
        unit="nats",
    ),
    *[
        Claim(
            metric=f"kl_{name}_K32",
            description=f"{name}, K = 32: KL(q_K ‖ p), p restricted to the box [-4, 4]² (log Z the box's)",
            paper=None,
            source="Figure 3 (qualitative)",
            quick=0.2,
            full=0.2,
            higher_is_better=False,
            unit="nats",
        )
        for name in ("U2", "U3", "U4")
    ],
    *[
        Claim(
            metric=f"mnist_free_energy_K{k}",
            description=f"binarised MNIST test free energy, DLGM with K = {k} planar flows",
            paper=paper,
            source=source,
            quick=None,
            full=full,
            higher_is_better=False,
            unit="nats",
        )
        for k, paper, source, full in (
            (0, 89.9, "Table 2, DLGM diagonal covariance (unverified)", 91.0),
            (10, 87.5, "Table 2, DLGM+NF k = 10 (unverified)", 89.0),
            (80, 85.1, "Table 2, DLGM+NF k = 80", 87.0),
        )
    ],
]


def _wall(z: Tensor, limit: float, width: float) -> Tensor:
    """``½ (dist(z, box) / width)²``: zero inside ``[-limit, limit]²``."""
    outside = (z.abs() - limit).clamp(min=0)
    return 0.5 * (outside / width).square().sum(-1)


def target_energy(name: str, z: Tensor, cfg: Config) -> Tensor:
    """``U`` of a target at ``z`` ``[N, 2]``: U1 as it is, U2-U4 restricted to the box."""
    value = energy(name, z)
    return value if name == "U1" else value + _wall(z, cfg.box_limit, cfg.wall_width)


def target_log_normaliser(name: str, cfg: Config) -> float:
    """``log Z`` of :func:`target_energy` by the midpoint rule (float64) on a grid past the box."""
    limit = cfg.box_limit + 8 * cfg.wall_width if name != "U1" else 6.0
    points, area = grid(limit, int(limit * 250))
    return float(torch.logsumexp(-target_energy(name, points, cfg), 0) + math.log(area))


def _check(cfg: Config) -> None:
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    if not cfg.energies:
        raise ValueError("energies must name at least one of U1-U4, got an empty tuple")
    for name in cfg.energies:
        check_choice("energies[]", name, tuple(ENERGIES))
    if not cfg.flow_lengths:
        raise ValueError("flow_lengths must hold at least one K, got an empty tuple")
    for k in (*cfg.flow_lengths, *cfg.vae_flow_lengths):
        check_int("flow length K", k, 0)
    check_int("steps", cfg.steps, 1)
    check_int("batch_size", cfg.batch_size, 1)
    check_choice("optimizer", cfg.optimizer, ("adam", "rmsprop"))
    check_float("learning_rate", cfg.learning_rate, 0.0, min_inclusive=False, finite=True)
    check_int("anneal_steps", cfg.anneal_steps, 1)
    check_int("restarts", cfg.restarts, 1)
    check_int("select_samples", cfg.select_samples, 1)
    check_int("eval_samples", cfg.eval_samples, 1)
    check_float("box_limit", cfg.box_limit, 0.0, min_inclusive=False, finite=True)
    check_float("wall_width", cfg.wall_width, 0.0, min_inclusive=False, finite=True)
    check_choice("ablation", cfg.ablation, ("none", "no_flow"))
    check_int("vae_steps", cfg.vae_steps, 1)
    check_int("vae_batch_size", cfg.vae_batch_size, 1)
    check_float("vae_learning_rate", cfg.vae_learning_rate, 0.0, min_inclusive=False, finite=True)
    check_int("vae_anneal_steps", cfg.vae_anneal_steps, 1)
    for name in ("latent_dim", "hidden_units"):
        check_int(name, getattr(cfg, name), 1)
    for name in ("vae_train_limit", "vae_test_limit", "vae_importance_samples"):
        check_int(name, getattr(cfg, name), 0)


def _optimizer(params, cfg_optimizer: str, learning_rate: float) -> torch.optim.Optimizer:
    if cfg_optimizer == "adam":
        return torch.optim.Adam(params, lr=learning_rate)
    return torch.optim.RMSprop(params, lr=learning_rate, momentum=0.9)


def stacked_energies(cfg: Config):
    """``z`` ``[targets * R, N, 2]`` (target-major: copies ``t R .. t R + R - 1`` are target ``t``'s, any
    ``R ≥ 1``) -> each copy's target energy at its own samples ``[targets * R, N]``."""

    def energies(z: Tensor) -> Tensor:
        per_target = z.reshape(len(cfg.energies), -1, z.shape[-1])
        values = [target_energy(name, per_target[i], cfg) for i, name in enumerate(cfg.energies)]
        return torch.stack(values).view(z.shape[:-1])

    return energies


def _checkpoint(cfg: Config, training: str) -> Path | None:
    """Where one training's checkpoints go (None when the config does not checkpoint)."""
    if not cfg.checkpoint_every:
        return None
    return checkpoint_folder("normalizing-flows", cfg.to_dict()) / training


def fit_targets(cfg: Config, length: int, device: torch.device) -> tuple[PlanarDensity, Tensor]:
    """Train ``cfg.restarts`` planar-flow densities of length ``length`` per target, all side by side,
    and keep per target the restart with the lowest training free energy (β = 1, ``select_samples``
    samples). Returns the kept densities (one copy per target) and every restart's free energy
    ``[targets, restarts]``."""
    size = 0 if cfg.ablation == "no_flow" else length
    targets, restarts = len(cfg.energies), cfg.restarts
    density = PlanarDensity(2, size, copies=targets * restarts).to(device)
    optimizer = _optimizer(density.parameters(), cfg.optimizer, cfg.learning_rate)
    energies = stacked_energies(cfg)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.steps) if cfg.cosine_decay else None
    checkpoints = LoopCheckpoints(
        _checkpoint(cfg, f"fits-K{length}"),
        cfg.checkpoint_every,
        config={**cfg.to_dict(), "training": f"fits-K{length}"},
        density=density,
        optimizer=optimizer,
        **({"schedule": schedule} if schedule is not None else {}),
    )
    start = checkpoints.resume()
    for step in track(range(start, cfg.steps), f"planar flows K={length}", total=cfg.steps - start):
        beta = min(1.0, 0.01 + step / cfg.anneal_steps)
        loss = free_energy(density, energies, cfg.batch_size, beta).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        checkpoints.done(step + 1, cfg.steps)
    with torch.no_grad():
        trained = free_energy(density, energies, cfg.select_samples).view(targets, restarts)
    kept = torch.arange(targets, device=trained.device) * restarts + trained.argmin(1)
    return density.select(kept), trained.cpu()


@torch.no_grad()
def evaluate(density: PlanarDensity, cfg: Config, generator: torch.Generator) -> Tensor:
    """F per target ``[copies]`` over ``cfg.eval_samples`` samples (in chunks)."""
    chunk, total, done = 10_000, 0.0, 0
    while done < cfg.eval_samples:
        count = min(chunk, cfg.eval_samples - done)
        total = total + count * free_energy(density, stacked_energies(cfg), count, generator=generator)
        done += count
    return total / cfg.eval_samples


@torch.no_grad()
def density_grid(density: PlanarDensity, limit: float, bins: int, samples: int, generator) -> np.ndarray:
    """q_K of every copy as a 2-D histogram of its samples ``[copies, bins, bins]`` (planar flows have
    no closed-form inverse, so q_K is not evaluated at grid points)."""
    z, _ = density.sample(samples, generator)
    out = []
    for c in range(density.copies):
        hist, _, _ = np.histogram2d(
            z[c, :, 0].cpu().numpy(), z[c, :, 1].cpu().numpy(), bins=bins, range=[[-limit, limit]] * 2
        )
        out.append(hist)
    return np.stack(out)


def _figure(cfg: Config, histograms: dict[int, np.ndarray], metrics: dict[str, float]) -> Figure:
    names, lengths, limit = cfg.energies, cfg.flow_lengths, cfg.box_limit
    figure = Figure(figsize=(2.4 * (len(lengths) + 1), 2.4 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), len(lengths) + 1, squeeze=False)
    points, _ = grid(limit, 200)
    for row, name in enumerate(names):
        target = torch.exp(-target_energy(name, points, cfg)).view(200, 200).numpy()
        axes[row, 0].imshow(target.T, origin="lower", extent=[-limit, limit] * 2, cmap="viridis")
        axes[row, 0].set_title(f"{name}: exp(-U)", fontsize="small")
        for col, k in enumerate(lengths, start=1):
            axes[row, col].imshow(histograms[k][row].T, origin="lower", extent=[-limit, limit] * 2)
            kl = metrics[f"kl_{name}_K{k}"]
            axes[row, col].set_title(f"K = {k}: KL {kl:.3f}", fontsize="small")
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("Figure 3: targets and planar-flow approximations q_K (histograms of samples)")
    return figure


def train_mnist(cfg: Config, length: int, device: torch.device) -> dict[str, float]:
    """Table 2: a DLGM with a K-planar-flow posterior on binarised MNIST; test free energy (and
    importance-sampled -log p(x))."""
    from aicanon.datasets.mnist import load_mnist

    generator = torch.Generator().manual_seed(cfg.seed)

    def binarised(split: str, limit: int) -> Tensor:
        images, _ = load_mnist(split)
        images = images[:limit] if limit else images
        # Stochastic binarisation, drawn once (a fixed binarised set).
        return torch.bernoulli(images.flatten(1).float() / 255.0, generator=generator)

    train, test = binarised("train", cfg.vae_train_limit), binarised("test", cfg.vae_test_limit)
    model = FlowVAE(train.shape[1], cfg.latent_dim, cfg.hidden_units, length).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=cfg.vae_learning_rate, momentum=0.9)
    checkpoints = LoopCheckpoints(
        _checkpoint(cfg, f"mnist-K{length}"),
        cfg.checkpoint_every,
        config={**cfg.to_dict(), "training": f"mnist-K{length}"},
        model=model,
        optimizer=optimizer,
        batches=generator,
    )
    start = checkpoints.resume()
    for step in track(range(start, cfg.vae_steps), f"MNIST DLGM K={length}", total=cfg.vae_steps - start):
        index = torch.randint(train.shape[0], (cfg.vae_batch_size,), generator=generator)
        beta = min(1.0, 0.01 + step / cfg.vae_anneal_steps)
        loss = model.free_energy(train[index].to(device), beta).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        checkpoints.done(step + 1, cfg.vae_steps)
    bound, nll = [], []
    with torch.no_grad():
        for batch in test.split(500):
            batch = batch.to(device)
            bound.append(model.free_energy(batch).cpu())
            if cfg.vae_importance_samples:
                nll.append(model.importance_nll(batch, cfg.vae_importance_samples).cpu())
    out = {f"mnist_free_energy_K{length}": float(torch.cat(bound).mean())}
    if nll:
        out[f"mnist_nll_K{length}"] = float(torch.cat(nll).mean())
    return out


def run(cfg: Config) -> Result:
    _check(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed + 10_000)
    log_z = {name: target_log_normaliser(name, cfg) for name in cfg.energies}
    metrics: dict[str, float] = {}
    histograms: dict[int, np.ndarray] = {}
    restart_kl: dict[str, list[float]] = {}
    for length in cfg.flow_lengths:
        density, trained = fit_targets(cfg, length, device)
        values = evaluate(density, cfg, generator)
        for i, name in enumerate(cfg.energies):
            metrics[f"free_energy_{name}_K{length}"] = float(values[i])
            metrics[f"kl_{name}_K{length}"] = float(values[i]) + log_z[name]
            restart_kl[f"{name}_K{length}"] = [round(float(f) + log_z[name], 4) for f in trained[i]]
        histograms[length] = density_grid(density, cfg.box_limit, 100, 100_000, generator)
    ordered = sorted(cfg.flow_lengths)
    if len(ordered) > 1:
        for name in cfg.energies:
            steps = [
                metrics[f"free_energy_{name}_K{a}"] - metrics[f"free_energy_{name}_K{b}"]
                for a, b in zip(ordered, ordered[1:])
            ]
            metrics[f"decrease_{name}"] = min(steps)
            first, last = ordered[0], ordered[-1]
            gain = metrics[f"free_energy_{name}_K{first}"] - metrics[f"free_energy_{name}_K{last}"]
            metrics[f"gain_{name}"] = gain
    for length in cfg.vae_flow_lengths:
        metrics.update(train_mnist(cfg, length, device))
    if cfg.checkpoint_every:  # every training is done: nothing left to resume
        shutil.rmtree(checkpoint_folder("normalizing-flows", cfg.to_dict()), ignore_errors=True)

    notes = [
        "U2-U4 are fitted restricted to the box [-4, 4]^2 (a steep wall outside it); their log Z is the "
        "walled target's by quadrature. Over the plane they have infinite mass and no finite KL.",
        "q0 is a learnt diagonal Gaussian; the free energy is annealed (beta_t = min(1, 0.01 + t/T)) as "
        "in Section 6.2; F is evaluated after training with eval_samples Monte Carlo samples.",
        "The densities in the figure are histograms of q_K's samples, not evaluations at grid points.",
    ]
    if cfg.scale == "quick":
        notes.append(
            f"quick: {cfg.steps} Adam updates (lr {cfg.learning_rate:g}, cosine decay) of {cfg.batch_size} "
            "samples per K (the paper: 500,000 RMSprop updates at 1e-5); no MNIST model (Table 2 is the "
            "full run's)."
        )
    if cfg.restarts > 1:
        notes.append(
            f"departure: {cfg.restarts} restarts per (target, K), trained side by side; the one with the "
            f"lowest training free energy (beta = 1, {cfg.select_samples} training-stream samples) is kept "
            "and evaluated on fresh samples (the paper reports one run). Every restart's training KL is "
            "in details['restart_training_kl']."
        )
    if cfg.ablation == "no_flow":
        notes.append("ablation no_flow: every flow removed, q = q0 at every K.")
    details = {
        "log_normaliser": log_z,
        "flow_lengths": list(cfg.flow_lengths),
        "restart_training_kl": restart_kl,
    }
    figures = {"figure3_densities": _figure(cfg, histograms, metrics)}
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
