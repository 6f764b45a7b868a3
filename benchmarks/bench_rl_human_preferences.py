"""Benchmark: the cost of learning the reward from preferences (Christiano et al. 2017) on top of
plain PPO. No maintained reference library implements the paper's method (the original code is
OpenAI's unmaintained rl-teacher), so the baseline is our own PPO loop on the environment's reward.

Three rows, aicanon/PointMass-v0, 8 environments, one process, one torch thread:

1. **Reward wrapper overhead.** ``--steps`` vector-environment steps of
   :class:`aicanon.align.preferences.PredictedRewardWrapper` (an ensemble of 3 predictors scores
   every step, finished episodes stored) against the raw vector environment.
2. **PPO on predicted reward vs PPO on the true reward**: ``--iterations`` PPO iterations of 8 x 64
   steps (10 epochs, 128-pair mini-batches) on the wrapped and the raw environments.
3. **Ensemble refit**: one refit (3 members x 60 Adam steps of 32 pairs of 25-step segments) on
   400 labelled pairs, against one PPO iteration (row 2's baseline / iterations): how a refit compares
   to the policy's cost per round.

The ratio is ours / baseline (above 1: the preference machinery's extra cost).

    python benchmarks/bench_rl_human_preferences.py [--steps N] [--iterations N] [--repeats R]
"""

from __future__ import annotations

import argparse

import _timing
import numpy as np
import torch

from aicanon.align.preferences import (
    PredictedRewardWrapper,
    RewardEnsemble,
    oracle_preferences,
    sample_segments,
)
from aicanon.rl.envs import POINT_MASS_ID, make_vector_env
from aicanon.rl.ppo import PPOConfig
from aicanon.rl.ppo_agent import PPOAgent, PPOAgentConfig
from aicanon.rl.rollout import RolloutCollector

NUM_ENVS, N_STEPS = 8, 64


def _ensemble(envs) -> RewardEnsemble:
    torch.manual_seed(0)
    return RewardEnsemble.for_spaces(envs.single_observation_space, envs.single_action_space, members=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="vector steps per timed env run")
    parser.add_argument("--iterations", type=int, default=4, help="PPO iterations per timed run")
    args = _timing.parse_common_args(parser, repeats=3, threads=1, device="cpu")
    _timing.print_setup(args, "median", f"{NUM_ENVS} environments of {POINT_MASS_ID}")
    actions = np.random.default_rng(0).uniform(-1, 1, (args.steps, NUM_ENVS, 2)).astype(np.float32)

    def stepping(wrapped: bool):
        def run():
            envs = make_vector_env(POINT_MASS_ID, NUM_ENVS, seed=0)
            if wrapped:
                envs = PredictedRewardWrapper(envs, _ensemble(envs))
            envs.reset(seed=0)
            for action in actions:
                envs.step(action)

        return run

    timings = _timing.time_alternately(
        {"wrapper": stepping(True), "raw": stepping(False)}, args.repeats, None, warmup=1
    )
    rates = ", ".join(f"{k} {args.steps * NUM_ENVS / t.median:.0f}" for k, t in timings.items())
    _timing.print_comparison("env steps: wrapper vs raw", timings, ours="wrapper", note=f"steps/s {rates}")

    cfg = PPOAgentConfig(
        num_envs=NUM_ENVS,
        n_steps=N_STEPS,
        gamma=0.95,
        gae_lambda=0.9,
        update=PPOConfig(epochs=10, minibatch_size=128, lr=3e-3),
    )
    steps = args.iterations * NUM_ENVS * N_STEPS

    def ppo(wrapped: bool):
        def run():
            agent = PPOAgent(POINT_MASS_ID, cfg, seed=0)
            if wrapped:
                agent.envs = PredictedRewardWrapper(agent.envs, _ensemble(agent.envs))
                agent.collector = RolloutCollector(agent.envs, seed=0)
            agent.learn(steps)
            return agent

        return run

    timings = _timing.time_alternately({"predicted": ppo(True), "true": ppo(False)}, args.repeats, None)
    ppo_iteration = timings["true"].median / args.iterations
    rates = ", ".join(f"{k} {steps / t.median:.0f}" for k, t in timings.items())
    _timing.print_comparison(
        "PPO: predicted vs true reward", timings, ours="predicted", note=f"steps/s {rates}"
    )

    agent = timings["predicted"].result
    episodes = list(agent.envs.episodes)
    generator = torch.Generator().manual_seed(0)
    first = sample_segments(episodes, 400, 25, generator)
    second = sample_segments(episodes, 400, 25, generator)
    labels = oracle_preferences(first, second)
    ensemble = _ensemble(agent.envs)

    def refit():
        ensemble.fit(first, second, labels, steps=60, batch_size=32, generator=generator)

    timing = _timing.time_alternately({"refit": refit}, args.repeats, None)["refit"]
    print(
        f"{'ensemble refit (400 pairs)':<44}   refit {1e3 * timing.median:9.3f} ms   "
        f"one PPO iteration {1e3 * ppo_iteration:9.3f} ms   ratio {timing.median / ppo_iteration:5.2f}   "
        f"pairs/s {3 * 60 * 32 / timing.median:.0f}"
    )


if __name__ == "__main__":
    main()
