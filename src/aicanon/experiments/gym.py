"""OpenAI Gym (Brockman et al. 2016, arXiv 1606.01540): a common interface and comparable,
reproducible results, made concrete as a scoreboard of this package's agents.

The paper proposes no algorithm and reports no scores: it defines the environment interface
(``reset``/``step``, observation and action spaces), versioned environments, and a scoreboard
whose point is that results are comparable (the same environment version, the same evaluation)
and reproducible (it asks for code that reproduces the result). Gymnasium is the maintained
successor of the interface; every agent of :mod:`aicanon.rl` is written against it. The experiment:

1. For each run ``(agent, environment, steps, normalisation)`` of ``runs``: build the agent from
   :mod:`aicanon.rl` (seeded with ``cfg.seed``); train it for ``steps`` environment steps in
   ``curve_points`` equal chunks, evaluating after each chunk with the shared protocol
   (:func:`aicanon.rl.evaluation.evaluate_policy`: ``curve_episodes`` episodes, deterministic
   policy, reset seeds ``10000 + 1000 seed + i``): the learning curve.
2. The scoreboard entry: the trained agent's deterministic policy on ``eval_episodes`` episodes
   with reset seeds ``20000 + 1000 seed + i`` (recorded in the details), beside a uniformly random
   policy on the same episodes (``random_<env>_return``): ``<label>_<env>_return`` and the margin
   over random, ``<label>_<env>_margin``. Runs with normalisation (:mod:`aicanon.rl.wrappers`)
   are evaluated with the training statistics frozen.
3. Normalisation: PPO on ``normalization_env`` without and with observation and reward
   normalisation (stable-baselines3's ``VecNormalize`` conventions): ``normalization_gain``.
4. Reproducibility: the run named by ``rerun`` is trained and evaluated a second time from the
   same seed; ``rerun_max_abs_difference`` is the largest absolute difference between the
   two (every evaluation return of the curve and of the scoreboard, and every network parameter).

Quick (~20-30 s on one core): PPO and A2C on CartPole-v1 (15k steps each), SAC on Pendulum-v1
(3k steps, 2 x 64 networks, lr 1e-3: the SAC experiment's quick settings), PPO on
MountainCarContinuous-v0 with and without normalisation (5k steps each), the normalised PPO run
repeated, one seed (about 30 s of CPU on the shared two-core machine).
On MountainCarContinuous (observations: position in [−1.2, 0.6] and a velocity of at most 0.07;
reward 100 at the goal minus 0.1 a² per step) PPO without normalisation collapses to doing nothing
(return about 0, the goal never found) while with observations and rewards normalised it finds the
goal on every seed we tried (returns 97-98 on seeds 0-2 at 5k steps). Normalising the observations
alone did not reliably help our PPO (measured at 20k steps, seeds 0-1: on MountainCarContinuous it
found the goal and lost it again; on PointMass and Acrobot it did worse than no normalisation),
likely because with unscaled returns the value loss dominates the gradient-norm clip that the
policy and value networks share.

Full: every single-agent agent here on its environments: CartPole-v1, Acrobot-v1, LunarLander-v3
(PPO, A2C, DQN, REINFORCE, TRPO; 100k, 200k, 1M steps), Pendulum-v1 (SAC, TD3, DDPG; 20k),
HalfCheetah-v5 and Hopper-v5 (SAC, TD3, DDPG at 1M steps; PPO with normalisation at 1M, the PPO
paper's MuJoCo settings), and the normalisation comparison (none, observations, both) on
MountainCarContinuous-v0 at 50k steps; 5 seeds, 100 scoreboard episodes. MADDPG (multi-agent,
PettingZoo API) is not a Gym agent and is not on the scoreboard. Cost per seed (one core; no early
stopping): the discrete runs are 6.5M environment steps of small-MLP agents (1-2 h at 1-2.5k
steps/s; DQN's half a gradient step per environment step is the slowest); the off-policy MuJoCo
runs dominate: 6M environment and gradient steps at 100-150 steps/s (SAC's measured rate,
bench_sac), 11-17 h; PPO's 2M MuJoCo steps and the evaluations (up to 2M more environment steps)
about 1 h: roughly 14-20 CPU-hours per seed, 70-100 for five seeds (independent processes, one per
core; a GPU speeds up only the off-policy updates). TD3/DDPG/SAC start learning after 10k random
steps on both MuJoCo tasks (TD3's paper: 10k on HalfCheetah, 1k on Hopper).

Interruption (``checkpoint``, on at full scale): each finished run's score is kept under the
results folder (``_checkpoints/gym/<hash of the seed's config>``) until the seed is done, so a killed
seed reruns only the runs it had not finished (every run reseeds, so skipping finished ones changes
nothing else); the rerun check always trains again. Within a run nothing is kept: the longest (an
off-policy agent on a MuJoCo task) is 2-3 CPU-hours.

Departures: the Gym paper has no experiment of its own; the thresholds Gymnasium registers as
"solved" (``reward_threshold``: CartPole 475, MountainCarContinuous 90, …) are shown as the
reference line, the claims are margins over a random policy measured in the same run, and the
hyperparameters are each agent module's defaults (tuned for CartPole by the stable-baselines3 zoo,
not per environment; PPO's discount is 0.99 here, the zoo's CartPole value is 0.98).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed
from aicanon.core.checkpoint import load_or_compute
from aicanon.core.checks import check_choice, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.rl.buffers import ReplayBuffer
from aicanon.rl.dqn import DQN, DQNConfig
from aicanon.rl.envs import make_env
from aicanon.rl.evaluation import evaluate_policy
from aicanon.rl.policy_gradient import A2C, REINFORCE
from aicanon.rl.ppo import PPOConfig
from aicanon.rl.ppo_agent import PPOAgent, PPOAgentConfig
from aicanon.rl.sac import SAC, SACConfig
from aicanon.rl.td3 import TD3, TD3Config
from aicanon.rl.trpo import TRPO

ON_POLICY = ("ppo", "a2c", "reinforce", "trpo")
OFF_POLICY = ("sac", "td3", "ddpg")
AGENTS = (*ON_POLICY, "dqn", *OFF_POLICY)
NORMALIZATIONS = ("none", "obs", "obs+reward")
"""none; observations only; observations and rewards (VecNormalize's default)."""
MUJOCO = ("HalfCheetah-v5", "Hopper-v5")

Run = tuple[str, str, int, str]
"""(agent, environment id, environment steps, normalisation)."""


@dataclass
class Config(ExperimentConfig):
    runs: tuple[Run, ...] = tuple(
        [
            (agent, env_id, steps, "none")
            for env_id, steps in (
                ("CartPole-v1", 100_000),
                ("Acrobot-v1", 200_000),
                ("LunarLander-v3", 1_000_000),
            )
            for agent in ("ppo", "a2c", "dqn", "reinforce", "trpo")
        ]
        + [(agent, "Pendulum-v1", 20_000, "none") for agent in OFF_POLICY]
        + [(agent, env_id, 1_000_000, "none") for env_id in MUJOCO for agent in OFF_POLICY]
        + [("ppo", env_id, 1_000_000, "obs+reward") for env_id in MUJOCO]
    )
    """The scoreboard: (agent from ``AGENTS``, Gymnasium id, environment steps, normalisation)."""
    normalization_env: str | None = "MountainCarContinuous-v0"
    """Environment of the PPO normalisation comparison (None: skip it)."""
    normalization_steps: int = 50_000
    """Environment steps of each arm of the comparison."""
    normalization_arms: tuple[str, ...] = NORMALIZATIONS
    """Arms of the comparison (``none`` must be one; the gain is of ``obs+reward`` over it)."""
    rerun: tuple[str, str, str] | None = ("ppo", "CartPole-v1", "none")
    """(agent, environment, normalisation) of the run (of ``runs`` or the normalisation comparison)
    repeated from the same seed (None: no reproducibility check)."""
    curve_points: int = 10
    """Evaluations along each run's training (the learning curve)."""
    curve_episodes: int = 10
    """Episodes of each learning-curve evaluation."""
    eval_episodes: int = 100
    """Episodes of the scoreboard evaluation (and of the random policy)."""
    learn: bool = True
    """False: no agent learns (the initial policies are scored): the ablation that must fail."""
    checkpoint: bool = False
    """Keep each finished run's score under the results folder until the seed is done, so that a
    killed seed reruns only its unfinished runs (module docstring; full runs: on)."""

    @classmethod
    def quick(cls) -> Config:
        # ~20-30 s on one core: two agents on CartPole, SAC on Pendulum, the normalisation pair on
        # MountainCarContinuous and one rerun (module docstring); one seed.
        return cls(
            scale="quick",
            seeds=1,
            threads=1,
            runs=(
                ("ppo", "CartPole-v1", 15_000, "none"),
                ("a2c", "CartPole-v1", 15_000, "none"),
                ("sac", "Pendulum-v1", 3_000, "none"),
            ),
            normalization_steps=5_000,
            normalization_arms=("none", "obs+reward"),
            rerun=("ppo", "MountainCarContinuous-v0", "obs+reward"),
            curve_points=3,
            curve_episodes=5,
            eval_episodes=10,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=5, threads=1, checkpoint=True)


# The Gym paper reports no scores (Gymnasium's registered "solved" thresholds, reward_threshold, are
# drawn for reference). Quick thresholds, from our quick runs of seeds 0, 1, 2 (one seed each, 10
# scoreboard episodes): PPO's CartPole margins 136, 208, 127 -> 75; A2C's 377, 268, 478 -> 150;
# SAC's Pendulum margins 421, 868, 503 (3k steps is mid-curve: noisy) -> 300; the normalisation
# gain 100.0, 100.3, 99.1 -> 50. The untrained agents (learn=False) fail every margin claim and the
# gain (tests/experiments/test_gym.py). Full thresholds are our expectation at the full budgets
# (CartPole solved by PPO; SAC near -150 on Pendulum), not yet measured.
CLAIMS = [
    Claim(
        metric="ppo_cartpole_margin",
        description="PPO's CartPole-v1 return minus the random policy's on the same episodes",
        paper=None,
        source="Gym's scoreboard (no number in the paper; solved = 475, Gymnasium's reward_threshold)",
        quick=75.0,
        full=450.0,
    ),
    Claim(
        metric="a2c_cartpole_margin",
        description="A2C's CartPole-v1 return minus the random policy's on the same episodes",
        paper=None,
        source="Gym's scoreboard (no number in the paper; solved = 475, Gymnasium's reward_threshold)",
        quick=150.0,
        full=400.0,
    ),
    Claim(
        metric="sac_pendulum_margin",
        description="SAC's Pendulum-v1 return minus the random policy's on the same episodes",
        paper=None,
        source="Gym's scoreboard (no number in the paper; Pendulum has no reward_threshold)",
        quick=300.0,
        full=900.0,
    ),
    Claim(
        metric="normalization_gain",
        description="PPO on MountainCarContinuous-v0: return with observation+reward normalisation "
        "minus without (same seed, steps and settings)",
        paper=None,
        source="no number in the paper (solved = 90, Gymnasium's reward_threshold)",
        quick=50.0,
        full=50.0,
    ),
    Claim(
        metric="rerun_max_abs_difference",
        description="same seed, same run twice: largest absolute difference of any evaluation return "
        "or network parameter (reproducible results, the paper's point)",
        paper=None,
        source="Sections 1 and 3: versioned environments, writeups with code to reproduce (no number)",
        quick=0.0,
        full=0.0,
        higher_is_better=False,
    ),
]


def short_name(env_id: str) -> str:
    """``MountainCarContinuous-v0`` -> ``mountaincarcontinuous``: the metrics' environment name."""
    return env_id.split("/")[-1].split("-v")[0].lower()


def run_label(agent: str, normalization: str) -> str:
    return {"none": agent, "obs": f"{agent}_obsnorm", "obs+reward": f"{agent}_norm"}[normalization]


# --------------------------------------------------------------------------- agents behind one face
class Trainer:
    """One agent of :mod:`aicanon.rl` behind the scoreboard's interface: ``learn(steps)`` trains
    for that many more environment steps, ``policy`` maps one raw observation to an action
    (deterministic), ``parameters()`` lists the networks' tensors (for the rerun comparison)."""

    def __init__(self, agent: str, env_id: str, budget: int, normalization: str, agent_seed: int) -> None:
        self.agent, self.env_id, self.budget, self.steps = agent, env_id, budget, 0
        self.transform = None
        if agent in ON_POLICY:
            self._make_on_policy(agent, env_id, normalization, agent_seed)
        elif normalization != "none":
            raise ValueError(
                f"normalisation is implemented for the on-policy agents {ON_POLICY}, not {agent}"
            )
        elif agent == "dqn":
            # The zoo's CartPole settings with a 64 x 64 network (as the survey experiment).
            self.model = DQN(make_env(env_id), DQNConfig(hidden=(64, 64)), seed=agent_seed)
            self.policy, self.networks = self.model.act, [self.model.q_network]
        else:
            self._make_off_policy(agent, env_id, agent_seed)

    def _make_on_policy(self, agent: str, env_id: str, normalization: str, agent_seed: int) -> None:
        normalize = (
            None
            if normalization == "none"
            else {"observations": True, "rewards": normalization == "obs+reward", "gamma": 0.99}
        )
        if agent == "ppo":
            cfg = PPOAgentConfig(gamma=0.99)
            if env_id in MUJOCO:  # the PPO paper's MuJoCo settings (Table 3), one environment
                cfg = PPOAgentConfig(
                    num_envs=1,
                    n_steps=2048,
                    gamma=0.99,
                    gae_lambda=0.95,
                    update=PPOConfig(epochs=10, minibatch_size=64, lr=3e-4, entropy_coef=0.0),
                    anneal=False,
                )
            self.model: Any = PPOAgent(env_id, cfg, seed=agent_seed, normalize=normalize)
        else:
            agent_class = {"a2c": A2C, "reinforce": REINFORCE, "trpo": TRPO}[agent]
            self.model = agent_class(env_id, seed=agent_seed, normalize=normalize)
        if normalize is not None:
            self.transform = self.model.envs.observation_transform
        self.policy, self.networks = self.model.policy.act, [self.model.policy]

    def _make_off_policy(self, agent: str, env_id: str, agent_seed: int) -> None:
        self.env = make_env(env_id, rescale_actions=True)
        mujoco = env_id in MUJOCO
        # MuJoCo: the papers' networks and 10k warm-up steps; elsewhere the quick-sized settings of
        # the SAC and TD3 experiments (2 x 64, lr 1e-3).
        self.learning_starts = 10_000 if mujoco else 500
        if agent == "sac":
            sac_cfg = (
                SACConfig(buffer_size=self.budget)
                if mujoco
                else SACConfig(hidden=(64, 64), lr=1e-3, batch_size=128, buffer_size=self.budget)
            )
            self.model = SAC(self.env.observation_space, self.env.action_space, sac_cfg, seed=agent_seed)
            self.policy = lambda observation: self.model.act(observation, deterministic=True)
            self.networks = [self.model.actor, self.model.critic]
        else:
            settings: dict[str, Any] = {"learning_starts": self.learning_starts, "buffer_size": self.budget}
            if not mujoco:
                settings.update(hidden=(64, 64))
            td3_cfg = TD3Config.ddpg(**settings) if agent == "ddpg" else TD3Config(**settings)
            self.model = TD3(self.env.observation_space, self.env.action_space, td3_cfg, seed=agent_seed)
            self.buffer = ReplayBuffer.for_spaces(
                self.env.observation_space, self.env.action_space, self.budget
            )
            self.policy, self.networks = self.model.policy, [self.model.actor, self.model.critics]
        self.observation, _ = self.env.reset(seed=agent_seed)

    def learn(self, steps: int, update: bool = True) -> None:
        """``steps`` more environment steps (``update=False``: never learn, the untrained-agent
        ablation; an on-policy agent then does not even act)."""
        if self.agent in OFF_POLICY:
            self._learn_off_policy(steps, update)
            self.steps += steps
        elif not update:
            self.steps += steps  # the initial policy, evaluated at the same points
        else:
            if self.agent in ("ppo", "dqn"):
                self.model.learn(steps, total_steps=self.budget)  # annealing over the whole budget
            else:
                self.model.learn(steps)
            self.steps = self.model.steps  # whole rollouts: a few steps past the request

    def _learn_off_policy(self, steps: int, update: bool) -> None:
        """Act, store, and after the warm-up take one gradient step per environment step."""
        model, env = self.model, self.env
        for step in range(self.steps, self.steps + steps):
            if isinstance(model, SAC):
                warm_up = step < self.learning_starts
                action = model.random_action() if warm_up else model.act(self.observation)
            else:
                action = model.act(self.observation)  # TD3 draws its own warm-up actions
            next_observation, reward, terminated, truncated, _ = env.step(action)
            if not math.isfinite(float(reward)):
                raise ValueError(f"{self.env_id} returned a non-finite reward {reward}")
            if isinstance(model, SAC):
                model.observe(self.observation, action, reward, next_observation, terminated)
                if update and step + 1 >= self.learning_starts:
                    model.update()
            else:
                self.buffer.add(
                    observation=self.observation,
                    action=action,
                    reward=np.float32(reward),
                    next_observation=next_observation,
                    terminated=np.float32(terminated),
                )
                model.steps += 1
                batch_size = model.config.batch_size
                if update and model.steps > model.config.learning_starts and len(self.buffer) >= batch_size:
                    model.update(self.buffer.sample(batch_size, model.generator))
            self.observation = next_observation
            if terminated or truncated:
                self.observation, _ = env.reset()

    def evaluate(self, episodes: int, first_seed: int) -> Any:
        transform = self.transform() if self.transform is not None else None
        return evaluate_policy(
            self.policy,
            lambda: make_env(self.env_id, rescale_actions=self.agent in OFF_POLICY),
            episodes,
            seed=first_seed,
            observation_transform=transform,
        )

    def parameters(self) -> list[torch.Tensor]:
        return [p.detach().clone() for network in self.networks for p in network.parameters()]


def random_policy(env_id: str, action_seed: int):
    """A uniformly random policy over the environment's action space, seeded."""
    space = make_env(env_id).action_space
    space.seed(action_seed)
    return lambda observation: space.sample()


# --------------------------------------------------------------------------- the protocol
def train_and_score(run: Run, cfg: Config) -> dict[str, Any]:
    """Steps 1-2 of the module docstring for one run."""
    agent, env_id, steps, normalization = run
    started, cpu_started = time.perf_counter(), time.process_time()
    seed(cfg.seed)
    trainer = Trainer(agent, env_id, steps, normalization, cfg.seed)
    chunks = [steps // cfg.curve_points + (i < steps % cfg.curve_points) for i in range(cfg.curve_points)]
    curve: list[tuple[int, float]] = []
    curve_seed = 10_000 + 1000 * cfg.seed
    for chunk in chunks:
        trainer.learn(chunk, update=cfg.learn)
        curve.append((trainer.steps, trainer.evaluate(cfg.curve_episodes, curve_seed).mean))
    final = trainer.evaluate(cfg.eval_episodes, 20_000 + 1000 * cfg.seed)
    return {
        "agent": agent,
        "environment": env_id,
        "normalization": normalization,
        "steps": trainer.steps,
        "curve": curve,
        "curve_seeds": [curve_seed, curve_seed + cfg.curve_episodes - 1],
        "evaluation": final.to_dict(),
        "run": tuple(run),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "parameters": trainer.parameters(),
    }


def random_score(env_id: str, cfg: Config) -> dict[str, Any]:
    """The random policy on the scoreboard's episodes (same reset seeds)."""
    evaluation = evaluate_policy(
        random_policy(env_id, cfg.seed),
        lambda: make_env(env_id),
        cfg.eval_episodes,
        seed=20_000 + 1000 * cfg.seed,
    )
    return evaluation.to_dict()


def rerun_difference(first: dict[str, Any], second: dict[str, Any]) -> float:
    """Largest absolute difference between two runs' evaluation returns and parameters."""
    differences = [abs(a[1] - b[1]) for a, b in zip(first["curve"], second["curve"], strict=True)]
    differences += [
        abs(a - b)
        for a, b in zip(first["evaluation"]["returns"], second["evaluation"]["returns"], strict=True)
    ]
    differences += [
        float((a - b).abs().max()) for a, b in zip(first["parameters"], second["parameters"], strict=True)
    ]
    return max(differences)


def _entries(cfg: Config) -> list[Run]:
    """The scoreboard's runs and the normalisation comparison's (without repeats)."""
    entries = [tuple(entry) for entry in cfg.runs]
    if cfg.normalization_env is not None:
        entries += [
            ("ppo", cfg.normalization_env, cfg.normalization_steps, arm) for arm in cfg.normalization_arms
        ]
    return list(dict.fromkeys(entries))


def _check_config(cfg: Config) -> None:
    if not cfg.runs:
        raise ValueError("runs must name at least one (agent, environment, steps, normalisation), got ()")
    for index, entry in enumerate(cfg.runs):
        if not isinstance(entry, (tuple, list)) or len(entry) != 4:
            raise ValueError(
                f"runs[{index}] must be (agent, environment, steps, normalisation), got {entry!r}"
            )
        agent, env_id, steps, normalization = entry
        check_choice(f"runs[{index}] agent", agent, AGENTS)
        if env_id not in gymnasium.registry:
            raise ValueError(
                f"runs[{index}] environment {env_id!r} is not a registered Gymnasium environment"
            )
        check_int(f"runs[{index}] steps", steps)
        check_choice(f"runs[{index}] normalisation", normalization, NORMALIZATIONS)
    labels = [(run_label(a, n), short_name(e)) for a, e, _, n in cfg.runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"runs must not repeat an (agent, normalisation, environment), got {cfg.runs}")
    for name in ("curve_points", "curve_episodes", "eval_episodes", "normalization_steps"):
        check_int(name, getattr(cfg, name))
    if not isinstance(cfg.checkpoint, bool):
        raise TypeError(f"checkpoint must be a bool, got {cfg.checkpoint!r}")
    if cfg.normalization_env is not None:
        if cfg.normalization_env not in gymnasium.registry:
            raise ValueError(f"normalization_env {cfg.normalization_env!r} is not a registered environment")
        for arm in cfg.normalization_arms:
            check_choice("normalization_arms", arm, NORMALIZATIONS)
        if "none" not in cfg.normalization_arms or len(cfg.normalization_arms) < 2:
            raise ValueError(
                f"normalization_arms must hold 'none' and another arm, got {cfg.normalization_arms}"
            )
    if cfg.rerun is not None and tuple(cfg.rerun) not in [(a, e, n) for a, e, _, n in _entries(cfg)]:
        raise ValueError(
            f"rerun must be None or the (agent, environment, normalisation) of a run, got {cfg.rerun!r}"
        )


def _figure(scores: list[dict[str, Any]], randoms: dict[str, dict], cfg: Config) -> Figure:
    environments = list(dict.fromkeys(s["environment"] for s in scores))
    figure = Figure(figsize=(4.5 * len(environments), 3.8), layout="constrained")
    axes = figure.subplots(1, len(environments), squeeze=False)[0]
    for axis, env_id in zip(axes, environments, strict=True):
        for score in (s for s in scores if s["environment"] == env_id):
            steps, returns = zip(*score["curve"], strict=True)
            label = score["agent"] + (
                "" if score["normalization"] == "none" else f" ({score['normalization']})"
            )
            axis.plot(steps, returns, marker="o", label=label)
        axis.axhline(randoms[env_id]["mean"], color="grey", linestyle="--", label="random policy")
        threshold = gymnasium.spec(env_id).reward_threshold
        if threshold is not None:
            axis.axhline(threshold, color="black", linestyle=":", label=f"solved ({threshold:g})")
        axis.set(
            xlabel="environment steps",
            ylabel=f"mean return ({cfg.curve_episodes} deterministic episodes)",
            title=env_id,
        )
        axis.legend(fontsize=7)
    return figure


def run(cfg: Config) -> Result:
    """The scoreboard, the normalisation comparison and the rerun (module docstring)."""
    _check_config(cfg)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only add synchronisation (issue 14)
    try:
        entries = _entries(cfg)
        folder = checkpoint_folder("gym", cfg.to_dict()) if cfg.checkpoint else None
        scores = [
            load_or_compute(
                folder and folder / "-".join(str(part).replace("/", "_") for part in entry),
                lambda entry=entry: train_and_score(entry, cfg),
                config={**cfg.to_dict(), "run": list(entry)},
            )
            for entry in entries
        ]
        randoms = {env_id: random_score(env_id, cfg) for env_id in dict.fromkeys(e[1] for e in entries)}
        rerun = None
        if cfg.rerun is not None:
            first = next(
                s for s in scores if (s["agent"], s["environment"], s["normalization"]) == tuple(cfg.rerun)
            )
            again = train_and_score(first["run"], cfg)  # trained again, never read from the folder
            rerun = {
                "run": list(first["run"]),
                "max_abs_difference": rerun_difference(first, again),
            }
    finally:
        torch.set_num_threads(previous_threads)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)

    metrics: dict[str, float] = {}
    table = []
    for score in scores:
        env_name = short_name(score["environment"])
        key = f"{run_label(score['agent'], score['normalization'])}_{env_name}"
        random_mean = randoms[score["environment"]]["mean"]
        metrics[f"{key}_return"] = score["evaluation"]["mean"]
        metrics[f"{key}_margin"] = score["evaluation"]["mean"] - random_mean
        table.append(
            {
                "environment": score["environment"],
                "agent": score["agent"],
                "normalization": score["normalization"],
                "steps": score["steps"],
                "return": score["evaluation"]["mean"],
                "return_std": score["evaluation"]["std"],
                "random_return": random_mean,
                "solved_threshold": gymnasium.spec(score["environment"]).reward_threshold,
                "episodes": len(score["evaluation"]["returns"]),
                "evaluation_seeds": score["evaluation"]["seeds"],
                "seconds": round(score["seconds"], 2),
                "cpu_seconds": round(score["cpu_seconds"], 2),
            }
        )
    for env_id, random in randoms.items():
        metrics[f"random_{short_name(env_id)}_return"] = random["mean"]
    if cfg.normalization_env is not None:
        # The gain of observation+reward normalisation over none (of observations alone when only
        # that arm was run).
        name = short_name(cfg.normalization_env)
        arm = "obs+reward" if "obs+reward" in cfg.normalization_arms else "obs"
        gain = metrics[f"{run_label('ppo', arm)}_{name}_return"] - metrics[f"ppo_{name}_return"]
        metrics["normalization_gain"] = gain
    if rerun is not None:
        metrics["rerun_max_abs_difference"] = rerun["max_abs_difference"]

    details = {
        "scoreboard": table,
        "random": randoms,
        "curves": {f"{s['agent']}|{s['normalization']}|{s['environment']}": s["curve"] for s in scores},
        "protocol": {
            "policy": "deterministic (greedy / distribution mean / tanh(mean))",
            "scoreboard_episodes": cfg.eval_episodes,
            "scoreboard_seeds_from": 20_000 + 1000 * cfg.seed,
            "curve_episodes": cfg.curve_episodes,
            "curve_seeds_from": 10_000 + 1000 * cfg.seed,
            "agent_seed": cfg.seed,
        },
        "rerun": rerun,
    }
    notes = [
        "The Gym paper reports no scores: claims are margins over a uniformly random policy on the same "
        "evaluation episodes; Gymnasium's reward_threshold is drawn for reference.",
        "Hyperparameters are each agent module's defaults (stable-baselines3 zoo CartPole values for "
        "PPO, with gamma 0.99, and DQN; the papers' for A2C/TRPO/SAC/TD3), not tuned per environment; "
        "quick SAC uses 2 x 64 networks and lr 1e-3.",
        "Normalisation: observations and rewards as stable-baselines3's VecNormalize (clip 10, "
        "epsilon 1e-8, gamma 0.99), frozen at evaluation. Observations alone did not reliably help our PPO "
        "(20k steps, seeds 0-1: MountainCarContinuous found the goal and lost it; PointMass and Acrobot "
        "did worse than without).",
    ]
    if not cfg.learn:
        notes.append("learn=False: no agent was trained (ablation: the initial policies).")
    if cfg.scale == "quick":
        notes.append(
            f"quick: {len(cfg.runs)} scoreboard runs, one seed, {cfg.eval_episodes} scoreboard episodes; "
            "the full run covers every agent and environment with 5 seeds and 100 episodes."
        )
    return Result(
        metrics=metrics,
        figures={"learning_curves": _figure(scores, randoms, cfg)},
        details=details,
        notes=notes,
    )
