"""Generative Adversarial Imitation Learning (Ho & Ermon, NeurIPS 2016): GAIL reaches the expert's
performance from a few expert trajectories, where behavioural cloning (BC) needs many (Figure 1).

The experiment, for one seed:

1. **Expert.** Train our own agent with the environment's reward: quick, PPO
   (:class:`aicanon.rl.ppo_agent.PPOAgent`) on CartPole-v1, in chunks of ``expert_check_every``
   steps until all ``expert_check_episodes`` check episodes reach ``expert_solved`` (or
   ``expert_steps`` are spent); full, SAC (:class:`aicanon.rl.sac.SAC`) on Hopper-v5 for
   ``expert_steps`` steps. Or load the expert's demonstrations from ``demonstrations_path``.
2. **Demonstrations.** Roll the expert's deterministic policy out for ``max(trajectories)``
   episodes (:func:`aicanon.rl.demonstrations.generate_demonstrations`, seeds 500+); their mean
   return is ``expert_return``. With ``demonstrations_path`` set they are saved there (the
   documented .npz format) for later runs.
3. For each dataset size n in ``trajectories`` (the first n episodes):
   **GAIL** (:class:`aicanon.rl.gail.GAIL`, Algorithm 1: TRPO policy steps on the reward −log D)
   for ``gail_steps`` environment steps, and **BC** (:func:`aicanon.rl.behavior_cloning.
   train_behavior_cloning`, the same policy network, 70/30 split, early stopping). Each is
   evaluated by its deterministic policy on ``eval_episodes`` episodes (seeds 20000+):
   ``gail_return_<n>``, ``bc_return_<n>``, and as a fraction of the expert's return
   ``gail_fraction_<n>`` (the issue's measure) and on the paper's scale
   ``gail_scaled_<n>`` = (return − random) / (expert − random) (Figure 1: expert 1, random 0).
4. **Random policy**: uniform actions on the same evaluation episodes (``random_return``).

Ablations (``ablation``): ``"zero_reward"`` replaces the discriminator's reward by 0, so the policy
step has nothing to learn from: it must fail the quick claim, and does (tested).
``"frozen_discriminator"`` keeps the discriminator at its initial weights. **On CartPole it passes
the quick claim too**: the paper's reward −log D is positive everywhere, and a frozen discriminator
(D ≈ 0.4-0.5, reward ≈ 0.7-0.9 per step) is a survival bonus, which on CartPole is the task itself
(seed 0: 0.99 of the expert's return at 50k steps). So on CartPole the return claim shows that
GAIL's machinery reaches the expert's level from 4 trajectories, not that the discriminator's
imitation signal is what gets it there; that needs a task where surviving is not the goal
(Hopper's forward progress in the full run; Kostrikov et al. 2019 discuss this bias).

Quick (CartPole-v1, 4 trajectories, 1 seed): about 18-25 s alone on two cores (expert 10-20k steps,
GAIL 50k steps, BC a few hundred epochs of 1400 pairs). Settings: Algorithm 1 with 5 Adam steps of
the discriminator per iteration (learning rate 1e-3; the paper takes one step), TRPO with max KL
0.02 (the paper: 0.01) on 8 x 128 steps per iteration (the paper's classic-control batch was
larger: 5000 pairs, unverified), 64-64 tanh networks (the paper: 100-100). The larger steps fit the
CPU budget: with one discriminator step at 3e-4 and max KL 0.01, seeds 1 and 2 were still at
0.3-0.45 of the expert at 40k steps. GAIL's return oscillates between iterations (the training curve),
so the final policy's evaluation varies by seed: 1.0, 0.97, 0.999 on seeds 0, 1, 2.

Full (Hopper-v5, 4/11/18/25 trajectories as in Figure 1, 3 seeds): SAC expert 1M steps (about 3-5
CPU-hours per seed at ~60-90 steps/s with updates; minutes-hours on a GPU), then per dataset size
GAIL for 5M steps with 50 000 pairs per iteration (100 TRPO iterations; at ~3-5k steps/s on one core
about 20-30 CPU-minutes each, 2 h for the four sizes) and BC (minutes): about 6-8 CPU-hours per
seed. ``checkpoint_every`` (iterations) checkpoints GAIL under the results folder; a killed run
resumes there.

Departures from the paper's protocol: our experts are our own PPO/SAC agents (the paper's were
TRPO policies); the paper's CartPole was Gym's v0 (200 steps, as we recall), ours v1 (500 steps);
the paper evaluated over 50 episodes (as we recall; unverified), we use the deterministic policy
over ``eval_episodes``; γ = 0.995 and λ = 0.97 as the paper's TRPO (unverified).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, track
from aicanon.core.checkpoint import load_checkpoint, save_checkpoint
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.rl.behavior_cloning import BCConfig, train_behavior_cloning
from aicanon.rl.demonstrations import (
    Demonstrations,
    generate_demonstrations,
    load_demonstrations,
    save_demonstrations,
)
from aicanon.rl.envs import make_env
from aicanon.rl.evaluation import evaluate_policy
from aicanon.rl.gail import GAIL, GAILConfig
from aicanon.rl.networks import ActorCritic
from aicanon.rl.ppo_agent import PPOAgent
from aicanon.rl.sac import SAC, SACConfig

ABLATIONS = ("none", "zero_reward", "frozen_discriminator")
EXPERTS = ("ppo", "sac")


@dataclass
class Config(ExperimentConfig):
    env_id: str = "Hopper-v5"
    """The Gymnasium environment (Figure 1: classic control and MuJoCo)."""
    expert: str = "sac"
    """Our agent that becomes the expert: ``"ppo"`` or ``"sac"``."""
    expert_steps: int = 1_000_000
    """Environment steps the expert may train."""
    expert_check_every: int = 0
    """Steps between checks of the expert's return (0: no early stop)."""
    expert_check_episodes: int = 5
    expert_solved: float = math.inf
    """Stop training the expert once every check episode reaches this return."""
    demonstrations_path: str = ""
    """A demonstrations file (.npz) to load the expert's trajectories from, or to save them to when
    it does not exist yet; empty: generate them in the run, save nothing."""
    trajectories: tuple[int, ...] = (4, 11, 18, 25)
    """Dataset sizes (expert episodes) GAIL and BC learn from (Figure 1's Hopper sizes)."""
    gail_steps: int = 5_000_000
    """Environment steps of GAIL per dataset size."""
    num_envs: int = 8
    n_steps: int = 6250
    """Steps per environment per iteration (8 x 6250 = 50 000 pairs: the paper's MuJoCo batch,
    unverified)."""
    hidden: tuple[int, ...] = (100, 100)
    """Policy, value and discriminator hidden layers (the paper: 100-100 tanh)."""
    gamma: float = 0.995
    gae_lambda: float = 0.97
    max_kl: float = 0.01
    discriminator_lr: float = 1e-3
    discriminator_steps: int = 1
    entropy_coef: float = 0.0
    """λ, the causal-entropy weight."""
    reward_form: str = "neg_log_d"
    """The paper's −log D (:func:`aicanon.rl.gail.gail_reward`)."""
    policy_step: str = "trpo"
    bc_max_epochs: int = 500
    bc_patience: int = 20
    eval_episodes: int = 50
    """Evaluation episodes of every policy (the paper: 50)."""
    ablation: str = "none"
    """``"none"`` or ``"frozen_discriminator"`` (module docstring)."""
    checkpoint_every: int = 0
    """GAIL iterations between checkpoints of its whole state (0: none; full runs: 10)."""
    trajectory_seed: int = 500
    """Reset seed of the first expert episode (episode i: + i)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(
            scale="quick",
            seeds=1,
            threads=1,
            env_id="CartPole-v1",
            expert="ppo",
            expert_steps=100_000,
            expert_check_every=10_000,
            expert_solved=475.0,
            trajectories=(4,),
            gail_steps=50_000,
            n_steps=128,
            max_kl=0.02,
            discriminator_steps=5,
            hidden=(64, 64),
            eval_episodes=10,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=3, threads=1, checkpoint_every=10)


# Claims. The paper plots (Figure 1) performance scaled so that the expert is 1 and a random policy
# 0; GAIL is at about 1 for every dataset size on CartPole and Hopper (read off the plot; the
# appendix table's exact numbers could not be retrieved here: unverified). The quick target
# is GAIL >= 90 % of the expert's return with 4 trajectories; full, the same on Hopper with 4.
# Quick runs, seeds 0, 1, 2: gail_fraction_4 = 1.0, 0.97, 0.999 (BC 0.986, 1.0, 1.0; random 0.05-0.07).
# The zero-reward ablation fails; a frozen discriminator passes on CartPole (module docstring).
# With survival-neutral rewards GAIL does not imitate within the quick budget (lead's check, seed 0):
# reward_form="logit" 0.019, "log_one_minus_d" 0.019 (the policy learns to end episodes early).
# BC is reported, not claimed: on CartPole with 4 whole 500-step episodes (2000 pairs) BC is as good
# as the expert in our runs; the paper's gap between GAIL and BC is on the MuJoCo tasks (full run).
CLAIMS = [
    Claim(
        metric="gail_fraction_4",
        description="GAIL's return with 4 expert trajectories as a fraction of the expert's return "
        "(CartPole: the paper's reward -log D > 0 also pays for survival; a frozen discriminator passes "
        "too, so at quick scale this is not evidence of imitation: a stated gap)",
        paper=1.0,
        source="Figure 1 (CartPole, Hopper: GAIL at the expert's level, about 1 on the scaled axis; read off "
        "the plot, unverified); the issue's target 0.9",
        quick=0.9,
        full=0.9,
    ),
    Claim(
        metric="bc_fraction_4",
        description="behavioural cloning's return with the same 4 trajectories as a fraction of the expert's",
        paper=None,
        source="Figure 1 (reported only: BC needs more data on the MuJoCo tasks)",
    ),
]


def _check_config(cfg: Config) -> None:
    if not isinstance(cfg.env_id, str) or not cfg.env_id:
        raise ValueError(f"env_id must name a Gymnasium environment, got {cfg.env_id!r}")
    check_choice("expert", cfg.expert, EXPERTS)
    check_choice("ablation", cfg.ablation, ABLATIONS)
    check_int("expert_steps", cfg.expert_steps)
    check_int("expert_check_every", cfg.expert_check_every, 0)
    check_int("expert_check_episodes", cfg.expert_check_episodes)
    if not cfg.trajectories or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in cfg.trajectories
    ):
        raise ValueError(f"trajectories must name at least one dataset size (ints), got {cfg.trajectories!r}")
    for n in cfg.trajectories:
        check_int("trajectories[...]", n)
    for name in ("gail_steps", "num_envs", "n_steps", "discriminator_steps", "bc_max_epochs", "bc_patience"):
        check_int(name, getattr(cfg, name))
    check_int("eval_episodes", cfg.eval_episodes)
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    check_float("discriminator_lr", cfg.discriminator_lr, 0.0, min_inclusive=False, finite=True)
    check_float("entropy_coef", cfg.entropy_coef, 0.0, finite=True)


# ---------------------------------------------------------------------------------------- expert
def _evaluate(policy: Any, cfg: Config, episodes: int, seed_: int) -> list[float]:
    return evaluate_policy(policy, lambda: make_env(cfg.env_id), episodes, seed=seed_).returns


def train_ppo_expert(cfg: Config) -> tuple[Any, dict[str, Any]]:
    agent = PPOAgent(cfg.env_id, seed=cfg.seed)
    curve = []
    chunk = cfg.expert_check_every or cfg.expert_steps
    while agent.steps < cfg.expert_steps:
        agent.learn(min(chunk, cfg.expert_steps - agent.steps), total_steps=cfg.expert_steps)
        if cfg.expert_check_every:
            returns = _evaluate(agent.policy.act, cfg, cfg.expert_check_episodes, 10_000)
            curve.append((agent.steps, float(np.mean(returns))))
            if min(returns) >= cfg.expert_solved:
                break
    return agent.policy.act, {"steps": agent.steps, "curve": curve}


def train_sac_expert(cfg: Config) -> tuple[Any, dict[str, Any]]:
    env = make_env(cfg.env_id)
    agent = SAC(env.observation_space, env.action_space, SACConfig(), seed=cfg.seed)
    observation, _ = env.reset(seed=cfg.seed)
    curve, learning_starts = [], 10_000
    for step in track(range(cfg.expert_steps), f"SAC expert {cfg.env_id}", total=cfg.expert_steps):
        action = agent.random_action() if step < learning_starts else agent.act(observation)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        agent.observe(observation, action, reward, next_observation, terminated)
        observation = next_observation
        if step + 1 >= learning_starts and len(agent.buffer) >= agent.cfg.batch_size:
            agent.update()
        if terminated or truncated:
            observation, _ = env.reset()
        if cfg.expert_check_every and (step + 1) % cfg.expert_check_every == 0:
            returns = _evaluate(
                lambda o: agent.act(o, deterministic=True), cfg, cfg.expert_check_episodes, 10_000
            )
            curve.append((step + 1, float(np.mean(returns))))
            if min(returns) >= cfg.expert_solved:
                break
    env.close()
    return (lambda o: agent.act(o, deterministic=True)), {"steps": step + 1, "curve": curve}


def expert_demonstrations(cfg: Config) -> tuple[Demonstrations, dict[str, Any]]:
    """Steps 1-2 of the module docstring."""
    path = Path(cfg.demonstrations_path) if cfg.demonstrations_path else None
    needed = max(cfg.trajectories)
    if path is not None and path.exists():
        demonstrations = load_demonstrations(path, env_id=cfg.env_id)
        if demonstrations.num_episodes < needed:
            raise ValueError(
                f"{path} holds {demonstrations.num_episodes} episodes, trajectories needs {needed}"
            )
        return demonstrations, {"loaded_from": str(path)}
    policy, info = (train_ppo_expert if cfg.expert == "ppo" else train_sac_expert)(cfg)
    demonstrations = generate_demonstrations(
        policy,
        cfg.env_id,
        needed,
        seed=cfg.trajectory_seed,
        deterministic=True,
        source=f"aicanon {cfg.expert} expert, seed {cfg.seed}, {info['steps']} steps",
    )
    if path is not None:
        save_demonstrations(path, demonstrations)
    return demonstrations, info


# ------------------------------------------------------------------------------------ imitation
def gail_config(cfg: Config) -> GAILConfig:
    return GAILConfig(
        num_envs=cfg.num_envs,
        n_steps=cfg.n_steps,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        hidden=tuple(cfg.hidden),
        discriminator_hidden=tuple(cfg.hidden),
        policy_step=cfg.policy_step,
        max_kl=cfg.max_kl,
        entropy_coef=cfg.entropy_coef,
        reward_form=cfg.reward_form,
        discriminator_lr=cfg.discriminator_lr,
        discriminator_steps=cfg.discriminator_steps,
        freeze_discriminator=cfg.ablation == "frozen_discriminator",
        discriminator_reward=cfg.ablation != "zero_reward",
    )


def train_gail(cfg: Config, demonstrations: Demonstrations, n: int) -> tuple[GAIL, list[dict[str, float]]]:
    """GAIL on the first ``n`` trajectories, checkpointed every ``checkpoint_every`` iterations."""
    gail = GAIL(cfg.env_id, demonstrations, gail_config(cfg), seed=cfg.seed)
    folder, record = None, {**cfg.to_dict(), "trajectories_used": n}
    if cfg.checkpoint_every:
        folder = checkpoint_folder("gail", record)
        state = load_checkpoint(folder, config=record)
        if state is not None:
            gail.load_state_dict(state)
    iterations = math.ceil(cfg.gail_steps / (cfg.num_envs * cfg.n_steps))
    for _ in track(
        range(gail.iterations, iterations), f"GAIL {cfg.env_id} n={n}", total=iterations - gail.iterations
    ):
        gail.iterate()
        if folder is not None and gail.iterations % cfg.checkpoint_every == 0:
            save_checkpoint(folder, gail.state_dict(), config=record)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    gail.envs.close()
    return gail, gail.history


def train_bc(cfg: Config, demonstrations: Demonstrations) -> tuple[ActorCritic, dict[str, Any]]:
    env = make_env(cfg.env_id)
    torch.manual_seed(cfg.seed)
    policy = ActorCritic.for_spaces(env.observation_space, env.action_space, hidden=tuple(cfg.hidden))
    env.close()
    observations, actions = demonstrations.tensors()
    info = train_behavior_cloning(
        policy,
        observations,
        actions,
        BCConfig(max_epochs=cfg.bc_max_epochs, patience=cfg.bc_patience),
        torch.Generator().manual_seed(cfg.seed),
    )
    return policy, info


def _figure(curves: dict[int, list[dict[str, float]]], metrics: dict[str, float], cfg: Config) -> Figure:
    figure = Figure(figsize=(11, 4), layout="constrained")
    left, right = figure.subplots(1, 2)
    for n, history in curves.items():
        steps = [h["steps"] for h in history]
        left.plot(
            steps, [h["env_return"] for h in history], label=f"GAIL, {n} trajectories (training episodes)"
        )
    left.axhline(metrics["expert_return"], color="black", linestyle="--", label="expert")
    left.axhline(metrics["random_return"], color="grey", linestyle=":", label="random")
    left.set(xlabel="environment steps", ylabel="environment return", title=f"GAIL on {cfg.env_id}")
    left.legend(fontsize="small")
    sizes = list(cfg.trajectories)
    right.plot(sizes, [metrics[f"gail_scaled_{n}"] for n in sizes], marker="o", label="GAIL")
    right.plot(sizes, [metrics[f"bc_scaled_{n}"] for n in sizes], marker="s", label="behavioural cloning")
    right.axhline(1.0, color="black", linestyle="--", label="expert")
    right.axhline(0.0, color="grey", linestyle=":", label="random")
    right.set(
        xlabel="expert trajectories", ylabel="performance (scaled: expert 1, random 0)", title="Figure 1"
    )
    right.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    _check_config(cfg)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest (issue 14)
    started = time.perf_counter()
    try:
        seed(cfg.seed)
        demonstrations, expert_info = expert_demonstrations(cfg)
        expert_return = float(demonstrations.metadata["expert_return"])
        env = make_env(cfg.env_id)
        env.action_space.seed(cfg.seed)
        random_return = float(
            np.mean(_evaluate(lambda o: env.action_space.sample(), cfg, cfg.eval_episodes, 20_000))
        )
        metrics: dict[str, float] = {"expert_return": expert_return, "random_return": random_return}
        curves, details = {}, {"expert": expert_info, "bc": {}, "demonstrations": demonstrations.metadata}

        def record(name: str, n: int, returns: list[float]) -> None:
            value = float(np.mean(returns))
            metrics[f"{name}_return_{n}"] = value
            metrics[f"{name}_fraction_{n}"] = value / expert_return if expert_return else math.nan
            spread = expert_return - random_return
            metrics[f"{name}_scaled_{n}"] = (value - random_return) / spread if spread else math.nan

        for n in cfg.trajectories:
            subset = demonstrations.subset(n)
            seed(cfg.seed)
            gail, history = train_gail(cfg, subset, n)
            record("gail", n, _evaluate(gail.act, cfg, cfg.eval_episodes, 20_000))
            curves[n] = history
            bc_policy, bc_info = train_bc(cfg, subset)
            record("bc", n, _evaluate(bc_policy.act, cfg, cfg.eval_episodes, 20_000))
            details["bc"][str(n)] = {
                "best_epoch": bc_info["best_epoch"],
                "epochs": len(bc_info["train_loss"]),
            }
        metrics["seconds"] = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous_threads)
    details["gail_curves"] = {
        str(n): [
            {k: h[k] for k in ("steps", "env_return", "d_policy", "d_expert", "gail_reward")} for h in history
        ]
        for n, history in curves.items()
    }
    notes = [
        f"Expert: our {cfg.expert.upper()} agent trained in the run (the paper's experts were TRPO "
        f"policies); its {max(cfg.trajectories)} deterministic demonstration episodes average "
        f"{expert_return:.1f}.",
        "GAIL never sees the environment's reward; its training curve shows the environment return "
        "for reference.",
        "Paper numbers are read off Figure 1 (scaled performance about 1 for GAIL): unverified.",
    ]
    notes.append(
        "The paper's reward -log D is positive everywhere: on CartPole it is also a survival bonus, and a "
        "frozen discriminator reaches the expert's return too (module docstring)."
    )
    if cfg.ablation != "none":
        what = {
            "zero_reward": "the policy's reward is 0",
            "frozen_discriminator": "the discriminator is never trained",
        }
        notes.append(f"Ablation {cfg.ablation}: {what[cfg.ablation]}.")
    return Result(
        metrics=metrics, figures={"gail": _figure(curves, metrics, cfg)}, details=details, notes=notes
    )
