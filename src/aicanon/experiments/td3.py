"""TD3 against DDPG: value over-estimation (Figures 1-2) and returns (Tables 1-2) (Fujimoto, van Hoof &
Meger, ICML 2018).

The paper's two points, and how we measure them:

1. **DDPG over-estimates, clipped double Q does not** (Section 4, Figure 1, Figure 2). The paper
   averages the critic's estimate Q(s, π(s)) over states sampled from the replay buffer and compares
   it with the true value, the discounted return of rolling the current policy out from those
   states. We do exactly that on Pendulum-v1, whose state can be set (θ = atan2(sin θ, cos θ), θ̇ from
   the observation): at every ``bias_every`` steps, ``bias_states`` states are drawn from the buffer,
   the policy is rolled out from each for ``mc_horizon`` steps (γ^horizon < 0.01; the critic values
   an endless episode, as time-limit transitions bootstrap), and the bias is the mean of
   Q(s, π(s)) − Σ γ^t r_t. Pendulum and the policy are deterministic, so one rollout per state is
   the exact return (the paper averaged 1000 rollouts of stochastic MuJoCo starts). The rollouts
   run the Pendulum dynamics batched in NumPy (:func:`pendulum_step`, checked in the tests against
   Gymnasium's ``Pendulum-v1`` step by step). ``<name>_value_bias`` is the bias averaged over the
   measurements of a run (Figure 1 plots it over time), ``<name>_final_value_bias`` the last one.
   As in Figure 1, the comparison is DDPG ("Our DDPG": TD3's networks and hyper-parameters without
   its three changes) against CDQ (the same DDPG with clipped double Q-learning only), same seed;
   the full config adds TD3.
   Known gap: at quick scale the measured bias is dominated by the zero-initialised critics lagging
   the negative true values at the pace τ allows, alike for DDPG and CDQ, so the quick bias claims
   (kept at the issue's target) are not met; see CLAIMS.
2. **TD3 learns** (Table 1: max average return over 10 trials of 10⁶ steps; Table 2: ablations). At
   quick scale TD3 must reach a mean return of −250 on Pendulum-v1 (10 evaluation episodes, no
   exploration noise; a random policy scores about −1200, a swung-up pendulum about −150) within
   ``steps`` environment steps. The full config runs Table 1's seven MuJoCo tasks and Table 2's
   ablation rows at the paper's settings.

Quick scale: 64-64 networks (the paper's 400-300 at full), bias runs of 4000 steps (DDPG, CDQ), TD3
for 7000 steps, one torch thread, one seed (~35-40 s alone on one core).

Full scale cost: Table 1 is 7 tasks × 10 seeds × 10⁶ steps per algorithm; an
update of the 400-300 networks takes about 1.5 ms on one CPU thread and ~1 ms on a GPU (latency-bound
at batch 100), so one 10⁶-step run is ~0.5 h on a GPU with its CPU step loop, ~70 run-hours for TD3
over Table 1 and ~200 for Table 2's nine rows on the four tasks (parallel runs: one per CPU core).
The full run therefore checkpoints (``checkpoint_every``, full: every 50,000 steps, under
``<results>/_checkpoints/td3``): each training saves the agent, its replay buffer, the environment's
RNG and the measurements so far at the first episode end after every ``checkpoint_every`` steps, and
each finished run (one variant on one task) is kept whole; a killed seed reruns only the unfinished
run, from its last checkpoint, and ends with the uninterrupted seed's metrics (the runs are independent:
each agent is seeded by itself). The checkpoints are removed when the seed is done; a resumed run's
``steps_per_second`` counts the steps it trained after resuming only.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, track
from aicanon.core.checkpoint import load_or_compute
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.rl.envs import make_env
from aicanon.rl.evaluation import evaluate_policy
from aicanon.rl.td3 import TD3, TD3Config, train_off_policy

# Table 2's rows that this code runs: the name, then (twin_critics, policy_delay, target_noise).
# AHE is "Our DDPG": the architecture, hyper-parameters and exploration of TD3 with none of its changes.
# DQ-AC and DDQN-AC (Table 2's last two rows: actor-critic Double Q-learning with two actors, Double
# DQN's target) are not implemented.
VARIANTS: dict[str, tuple[bool, int, float]] = {
    "td3": (True, 2, 0.2),
    "ddpg": (False, 1, 0.0),  # = AHE
    "ahe_dp": (False, 2, 0.0),
    "ahe_tps": (False, 1, 0.2),
    "ahe_cdq": (True, 1, 0.0),
    "td3_minus_dp": (True, 1, 0.2),
    "td3_minus_tps": (True, 2, 0.0),
    "td3_minus_cdq": (False, 2, 0.2),
}

# Metric names of the bias runs: Figure 1 plots DDPG and CDQ (DDPG with clipped double Q-learning).
BIAS_NAMES = {
    variant: {"ddpg": "ddpg", "ahe_cdq": "cdq", "td3": "td3"}.get(variant, variant) for variant in VARIANTS
}

# Table 1, "Max Average Return over 10 trials of 1 million time steps" (TD3 column, and Our DDPG).
TABLE1_TD3 = {
    "HalfCheetah": 9636.95,
    "Hopper": 3564.07,
    "Walker2d": 4682.82,
    "Ant": 4372.44,
    "Reacher": -3.60,
    "InvertedPendulum": 1000.00,
    "InvertedDoublePendulum": 9337.47,
}
TABLE1_OUR_DDPG = {
    "HalfCheetah": 8577.29,
    "Hopper": 1860.02,
    "Walker2d": 3098.11,
    "Ant": 888.77,
    "Reacher": -4.01,
    "InvertedPendulum": 1000.00,
    "InvertedDoublePendulum": 8369.95,
}


@dataclass
class Config(ExperimentConfig):
    envs: tuple[str, ...] = ("Pendulum-v1",)
    """Gymnasium tasks (actions rescaled to [-1, 1]); the value-bias measurement runs on Pendulum-v1 only."""
    variants: tuple[str, ...] = ("td3",)
    """Agents trained on every task of ``envs`` for returns (keys of VARIANTS: TD3, DDPG = AHE, and
    Table 2's ablation rows)."""
    steps: int = 7000
    """Environment steps per run of ``variants`` (the paper: 10⁶)."""
    bias_variants: tuple[str, ...] = ("ddpg", "ahe_cdq")
    """Agents whose value bias is measured on Pendulum-v1 (Figure 1: DDPG against clipped double Q
    (CDQ) added to it, all else equal)."""
    bias_steps: int = 5000
    """Environment steps of each value-bias run."""
    bias_gamma: float = 0.99
    """Discount γ of the value-bias runs."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of actor and critics (the paper: 400, 300)."""
    learning_starts: int = 1000
    """Uniformly random steps before learning (the paper: 1000; 10000 on HalfCheetah and Ant)."""
    learning_starts_long: int = 10000
    """learning_starts on HalfCheetah and Ant (Section 6.1)."""
    gamma: float = 0.99
    """Discount γ."""
    batch_size: int = 100
    """Mini-batch size (100)."""
    learning_rate: float = 1e-3
    """Adam learning rate of actor and critics (10⁻³)."""
    eval_every: int = 1000
    """Steps between evaluations (the paper: 5000)."""
    eval_episodes: int = 10
    """Episodes per evaluation, without exploration noise (10)."""
    bias_every: int = 1000
    """Steps between value-bias measurements (Pendulum only)."""
    bias_states: int = 100
    """Replay states per value-bias measurement (the paper: 10000)."""
    mc_horizon: int = 500
    """Steps of each Monte-Carlo rollout (γ^500 = 0.007 at γ = 0.99)."""
    reward_offset: float = 0.0
    """Added to every training reward (evaluation returns stay the task's own)."""
    checkpoint_every: int = 0
    """Steps between checkpoints of each training under the results folder (0: none); a killed run
    resumes from the newest (module docstring)."""

    @classmethod
    def quick(cls) -> Config:
        # One seed: three runs (two bias runs of 4000 steps, TD3 for 7000) already take ~35-40 s alone.
        return cls(scale="quick", seeds=1, threads=1, bias_steps=4000)

    @classmethod
    def full(cls) -> Config:
        # Table 1 (TD3 and Our DDPG) and Table 2 (ablations) at the paper's settings; Pendulum-v1 first
        # for the value-bias measurement of Figure 1 (10000 states, as the paper).
        return cls(
            scale="full",
            seeds=10,
            threads=1,
            envs=(
                "Pendulum-v1",
                "HalfCheetah-v5",
                "Hopper-v5",
                "Walker2d-v5",
                "Ant-v5",
                "Reacher-v5",
                "InvertedPendulum-v5",
                "InvertedDoublePendulum-v5",
            ),
            variants=tuple(VARIANTS),
            bias_variants=("ddpg", "ahe_cdq", "td3"),
            bias_steps=200_000,
            steps=1_000_000,
            hidden=(400, 300),
            eval_every=5000,
            bias_every=5000,
            bias_states=10000,
            checkpoint_every=50_000,
        )

    def validate(self) -> Config:
        if not self.envs:
            raise ValueError("envs must name at least one Gymnasium task, got an empty tuple")
        if not self.variants and not self.bias_variants:
            raise ValueError("variants and bias_variants are both empty: nothing to train")
        for variant in self.variants:
            check_choice("variant", variant, tuple(VARIANTS))
        for variant in self.bias_variants:
            check_choice("bias variant", variant, tuple(VARIANTS))
        check_int("checkpoint_every", self.checkpoint_every, 0)
        for name in (
            "steps",
            "bias_steps",
            "eval_every",
            "eval_episodes",
            "bias_every",
            "bias_states",
            "mc_horizon",
        ):
            check_int(name, getattr(self, name))
        check_int("learning_starts", self.learning_starts, 0)
        check_int("learning_starts_long", self.learning_starts_long, 0)
        check_float("gamma", self.gamma, 0.0, 1.0, max_inclusive=False)
        check_float("bias_gamma", self.bias_gamma, 0.0, 1.0, max_inclusive=False)
        check_float("learning_rate", self.learning_rate, 0.0, min_inclusive=False, finite=True)
        return self


# Thresholds. Return: the target, -250 (our TD3 runs reached -129 and -163 at 7000 steps,
# seed 0, two code versions; a random policy scores about -1200). Value bias: the target kept as
# given (DDPG's bias positive and larger than clipped double Q's), although our quick runs do not meet
# it: on Pendulum, within a few thousand steps, the bias is dominated by the zero-initialised critics
# lagging the (negative) true values at the rate tau allows, equally for DDPG and CDQ (measured: mean
# bias DDPG 326, CDQ 345 at gamma 0.99; 27.4 and 27.1 at gamma 0.9; final 35.5 and 35.0).
CLAIMS = [
    Claim(
        metric="value_bias_gap",
        description="DDPG's value over-estimation minus clipped double Q's on Pendulum-v1 "
        "(mean of Q(s, pi(s)) - true discounted return over replay states, averaged over the run)",
        paper=None,
        source="Figure 1 (DDPG's estimate far above the true value on Hopper and Walker2d, CDQ's near "
        "or under it); no single number",
        quick=0.0,
        full=0.0,
    ),
    Claim(
        metric="ddpg_final_value_bias",
        description="DDPG over-estimates: its critic's estimate minus the true return at the end of the run",
        paper=None,
        source="Figure 1 (positive bias of DDPG)",
        quick=0.0,
        full=0.0,
    ),
    Claim(
        metric="cdq_final_value_bias",
        description="clipped double Q's bias at the end of the run (near or under zero in the paper)",
        paper=None,
        source="Figure 1",
        quick=None,
        full=None,
    ),
    Claim(
        metric="pendulum_td3_final_return",
        description="TD3's mean return on Pendulum-v1 (10 episodes, no noise) after the step budget",
        paper=None,
        source="issue target (Pendulum is not in the paper): >= -250",
        quick=-250.0,
        full=-250.0,
    ),
    Claim(
        metric="halfcheetah_td3_max_return",
        description="TD3's max average return on HalfCheetah (10^6 steps)",
        paper=TABLE1_TD3["HalfCheetah"],
        source="Table 1 (9636.95 +- 859.065, 10 trials; -v1 in the paper, -v5 here)",
        quick=None,
        full=8500.0,
    ),
    Claim(
        metric="hopper_td3_max_return",
        description="TD3's max average return on Hopper (10^6 steps)",
        paper=TABLE1_TD3["Hopper"],
        source="Table 1 (3564.07 +- 114.74)",
        quick=None,
        full=3000.0,
    ),
    Claim(
        metric="walker2d_td3_max_return",
        description="TD3's max average return on Walker2d (10^6 steps)",
        paper=TABLE1_TD3["Walker2d"],
        source="Table 1 (4682.82 +- 539.64)",
        quick=None,
        full=4000.0,
    ),
    Claim(
        metric="ant_td3_max_return",
        description="TD3's max average return on Ant (10^6 steps)",
        paper=TABLE1_TD3["Ant"],
        source="Table 1 (4372.44 +- 1000.33)",
        quick=None,
        full=3500.0,
    ),
]


# -- the value-bias measurement (Figure 1) ------------------------------------------------------------
PENDULUM = {"max_speed": 8.0, "max_torque": 2.0, "dt": 0.05, "g": 10.0, "m": 1.0, "l": 1.0}


def pendulum_step(theta: np.ndarray, theta_dot: np.ndarray, torque: np.ndarray, g: float = 10.0):
    """Gymnasium's Pendulum-v1 step for a batch of states: (theta', theta_dot', reward)."""
    p = PENDULUM
    torque = np.clip(torque, -p["max_torque"], p["max_torque"])
    normalized = ((theta + np.pi) % (2 * np.pi)) - np.pi
    reward = -(normalized**2 + 0.1 * theta_dot**2 + 0.001 * torque**2)
    new_dot = (
        theta_dot + (3 * g / (2 * p["l"]) * np.sin(theta) + 3.0 / (p["m"] * p["l"] ** 2) * torque) * p["dt"]
    )
    new_dot = np.clip(new_dot, -p["max_speed"], p["max_speed"])
    return theta + new_dot * p["dt"], new_dot, reward


def pendulum_observation(theta: np.ndarray, theta_dot: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(theta), np.sin(theta), theta_dot], axis=1).astype(np.float32)


@torch.no_grad()
def monte_carlo_returns(agent: TD3, observations: np.ndarray, gamma: float, horizon: int) -> np.ndarray:
    """Σ_{t<horizon} γ^t r_t of the agent's deterministic policy from each Pendulum observation."""
    theta = np.arctan2(observations[:, 1], observations[:, 0]).astype(np.float64)
    theta_dot = observations[:, 2].astype(np.float64)
    total = np.zeros(len(observations))
    discount = 1.0
    for _ in range(horizon):
        action = agent.actor.net(torch.from_numpy(pendulum_observation(theta, theta_dot))).numpy()[:, 0]
        # RescaleAction's map from [-1, 1] to [-max_torque, max_torque].
        theta, theta_dot, reward = pendulum_step(theta, theta_dot, action.astype(np.float64) * 2.0)
        total += discount * reward
        discount *= gamma
    return total


def measure_value_bias(
    agent: TD3, observations: np.ndarray, gamma: float, horizon: int, reward_offset: float = 0.0
) -> dict[str, float]:
    """Mean critic estimate Q_θ1(s, π(s)) and mean true return over the given replay states."""
    estimate = agent.value(torch.from_numpy(observations)).numpy()
    true = monte_carlo_returns(agent, observations, gamma, horizon)
    true = true + reward_offset * (1.0 - gamma**horizon) / (1.0 - gamma)
    return {
        "estimate": float(estimate.mean()),
        "true": float(true.mean()),
        "bias": float((estimate - true).mean()),
    }


# -- one run --------------------------------------------------------------------------------------------
def agent_config(cfg: Config, env_id: str, variant: str, gamma: float) -> TD3Config:
    twin, delay, noise = VARIANTS[variant]
    long_start = env_id.split("-")[0] in ("HalfCheetah", "Ant")
    return TD3Config(
        gamma=gamma,
        actor_learning_rate=cfg.learning_rate,
        critic_learning_rate=cfg.learning_rate,
        batch_size=cfg.batch_size,
        hidden=tuple(cfg.hidden),
        twin_critics=twin,
        policy_delay=delay,
        target_noise=noise,
        learning_starts=cfg.learning_starts_long if long_start else cfg.learning_starts,
        buffer_size=max(cfg.steps, 1),
    )


def _checkpoint(cfg: Config) -> Path | None:
    """Where this seed's checkpoints go (None when the config does not checkpoint)."""
    return checkpoint_folder("td3", cfg.to_dict()) if cfg.checkpoint_every else None


def train_variant(
    cfg: Config, env_id: str, variant: str, run_seed: int, steps: int, measure_bias: bool
) -> dict:
    """Train one agent for ``steps`` steps; evaluate every ``eval_every`` steps (returns runs) or
    measure the value bias every ``bias_every`` steps (bias runs, Pendulum), evaluate at the end.
    With ``cfg.checkpoint_every``, a finished run is kept and an unfinished one resumed (module
    docstring)."""
    folder = _checkpoint(cfg)
    name = f"{'bias' if measure_bias else 'returns'}-{variant}-{env_id.replace('/', '_')}"
    return load_or_compute(
        folder and folder / name,
        lambda: _train_variant(
            cfg, env_id, variant, run_seed, steps, measure_bias, folder and folder / f"{name}-training"
        ),
        config={**cfg.to_dict(), "run": name},
    )


def _train_variant(
    cfg: Config,
    env_id: str,
    variant: str,
    run_seed: int,
    steps: int,
    measure_bias: bool,
    checkpoint: Path | None,
) -> dict:
    env = make_env(env_id, rescale_actions=True)
    if cfg.reward_offset:
        import gymnasium as gym

        env = gym.wrappers.TransformReward(env, lambda reward: reward + cfg.reward_offset)
    gamma = cfg.bias_gamma if measure_bias else cfg.gamma
    agent = TD3(
        env.observation_space, env.action_space, agent_config(cfg, env_id, variant, gamma), seed=run_seed
    )
    state_generator = np.random.default_rng(run_seed + 7919)
    if measure_bias and not env_id.startswith("Pendulum"):
        raise ValueError(f"the value bias is measured on Pendulum-v1 (its state can be set), not {env_id}")
    # What the measurements keep (saved with each checkpoint, restored in place on resume): the curve
    # and the state of the generator that draws the bias states.
    measured: dict = {
        "curve": {"steps": [], "returns": [], "bias_steps": [], "estimate": [], "true": [], "bias": []},
        "states": state_generator.bit_generator.state,
    }
    progress = iter(track(range(steps), f"{variant} {env_id}", total=steps))

    trained_from: list[int] = []  # the step this process started training at (0, or a checkpoint's)

    def measure(agent: TD3, buffer, log) -> None:
        next(progress, None)
        if not trained_from:
            trained_from.append(agent.steps - 1)
        curve = measured["curve"]
        if not measure_bias and agent.steps % cfg.eval_every == 0:
            evaluation = evaluate_policy(
                agent.policy,
                make_env(env_id, rescale_actions=True),
                cfg.eval_episodes,
                seed=10_000 + run_seed,
            )
            curve["steps"].append(agent.steps)
            curve["returns"].append(evaluation.mean)
        if measure_bias and agent.steps % cfg.bias_every == 0 and agent.steps > agent.config.learning_starts:
            state_generator.bit_generator.state = measured["states"]
            index = state_generator.integers(0, len(buffer), cfg.bias_states)
            measured["states"] = state_generator.bit_generator.state
            bias = measure_value_bias(
                agent, buffer.storage["observation"][index], gamma, cfg.mc_horizon, cfg.reward_offset
            )
            curve["bias_steps"].append(agent.steps)
            for key in ("estimate", "true", "bias"):
                curve[key].append(bias[key])

    start = time.perf_counter()
    train_off_policy(
        agent,
        env,
        steps,
        seed=run_seed,
        callback=measure,
        callback_state=measured,
        checkpoint_dir=checkpoint,
        checkpoint_every=cfg.checkpoint_every,
        checkpoint_config={**cfg.to_dict(), "env": env_id, "variant": variant, "bias": measure_bias},
    )
    seconds = time.perf_counter() - start
    curve = measured["curve"]
    for _ in progress:  # close the progress bar
        pass
    if not curve["steps"] or curve["steps"][-1] != steps:
        evaluation = evaluate_policy(
            agent.policy, make_env(env_id, rescale_actions=True), cfg.eval_episodes, seed=10_000 + run_seed
        )
        curve["steps"].append(steps)
        curve["returns"].append(evaluation.mean)
    curve["seconds"] = seconds
    curve["steps_per_second"] = (steps - (trained_from[0] if trained_from else steps)) / seconds
    return curve


def _task(env_id: str) -> str:
    return env_id.split("-")[0].lower()


def _figures(all_curves: dict[tuple[str, str], dict]) -> dict[str, Figure]:
    figures = {}
    curves = {k: v for k, v in all_curves.items() if not v["bias_steps"]}
    returns = Figure(figsize=(6, 4), layout="constrained")
    axis = returns.subplots()
    for (env_id, variant), curve in curves.items():
        axis.plot(curve["steps"], curve["returns"], label=f"{variant} {env_id}")
    axis.set(xlabel="environment steps", ylabel="average return (10 episodes)", title="learning curves")
    axis.legend(fontsize="small")
    figures["learning_curves"] = returns
    pendulum = {k: v for k, v in all_curves.items() if v["bias_steps"]}
    if pendulum:
        bias = Figure(figsize=(6, 4), layout="constrained")
        axis = bias.subplots()
        for (_, variant), curve in pendulum.items():
            line = axis.plot(curve["bias_steps"], curve["estimate"], label=f"{variant} estimate")[0]
            axis.plot(
                curve["bias_steps"],
                curve["true"],
                linestyle=":",
                color=line.get_color(),
                label=f"{variant} true",
            )
        axis.set(
            xlabel="environment steps",
            ylabel="value Q(s, pi(s)) / discounted return",
            title="Figure 1 on Pendulum-v1",
        )
        axis.legend(fontsize="small")
        figures["value_estimates"] = bias
    return figures


def run(cfg: Config) -> Result:
    cfg.validate()
    seed(cfg.seed)
    metrics: dict[str, float] = {}
    curves: dict[tuple[str, str], dict] = {}
    details: dict = {}
    # 1. Figure 1: the value bias of DDPG and of DDPG with clipped double Q, on the same seed.
    for variant in cfg.bias_variants:
        curve = train_variant(cfg, "Pendulum-v1", variant, cfg.seed, cfg.bias_steps, measure_bias=True)
        curves[("Pendulum-v1 (bias)", variant)] = curve
        name = BIAS_NAMES[variant]
        metrics[f"{name}_value_bias"] = float(np.mean(curve["bias"]))
        metrics[f"{name}_final_value_bias"] = curve["bias"][-1]
        metrics[f"{name}_bias_run_return"] = curve["returns"][-1]
        details[f"Pendulum-v1 {variant} (bias run)"] = curve
    if "ddpg_value_bias" in metrics and "cdq_value_bias" in metrics:
        metrics["value_bias_gap"] = metrics["ddpg_value_bias"] - metrics["cdq_value_bias"]
    # 2. Tables 1-2: returns.
    for env_id in cfg.envs:
        for variant in cfg.variants:
            curve = train_variant(cfg, env_id, variant, cfg.seed, cfg.steps, measure_bias=False)
            curves[(env_id, variant)] = curve
            task = _task(env_id)
            metrics[f"{task}_{variant}_final_return"] = curve["returns"][-1]
            metrics[f"{task}_{variant}_max_return"] = max(curve["returns"])
            metrics[f"{variant}_steps_per_second"] = curve["steps_per_second"]
            details[f"{env_id} {variant}"] = curve
    if (folder := _checkpoint(cfg)) is not None:  # every run finished: nothing left to resume
        shutil.rmtree(folder, ignore_errors=True)
    notes = [
        "DDPG is the paper's 'Our DDPG' (AHE): TD3's networks, Adam 1e-3, tau 0.005, Gaussian exploration, "
        "without clipped double Q, target smoothing or delayed updates; not the original DDPG "
        "(OU noise, batch norm, 400-300 with the action entering the second layer).",
        "Value bias as Figure 1 (states from the replay buffer, the critic Q1(s, pi(s)) against the "
        f"discounted return of the current policy) on Pendulum-v1, {cfg.bias_states} states every "
        f"{cfg.bias_every} steps, "
        "deterministic rollouts of the exact Pendulum dynamics; the paper measured Hopper and Walker2d.",
        "Gymnasium v5 MuJoCo tasks stand for the paper's v1 tasks (same models, newer simulator).",
        "Table 2's DQ-AC and DDQN-AC rows are not implemented.",
    ]
    if cfg.scale == "quick":
        notes.append(
            f"quick: Pendulum-v1 only, {cfg.steps} steps, {tuple(cfg.hidden)} networks, "
            f"{cfg.seeds} seeds; the paper: 7 MuJoCo tasks, 10^6 steps, 400-300 networks, 10 seeds."
        )
    return Result(metrics=metrics, figures=_figures(curves), details=details, notes=notes)
