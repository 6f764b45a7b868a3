"""Soft Actor-Critic's learning curves (Haarnoja et al. 2018a, Figure 1; the learned temperature of
Haarnoja et al. 2018b).

The protocol, per environment and seed:

1. Make the environment (Gymnasium; the agent squashes its actions into the environment's box).
2. Act uniformly at random for ``learning_starts`` steps, then with the stochastic policy; store every
   transition in the replay buffer; after each environment step take ``updates_per_step`` gradient
   steps of the critics, the actor and the temperature (:class:`aicanon.rl.sac.SAC`).
3. Every ``eval_every`` steps, and at the end, evaluate the deterministic policy tanh(μ(s))
   (:func:`aicanon.rl.evaluation.evaluate_policy`, separate environment, seeded episodes): the
   learning curve; the last evaluation is the seed's result.

Quick (two CPU cores): Pendulum-v1, 3 seeds. The papers have no Pendulum result; the issue's target is
a mean return of at least −200 (a random policy scores about −1200, the best policies about −150),
which SAC reaches within a few thousand steps. The networks are smaller (2 x 64) and the learning
rate higher (1e-3) than the papers' so that the run fits the budget; everything else is the
algorithm of 2018b. The ablation that must fail is the untrained agent (``learn=False``: no gradient
step ever, the initial policy).

Full (a GPU or a CPU over hours): HalfCheetah-v5 and Hopper-v5 for 1M steps at the papers' settings
(2 x 256, Adam 3e-4, batch 256, buffer 1e6, τ = 0.005, γ = 0.99, one gradient step per environment
step, learned α with H̄ = −dim(A)), 5 seeds. Cost: one seed of one environment is 1M environment steps
and 1M gradient steps. benchmarks/bench_sac.py measured 33 training steps/s at 2 x 256 on one core of
a 2-core machine shared with five other jobs (SB3: 27); alone, a core gives roughly 3-4x that
(about 100-150 steps/s, an estimate), so one run takes 2-3 hours and the 10 runs (2 environments x 5
seeds) 20-30 CPU-hours, in parallel processes one per core. On a GPU the update is launch-bound
(about 300-500 steps/s, unmeasured): about 1 hour per run, 10 GPU-hours, or 2 hours with the five
seeds in parallel processes on one GPU. The run checkpoints every 50k steps and resumes when killed.

The original variant (2018a Algorithm 1, state-value network, fixed temperature) is
``value_network=True, alpha=0.2`` (2018a's reward scale 5 with α = 1 is the same optimum as α = 1/5).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.rl.envs import make_env
from aicanon.rl.evaluation import evaluate_policy
from aicanon.rl.sac import SAC, SACConfig


@dataclass
class Config(ExperimentConfig):
    env_ids: tuple[str, ...] = ("HalfCheetah-v5", "Hopper-v5")
    """Gymnasium environments, each trained from scratch (Figure 1's HalfCheetah and Hopper, v5)."""
    total_steps: int = 1_000_000
    """Environment steps per environment and seed (Figure 1: 1M for Hopper; HalfCheetah's runs to 3M)."""
    learning_starts: int = 10_000
    """Uniformly random actions before the policy acts and learning begins (our choice; SB3-zoo's)."""
    updates_per_step: int = 1
    """Gradient steps per environment step (1, 2018a Appendix D)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor, the critics and the value network (2 x 256)."""
    learning_rate: float = 3e-4
    """Adam's learning rate for every network and the temperature (3e-4)."""
    batch_size: int = 256
    """Transitions per gradient step (256)."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity (1e6)."""
    gamma: float = 0.99
    """Discount (0.99)."""
    tau: float = 0.005
    """Target smoothing coefficient (0.005)."""
    alpha: float | None = None
    """A fixed temperature; None learns it with target entropy −dim(A) (2018b)."""
    value_network: bool = False
    """The original variant: a state-value network and its target instead of target critics (2018a)."""
    reward_scale: float = 1.0
    """Multiplies the rewards in the critic targets (2018a's temperature knob; 1 with a learned α)."""
    learn: bool = True
    """False: never take a gradient step (the untrained-agent ablation)."""
    eval_every: int = 10_000
    """Environment steps between evaluations (the learning curve)."""
    eval_episodes: int = 5
    """Episodes per intermediate evaluation."""
    final_eval_episodes: int = 10
    """Episodes of the final evaluation (the reported return)."""
    max_episode_steps: int | None = None
    """Time limit override (None: the environment's own, 200 for Pendulum, 1000 for MuJoCo)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints of the whole training state (agent, buffer, RNGs,
    environment RNG, curve), taken at the next episode end, under the results folder
    (``_checkpoints/sac/<config hash>``); a rerun of a killed run resumes there. 0: none."""

    @classmethod
    def quick(cls) -> Config:
        # Pendulum at 2 x 64, lr 1e-3, batch 128, 5000 steps: 3 seeds took 50 s of CPU (114 s wall)
        # on the shared 2-core machine at load 6; seeds -172, -170, -185 (the target is -200).
        return cls(
            scale="quick",
            seeds=3,
            threads=1,
            env_ids=("Pendulum-v1",),
            total_steps=5_000,
            learning_starts=500,
            hidden=(64, 64),
            learning_rate=1e-3,
            batch_size=128,
            buffer_size=10_000,
            eval_every=1_000,
            eval_episodes=3,
            final_eval_episodes=10,
        )

    @classmethod
    def full(cls) -> Config:
        # The papers' settings (2018a/2018b Appendix D), 5 seeds (Figure 1), checkpoints every 50k steps.
        return cls(scale="full", seeds=5, threads=1, checkpoint_every=50_000)


# The quick target is the (the paper has no Pendulum run): −200 over 3 seeds. Full: Figure 1
# at 1M steps, read off the plot (2018b's Figure 1, learned temperature): HalfCheetah about 10,000 at
# 1M (15,000 at 3M), Hopper about 3,300. Thresholds leave room for v5 vs v1/v2 and 5-seed noise.
CLAIMS = [
    Claim(
        metric="pendulum_return",
        description="mean return of the deterministic policy on Pendulum-v1 after training (10 episodes)",
        paper=None,
        source="the issue's quick target (the papers have no Pendulum run; random policy about -1200)",
        quick=-200.0,
        full=None,
    ),
    Claim(
        metric="halfcheetah_return",
        description="HalfCheetah-v5 return at 1M steps (deterministic evaluation)",
        paper=10_000.0,
        source="Figure 1, HalfCheetah, SAC at 1M steps (read off the plot, approximate; unverified)",
        quick=None,
        full=8_000.0,
    ),
    Claim(
        metric="hopper_return",
        description="Hopper-v5 return at 1M steps (deterministic evaluation)",
        paper=3_300.0,
        source="Figure 1, Hopper, SAC at 1M steps (read off the plot, approximate; unverified)",
        quick=None,
        full=2_500.0,
    ),
]


def _check_config(cfg: Config) -> None:
    if not cfg.env_ids or not all(isinstance(e, str) for e in cfg.env_ids):
        raise ValueError(f"env_ids must name at least one Gymnasium environment, got {cfg.env_ids!r}")
    check_int("total_steps", cfg.total_steps)
    check_int("learning_starts", cfg.learning_starts, 0)
    check_int("updates_per_step", cfg.updates_per_step, 0)
    check_int("eval_every", cfg.eval_every)
    check_int("eval_episodes", cfg.eval_episodes)
    check_int("final_eval_episodes", cfg.final_eval_episodes)
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    check_int("max_episode_steps", cfg.max_episode_steps, allow_none=True)
    check_float("learning_rate", cfg.learning_rate, 0.0, min_inclusive=False, finite=True)
    check_choice("learn", cfg.learn, (True, False))


def metric_name(env_id: str) -> str:
    """``HalfCheetah-v5`` -> ``halfcheetah``: the prefix of that environment's metrics."""
    return env_id.split("/")[-1].split("-v")[0].lower()


def agent_config(cfg: Config) -> SACConfig:
    return SACConfig(
        hidden=tuple(cfg.hidden),
        lr=cfg.learning_rate,
        gamma=cfg.gamma,
        tau=cfg.tau,
        batch_size=cfg.batch_size,
        buffer_size=min(cfg.buffer_size, cfg.total_steps),
        alpha=cfg.alpha,
        reward_scale=cfg.reward_scale,
        value_network=cfg.value_network,
    )


def evaluate(agent: SAC, cfg: Config, env_id: str, episodes: int, salt: int) -> float:
    """Mean return of the deterministic policy over ``episodes`` seeded episodes of a fresh environment."""
    evaluation = evaluate_policy(
        lambda observation: agent.act(observation, deterministic=True),
        lambda: make_env(env_id, max_episode_steps=cfg.max_episode_steps),
        episodes=episodes,
        seed=1_000_000 + 10_000 * cfg.seed + 100 * salt,
    )
    return evaluation.mean


def train(cfg: Config, env_id: str, device: torch.device, checkpoint: Path | None = None) -> dict:
    """Train one agent on ``env_id`` (module docstring); resume from ``checkpoint`` when it holds a state."""
    env = make_env(env_id, max_episode_steps=cfg.max_episode_steps)
    agent = SAC(env.observation_space, env.action_space, agent_config(cfg), seed=cfg.seed, device=device)
    curve: list[tuple[int, float]] = []
    episode_returns: list[float] = []
    start, record = 0, {**cfg.to_dict(), "env_id": env_id}
    observation, _ = env.reset(seed=cfg.seed)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, config=record)
        if state is not None:  # saved at an episode end: the environment resets from its own RNG
            agent.load_state_dict(state["agent"])
            env.unwrapped.np_random.bit_generator.state = state["env_rng"]
            set_rng_state(state["rng"])
            curve = [(int(step), float(value)) for step, value in state["curve"]]
            episode_returns = [float(value) for value in state["episode_returns"]]
            start = int(state["step"])
            observation, _ = env.reset()
    episode_return, last_checkpoint = 0.0, start
    label = f"SAC {env_id} seed {cfg.seed}"
    for step in track(range(start, cfg.total_steps), label, total=cfg.total_steps - start):
        if step < cfg.learning_starts:
            action = agent.random_action()
        else:
            action = agent.act(observation)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        if not math.isfinite(float(reward)):
            raise ValueError(f"{env_id} returned a non-finite reward {reward} at step {step}")
        agent.observe(observation, action, reward, next_observation, terminated)
        episode_return += float(reward)
        observation = next_observation
        if cfg.learn and step + 1 >= cfg.learning_starts and len(agent.buffer) >= cfg.batch_size:
            for _ in range(cfg.updates_per_step):
                agent.update()
        if (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.total_steps:
            curve.append((step + 1, evaluate(agent, cfg, env_id, cfg.eval_episodes, len(curve))))
        if terminated or truncated:
            episode_returns.append(episode_return)
            episode_return = 0.0
            if checkpoint is not None and step + 1 - last_checkpoint >= cfg.checkpoint_every:
                state = {
                    "agent": agent.state_dict(),
                    "env_rng": env.unwrapped.np_random.bit_generator.state,
                    "rng": rng_state(),
                    "curve": [list(point) for point in curve],
                    "episode_returns": episode_returns,
                    "step": step + 1,
                }
                save_checkpoint(checkpoint, state, config=record)
                last_checkpoint = step + 1
            observation, _ = env.reset()
    final = evaluate(agent, cfg, env_id, cfg.final_eval_episodes, len(curve))
    curve.append((cfg.total_steps, final))
    env.close()
    return {"final_return": final, "curve": curve, "episode_returns": episode_returns, "alpha": agent.alpha}


def _curve_figure(runs: dict[str, dict], cfg: Config) -> Figure:
    figure = Figure(figsize=(5 * len(runs), 4), layout="constrained")
    axes = figure.subplots(1, len(runs), squeeze=False)[0]
    for axis, (env_id, outcome) in zip(axes, runs.items(), strict=True):
        steps, returns = zip(*outcome["curve"], strict=True)
        axis.plot(steps, returns, marker="o", label=f"SAC, seed {cfg.seed} (deterministic evaluation)")
        claim = next((c for c in CLAIMS if c.metric == f"{metric_name(env_id)}_return"), None)
        threshold = claim.threshold(cfg.scale) if claim else None
        if threshold is not None:
            axis.axhline(threshold, color="grey", linestyle=":", label=f"{cfg.scale} threshold")
        if claim is not None and claim.paper is not None:
            axis.axhline(claim.paper, color="black", linestyle="--", label="paper at 1M (Figure 1, approx.)")
        axis.set(xlabel="environment steps", ylabel="average return", title=env_id)
        axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    _check_config(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    metrics: dict[str, float] = {}
    details: dict = {}
    runs: dict[str, dict] = {}
    for env_id in cfg.env_ids:
        # A long (full) run checkpoints under the results folder, so a killed run resumes.
        folder = None
        if cfg.checkpoint_every:
            folder = checkpoint_folder("sac", {**dataclasses.asdict(cfg), "env_id": env_id})
        outcome = train(cfg, env_id, device, folder)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        runs[env_id] = outcome
        name = metric_name(env_id)
        metrics[f"{name}_return"] = outcome["final_return"]
        metrics[f"{name}_final_alpha"] = outcome["alpha"]
        recent = outcome["episode_returns"][-10:]
        if recent:
            metrics[f"{name}_train_return_last10"] = float(np.mean(recent))
        details[env_id] = {
            "curve": outcome["curve"],
            "episodes": len(outcome["episode_returns"]),
            "final_alpha": outcome["alpha"],
        }
    notes = [
        "Twin soft Q-functions with target critics and a learned temperature (target entropy -dim(A)); "
        + (
            "the original state-value-network variant (2018a Algorithm 1) was used."
            if cfg.value_network
            else ""
        ),
        "Evaluation: the deterministic policy tanh(mu(s)) on a separate, seeded environment.",
        "Time limits bootstrap (only 'terminated' ends the bootstrap); the papers' code made them terminal.",
    ]
    if not cfg.learn:
        notes.append("learn=False: no gradient step was taken (ablation: the untrained agent).")
    if cfg.scale == "quick":
        notes.append(
            f"quick: Pendulum-v1 (no paper number: the issue's target), {cfg.total_steps} steps, "
            f"{'x'.join(map(str, cfg.hidden))} networks, lr {cfg.learning_rate}, batch {cfg.batch_size}, "
            f"{cfg.seeds} seeds."
        )
    figures = {"learning_curves": _curve_figure(runs, cfg)}
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
