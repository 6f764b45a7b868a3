"""MAML: sinusoid regression and Omniglot few-shot classification (Finn et al., ICML 2017, Sections 5.1-5.2).

The protocol, per seed:

1. **Sinusoid regression** (Section 5.1, Figure 2). Tasks are ``y = A sin(x - phi)`` with
   ``A ~ U[0.1, 5]``, ``phi ~ U[0, pi]``, ``x ~ U[-5, 5]``; the regressor is 1-40-40-1 with ReLU,
   MSE loss, K = 10 support points, one inner step of size ``alpha = 0.01``, meta-batches of 25 tasks
   and Adam as the meta-optimiser. The baseline is the same network *pretrained on all tasks*: plain
   regression on points of random tasks (each point with its own task's target), which can only learn
   the average function. On held-out tasks both take gradient steps of size ``alpha`` on the K points,
   and we report the query MSE after one step (and after 0-10 steps, as in Figure 3). The claim
   (Figure 2): after one step MAML fits the new sinusoid, the baseline does not; we require MAML's
   post-step MSE to be at most a third of the baseline's.
2. **Omniglot N-way K-shot** (Section 5.2, Table 1). 1,200 characters (a seeded random choice, as the
   paper's code makes it) for meta-training and the other 423 for testing; each character rotated by
   0/90/180/270 degrees is four classes; images 28x28, ink 1. The network is the paper's 4-block CNN
   (3x3 convolutions with stride 2, batch norm on batch statistics, ReLU; mean of the last map; linear).
   5-way: one inner step of ``alpha = 0.4`` in training, three at test, meta-batch 32; 20-way: five
   steps of ``alpha = 0.1`` in training and at test, meta-batch 16; Adam, meta learning rate 1e-3,
   40,000 meta-iterations (the paper's code's commands). Accuracy is the mean over test episodes of
   the query accuracy after adaptation (the code scores 600 episodes). Both the full meta-gradient
   (second order) and the first-order approximation are trained.

Quick scale: one seed; the sinusoid with 800 meta-iterations at meta learning rate 0.01 (the paper:
70,000 at 1e-3); Omniglot 5-way 1-shot only and second order only (the first-order run, reported
without a threshold, is left to the full scale), with a 16-filter network (the paper's has 64),
meta-batches of 32 tasks with 5 query images per class (the paper's code: 1), 200 meta-iterations at
a constant meta learning rate 0.01 (the paper: 40,000 at 1e-3), scored on 1,000 test episodes (the
paper's code: 600; the standard error is then about 0.4 points). Seeds 0/1/2 give sinusoid MSE ratios
of 0.26/0.24/0.20 (MAML about 0.65, baseline 2.6-3.2 after one step) and 91.5/92.9/90.5 % on Omniglot:
the 90 % target is met on each, by 0.5-3 points only. The previous quick setting (2 query images per
class, 300 meta-iterations) gave 90.9/91.5/90.4 % at about the same cost; neither a cosine or linear
decay of the meta learning rate, a meta learning rate of 0.02, an inner step of 0.8, a zero-initialised
classifier, 8 or 32 filters, nor meta-batches of 8 or 16 (with more iterations or queries) did better
within the budget: a margin of two points on every seed needs about half as many meta-iterations
again. It costs about 35-40 s of CPU time on one thread (Omniglot training about 25-30 s, the sinusoid
5 s, loading and scoring the rest); on the loaded shared machine where it was measured, wall time
was about twice that.

Full scale: the paper's settings for all four Table 1 columns, both orders (40,000 meta-iterations
each, 8 runs). Not run yet; from the benchmark's per-step cost, roughly 1-3 hours per 5-way run and
several hours per 20-way run (five second-order inner steps) on one modern GPU. The full run
checkpoints each Omniglot run every 1,000 meta-iterations (``checkpoint_every``: weights, Adam, the
task generator, losses and curve; under ``<results>/_checkpoints/maml``), so a killed run resumes
where it was; the checkpoints are removed once the seed is done.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.datasets.omniglot import load_omniglot
from aicanon.learning.few_shot import EpisodeSampler
from aicanon.learning.maml import MAML, ConvNet, SinusoidRegressor, adapt
from aicanon.learning.sinusoid import SinusoidTasks


@dataclass(frozen=True)
class OmniglotSetting:
    """One column of Table 1 and its training settings."""

    ways: int
    shots: int
    inner_lr: float
    train_steps: int
    test_steps: int
    meta_batch: int


PAPER_SETTINGS = {
    # The paper's code's commands (main.py) and Section 5.2: 5-way 1 step of 0.4 (3 at test), meta-batch
    # 32; 20-way 5 steps of 0.1 (5 at test), meta-batch 16.
    (5, 1): OmniglotSetting(5, 1, 0.4, 1, 3, 32),
    (5, 5): OmniglotSetting(5, 5, 0.4, 1, 3, 32),
    (20, 1): OmniglotSetting(20, 1, 0.1, 5, 5, 16),
    (20, 5): OmniglotSetting(20, 5, 0.1, 5, 5, 16),
}


@dataclass
class Config(ExperimentConfig):
    # --- sinusoid (Section 5.1) ---
    sine_shots: int = 10
    """K: support points per task, in training and at test (the paper trains with K = 10 and with 5)."""
    sine_queries: int = 10
    """Query points per task in meta-training (the paper's code: K more points)."""
    sine_meta_batch: int = 25
    """Tasks per meta-update (25)."""
    sine_iterations: int = 70_000
    """Meta-iterations of MAML, and iterations of the pretrained baseline (70,000 in the paper's code)."""
    sine_inner_lr: float = 0.01
    """alpha, the inner step size, also used to fine-tune the baseline (0.01)."""
    sine_meta_lr: float = 0.001
    """Adam's learning rate for the meta-update and for pretraining the baseline (0.001)."""
    sine_hidden: int = 40
    """Width of the two hidden layers (40)."""
    sine_eval_tasks: int = 600
    """Held-out tasks scored after adaptation."""
    sine_eval_points: int = 100
    """Query points per held-out task, spread over [-5, 5]."""
    sine_eval_steps: int = 10
    """Largest number of adaptation steps in the MSE-vs-steps curve (Figure 3: 10)."""
    # --- Omniglot (Section 5.2) ---
    settings: tuple[tuple[int, int], ...] = ((5, 1), (5, 5), (20, 1), (20, 5))
    """(ways, shots) of the Table 1 columns to run; inner step size, steps and meta-batch follow the
    paper for each (``PAPER_SETTINGS``) unless overridden below."""
    orders: tuple[str, ...] = ("second", "first")
    """Meta-gradients to train with: ``second`` (full MAML) and/or ``first`` (the first-order
    approximation)."""
    train_characters: int = 1200
    """Characters for meta-training; the rest (423) are the test characters."""
    image_size: int = 28
    """Images are resized once from 105x105 to this side (28)."""
    filters: int = 64
    """Channels of every convolution (64 for Omniglot)."""
    iterations: int = 40_000
    """Meta-iterations per setting and order (40,000 in the paper's code's commands)."""
    meta_lr: float = 0.001
    """Adam's learning rate for the meta-update (0.001)."""
    meta_batch: int = 0
    """Tasks per meta-update; 0: the paper's (32 for 5-way, 16 for 20-way)."""
    train_queries: int = 0
    """Query examples per class in meta-training; 0: as many as the shots (the paper's code)."""
    test_queries: int = 1
    """Query examples per class in a test episode (the paper's code: as many as the shots; 1 here is
    a floor, raised to the shots)."""
    eval_tasks: int = 600
    """Test episodes scored (600, as the paper's code)."""
    inner_lr: float = 0.0
    """Inner step size; 0: the paper's for the setting (0.4 for 5-way, 0.1 for 20-way)."""
    split_seed: int = 1
    """Seed of the random choice of the 1,200 training characters (fixed across run seeds)."""
    curve_every: int = 0
    """Score ``curve_tasks`` test episodes every this many meta-iterations (0: never): a training curve."""
    curve_tasks: int = 100
    """Episodes per point of the training curve."""
    checkpoint_every: int = 0
    """Meta-iterations between checkpoints of each Omniglot run under the results folder; a killed
    run resumes there (0: none; full: 1,000)."""

    @classmethod
    def quick(cls) -> Config:
        # One seed; the sinusoid with 800 meta-iterations at meta-lr 0.01 (the paper: 70,000 at 1e-3);
        # Omniglot 5-way 1-shot, second order only, 16 filters, meta-batch 32 with 5 query images per
        # class, 200 meta-iterations at meta-lr 0.01 (the paper: 64 filters, 32, 1 query, 40,000 at 1e-3),
        # 1,000 test episodes. Sized to the time budget (see the module docstring for what was tried).
        return cls(
            scale="quick",
            seeds=1,
            threads=1,
            sine_iterations=800,
            sine_meta_lr=0.01,
            sine_eval_tasks=200,
            settings=((5, 1),),
            orders=("second",),
            filters=16,
            iterations=200,
            meta_lr=0.01,
            meta_batch=32,
            train_queries=5,
            eval_tasks=1000,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=1, curve_every=1000, checkpoint_every=1000)


# The paper's numbers (Table 1, MAML rows); our thresholds. Quick: a third of the baseline's MSE (the
# issue's reading of Figure 2) and 90 % on 5-way 1-shot after a short meta-training (the issue's
# target). Full thresholds sit below the paper's numbers by about three of its confidence intervals.
CLAIMS = [
    Claim(
        metric="sine_mse_ratio",
        description="sinusoid, K=10: MAML's MSE after one step / the pretrained baseline's (lower is better)",
        paper=None,
        source="Figure 2 (qualitative: MAML fits after one step, the pretrained model does not)",
        quick=1 / 3,
        full=1 / 3,
        higher_is_better=False,
    ),
    Claim(
        metric="sine_maml_mse",
        description="sinusoid, K=10: MAML's query MSE after one gradient step on held-out tasks",
        paper=None,
        source="Figure 2/3 (plotted, not tabled)",
    ),
    Claim(
        metric="sine_pretrained_mse",
        description="sinusoid, K=10: the pretrained baseline's query MSE after one gradient step",
        paper=None,
        source="Figure 2/3 (plotted, not tabled)",
    ),
    Claim(
        metric="omniglot_5way_1shot_accuracy",
        description="Omniglot 5-way 1-shot test accuracy, MAML (second order)",
        paper=98.7,
        source="Table 1 (98.7 +- 0.4 %)",
        quick=90.0,
        full=97.5,
        unit="%",
    ),
    Claim(
        metric="omniglot_5way_1shot_accuracy_first_order",
        description="Omniglot 5-way 1-shot test accuracy, first-order MAML",
        paper=98.3,
        source="Table 1, first-order row (98.3 +- 0.5 %) (unverified)",
        quick=None,
        full=97.0,
        unit="%",
    ),
    Claim(
        metric="omniglot_5way_5shot_accuracy",
        description="Omniglot 5-way 5-shot test accuracy, MAML",
        paper=99.9,
        source="Table 1 (99.9 +- 0.1 %)",
        full=99.5,
        unit="%",
    ),
    Claim(
        metric="omniglot_20way_1shot_accuracy",
        description="Omniglot 20-way 1-shot test accuracy, MAML",
        paper=95.8,
        source="Table 1 (95.8 +- 0.3 %)",
        full=94.5,
        unit="%",
    ),
    Claim(
        metric="omniglot_20way_5shot_accuracy",
        description="Omniglot 20-way 5-shot test accuracy, MAML",
        paper=98.9,
        source="Table 1 (98.9 +- 0.2 %)",
        full=98.0,
        unit="%",
    ),
]


def check_config(cfg: Config) -> None:
    """Reject settings the experiment cannot run, naming the field."""
    for name in ("sine_shots", "sine_queries", "sine_meta_batch", "sine_hidden", "sine_eval_tasks"):
        check_int(name, getattr(cfg, name), 1)
    for name in (
        "sine_eval_points",
        "sine_eval_steps",
        "filters",
        "meta_batch",
        "eval_tasks",
        "test_queries",
    ):
        check_int(name, getattr(cfg, name), 1 if name != "meta_batch" else 0)
    check_int("sine_iterations", cfg.sine_iterations, 0)
    check_int("iterations", cfg.iterations, 0)
    check_int("train_queries", cfg.train_queries, 0)
    check_int("curve_every", cfg.curve_every, 0)
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    check_int("curve_tasks", cfg.curve_tasks, 1)
    check_int("image_size", cfg.image_size, 8, 105)
    check_int("train_characters", cfg.train_characters, 1, 1622)
    check_float("sine_inner_lr", cfg.sine_inner_lr, 0, finite=True)
    check_float("sine_meta_lr", cfg.sine_meta_lr, 0, min_inclusive=False, finite=True)
    check_float("meta_lr", cfg.meta_lr, 0, min_inclusive=False, finite=True)
    check_float("inner_lr", cfg.inner_lr, 0, finite=True)
    if not cfg.orders:
        raise ValueError("orders must name at least one of ('second', 'first'), got an empty tuple")
    for order in cfg.orders:
        check_choice("orders", order, ("second", "first"))
    for setting in cfg.settings:
        if tuple(setting) not in PAPER_SETTINGS:
            raise ValueError(f"settings must be drawn from {sorted(PAPER_SETTINGS)}, got {setting}")


# --- sinusoid -------------------------------------------------------------------------------------


def train_sinusoid(cfg: Config, generator: torch.Generator, meta: bool) -> SinusoidRegressor:
    """MAML's meta-training (``meta``) or the pretrained baseline: regression on every task's points."""
    tasks = SinusoidTasks()
    model = SinusoidRegressor(cfg.sine_hidden)
    optimizer = torch.optim.Adam(model.parameters(), cfg.sine_meta_lr)
    maml = MAML(model, cfg.sine_inner_lr, 1, loss="mse")
    label = "MAML sinusoid" if meta else "pretrained sinusoid"
    for _ in track(range(cfg.sine_iterations), label):
        batch, _, _ = tasks.sample(cfg.sine_meta_batch, cfg.sine_shots, cfg.sine_queries, generator)
        if meta:
            maml.meta_step(batch, optimizer)
        else:
            optimizer.zero_grad(set_to_none=True)
            # The baseline sees the same amount of data: all points of all tasks, one regression.
            x = torch.cat([batch.support_x, batch.query_x], 1)
            y = torch.cat([batch.support_y, batch.query_y], 1)
            F.mse_loss(model(x), y).backward()
            optimizer.step()
    return model


def sinusoid_curves(model: SinusoidRegressor, cfg: Config, generator: torch.Generator) -> np.ndarray:
    """Query MSE on held-out tasks after 0..``sine_eval_steps`` steps of size ``alpha`` on K points."""
    tasks = SinusoidTasks()
    amplitude, phase = tasks.sample_parameters(cfg.sine_eval_tasks, generator)
    support_x = tasks.sample_inputs(cfg.sine_eval_tasks, cfg.sine_shots, generator)
    grid = torch.linspace(-5.0, 5.0, cfg.sine_eval_points).view(1, -1, 1).expand(cfg.sine_eval_tasks, -1, -1)
    support_y, query_y = tasks.evaluate(support_x, amplitude, phase), tasks.evaluate(grid, amplitude, phase)
    params = {k: p.detach() for k, p in model.named_parameters()}
    curve = []
    for steps in range(cfg.sine_eval_steps + 1):
        rates = [cfg.sine_inner_lr] * steps

        def one_task(sx, sy, qx, qy, rates=rates):
            adapted = adapt(model, params, sx, sy, F.mse_loss, rates, True) if rates else params
            return F.mse_loss(torch.func.functional_call(model, adapted, (qx,)), qy)

        curve.append(float(torch.func.vmap(one_task)(support_x, support_y, grid, query_y).mean()))
    return np.array(curve)


def _sinusoid_figure(
    models: dict[str, SinusoidRegressor], curves: dict[str, np.ndarray], cfg: Config
) -> Figure:
    """Figure 2's panels (one held-out task: before and after one step, K points) and Figure 3's curve."""
    figure = Figure(figsize=(12, 3.8), layout="constrained")
    axes = figure.subplots(1, 3)
    tasks = SinusoidTasks()
    generator = torch.Generator().manual_seed(12345)
    amplitude, phase = tasks.sample_parameters(1, generator)
    support_x = tasks.sample_inputs(1, cfg.sine_shots, generator)[0]
    support_y = tasks.evaluate(support_x.unsqueeze(0), amplitude, phase)[0]
    grid = torch.linspace(-5, 5, 200).view(-1, 1)
    truth = tasks.evaluate(grid.unsqueeze(0), amplitude, phase)[0]
    for axis, (name, model) in zip(axes[:2], models.items()):
        params = {k: p.detach() for k, p in model.named_parameters()}
        axis.plot(grid, truth, color="red", label="ground truth")
        axis.scatter(
            support_x, support_y, color="purple", marker="^", zorder=3, label=f"{cfg.sine_shots} points"
        )
        with torch.no_grad():
            axis.plot(
                grid,
                torch.func.functional_call(model, params, (grid,)),
                ":",
                color="green",
                label="pre-update",
            )
        for steps, style in ((1, "-"), (10, "--")):
            adapted = adapt(
                model, params, support_x, support_y, F.mse_loss, [cfg.sine_inner_lr] * steps, True
            )
            with torch.no_grad():
                axis.plot(
                    grid, torch.func.functional_call(model, adapted, (grid,)), style, label=f"{steps} step(s)"
                )
        axis.set(title=name, xlabel="x", ylim=(-6, 6))
        axis.legend(fontsize="x-small")
    for name, curve in curves.items():
        axes[2].plot(range(len(curve)), curve, marker="o", label=name)
    axes[2].set(
        xlabel="gradient steps (alpha = %g)" % cfg.sine_inner_lr, ylabel="query MSE", title="held-out tasks"
    )
    axes[2].legend(fontsize="small")
    return figure


# --- Omniglot -------------------------------------------------------------------------------------


def omniglot_split(cfg: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[characters, 20, 1, size, size]`` of the training and the test characters."""
    data = load_omniglot(cfg.image_size)
    order = torch.randperm(data.num_characters, generator=torch.Generator().manual_seed(cfg.split_seed))
    images = data.images.unsqueeze(2)
    train, test = order[: cfg.train_characters], order[cfg.train_characters :]
    return images[train].to(device), images[test].to(device)


def evaluate_episodes(
    maml: MAML, sampler: EpisodeSampler, tasks: int, steps: int, generator, chunk: int = 50
) -> float:
    """Mean query accuracy (%) over ``tasks`` test episodes, adapting ``steps`` steps to each."""
    correct, total = 0.0, 0
    device = sampler.images.device
    for start in range(0, tasks, chunk):
        batch = sampler.sample(min(chunk, tasks - start), generator).to(device)
        _, predictions = maml.evaluate(batch, steps)
        correct += float((predictions.argmax(-1) == batch.query_y).float().mean(1).sum())
        total += batch.num_tasks
    return 100.0 * correct / total


def _checkpoint(cfg: Config, setting: OmniglotSetting, order: str) -> Path | None:
    """Where one Omniglot run's checkpoints go (None when the config does not checkpoint)."""
    if not cfg.checkpoint_every:
        return None
    return checkpoint_folder("maml", cfg.to_dict()) / f"{setting.ways}way{setting.shots}shot-{order}"


def train_omniglot(
    cfg: Config,
    setting: OmniglotSetting,
    order: str,
    images: tuple[torch.Tensor, torch.Tensor],
    device,
    run_seed: int,
) -> dict:
    """Meta-train one (setting, order) from a fresh initialisation and score it on the test characters."""
    train_images, test_images = images
    torch.manual_seed(run_seed)
    generator = torch.Generator().manual_seed(run_seed)
    test_generator = torch.Generator().manual_seed(run_seed + 10_000)
    meta_batch = cfg.meta_batch or setting.meta_batch
    inner_lr = cfg.inner_lr or setting.inner_lr
    train_queries = cfg.train_queries or setting.shots
    test_queries = max(cfg.test_queries, setting.shots)
    train_sampler = EpisodeSampler(train_images, setting.ways, setting.shots, train_queries, rotations=True)
    test_sampler = EpisodeSampler(test_images, setting.ways, setting.shots, test_queries, rotations=True)
    model = ConvNet(setting.ways, filters=cfg.filters).to(device)
    maml = MAML(model, inner_lr, setting.train_steps, first_order=order == "first")
    optimizer = torch.optim.Adam(model.parameters(), cfg.meta_lr)
    losses: list[float] = []
    curve: list[tuple[int, float]] = []
    checkpoints = LoopCheckpoints(
        _checkpoint(cfg, setting, order),
        cfg.checkpoint_every,
        config={**cfg.to_dict(), "run": [setting.ways, setting.shots, order, run_seed]},
        model=model,
        optimizer=optimizer,
        tasks=generator,
        losses=losses,
        curve=curve,
    )
    start = checkpoints.resume()  # the meta-iterations a killed run had done
    label = f"Omniglot {setting.ways}-way {setting.shots}-shot, {order} order"
    for iteration in track(range(start + 1, cfg.iterations + 1), label, total=cfg.iterations - start):
        losses.append(maml.meta_step(train_sampler.sample(meta_batch, generator).to(device), optimizer))
        if cfg.curve_every and iteration % cfg.curve_every == 0:
            curve_generator = torch.Generator().manual_seed(run_seed + 20_000)
            curve.append(
                (
                    iteration,
                    evaluate_episodes(
                        maml, test_sampler, cfg.curve_tasks, setting.test_steps, curve_generator
                    ),
                )
            )
        checkpoints.done(iteration, cfg.iterations)
    accuracy = evaluate_episodes(maml, test_sampler, cfg.eval_tasks, setting.test_steps, test_generator)
    return {"accuracy": accuracy, "losses": losses, "curve": curve}


def _omniglot_figure(runs: dict[str, dict]) -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    for name, run in runs.items():
        losses = np.array(run["losses"])
        if len(losses) == 0:
            continue
        window = max(1, len(losses) // 30)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axis.plot(np.arange(len(smooth)) + window, smooth, label=f"{name}: {run['accuracy']:.1f} % test")
    axis.set(
        xlabel="meta-iteration",
        ylabel="query loss after adaptation (meta-loss)",
        title="Omniglot meta-training",
    )
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    check_config(cfg)
    generator = seed(cfg.seed)
    device = select_device(cfg.device)
    metrics: dict[str, float] = {}
    details: dict = {"seconds": {}}

    # 1. Sinusoid regression (CPU: the network is tiny).
    start = time.perf_counter()
    models = {
        "MAML": train_sinusoid(cfg, generator, meta=True),
        "pretrained on all tasks": train_sinusoid(cfg, generator, meta=False),
    }
    eval_seed = cfg.seed + 50_000
    curves = {
        name: sinusoid_curves(m, cfg, torch.Generator().manual_seed(eval_seed)) for name, m in models.items()
    }
    maml_curve, pretrained_curve = curves["MAML"], curves["pretrained on all tasks"]
    steps = min(1, cfg.sine_eval_steps)
    metrics["sine_maml_mse"] = float(maml_curve[steps])
    metrics["sine_pretrained_mse"] = float(pretrained_curve[steps])
    metrics["sine_mse_ratio"] = float(maml_curve[steps] / max(pretrained_curve[steps], 1e-12))
    details["sinusoid_mse_by_steps"] = {name: [float(v) for v in c] for name, c in curves.items()}
    details["seconds"]["sinusoid"] = time.perf_counter() - start
    figures = {"sinusoid": _sinusoid_figure(models, curves, cfg)}

    # 2. Omniglot N-way K-shot.
    runs: dict[str, dict] = {}
    if cfg.settings:
        images = omniglot_split(cfg, device)
        for ways, shots in cfg.settings:
            setting = PAPER_SETTINGS[(ways, shots)]
            for order in cfg.orders:
                start = time.perf_counter()
                outcome = train_omniglot(
                    cfg, setting, order, images, device, cfg.seed * 1000 + ways * 10 + shots
                )
                name = f"omniglot_{ways}way_{shots}shot_accuracy" + (
                    "_first_order" if order == "first" else ""
                )
                metrics[name] = outcome["accuracy"]
                runs[f"{ways}-way {shots}-shot, {order} order"] = outcome
                details["seconds"][name] = time.perf_counter() - start
                if outcome["curve"]:
                    details[f"{name}_curve"] = outcome["curve"]
        figures["omniglot_training"] = _omniglot_figure(runs)
        if cfg.checkpoint_every:  # every run trained and scored: nothing left to resume
            shutil.rmtree(checkpoint_folder("maml", cfg.to_dict()), ignore_errors=True)

    notes = [
        "Batch norm normalises with the current batch's statistics (as the paper's code) and its scale and "
        "shift are adapted in the inner loop; the paper's code kept them out of the adapted weights.",
        "The 1,200 training characters are a seeded random choice (split_seed); the paper's code drew its "
        "own random 1,200, so the test characters differ from the paper's.",
        "Images are resized from 105x105 with an antialiased bilinear filter (the paper's code: Lanczos).",
        "The pretrained sinusoid baseline is fine-tuned with the same step size as MAML (alpha = "
        f"{cfg.sine_inner_lr}); the paper tuned its baseline's step size.",
    ]
    if cfg.scale == "quick":
        notes.append(
            f"quick: sinusoid {cfg.sine_iterations} meta-iterations at meta-lr {cfg.sine_meta_lr}; Omniglot "
            f"5-way 1-shot only, orders {cfg.orders} (paper: second and first), {cfg.filters} filters "
            f"(paper: 64), meta-batch {cfg.meta_batch} (paper: 32) with {cfg.train_queries} query images "
            f"per class (paper's code: 1), {cfg.iterations} meta-iterations at meta-lr {cfg.meta_lr} "
            f"(paper: 40,000 at 1e-3), {cfg.eval_tasks} test episodes (paper's code: 600)."
        )
    details["omniglot_test_characters"] = 1623 - cfg.train_characters
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
