"""Benchmark: environment steps per second of our vector environment (``aicanon.rl.envs.make_vector_env``:
Gymnasium's SyncVectorEnv with episode statistics and same-step autoreset) against Gymnasium's plain
``SyncVectorEnv`` (``gymnasium.make`` copies, default autoreset) and stable-baselines3's
``DummyVecEnv``, each without and with observation and reward normalisation (ours:
``aicanon.rl.wrappers.VectorNormalize``; Gymnasium: its ``NormalizeObservation`` and
``NormalizeReward`` on each copy, since its vector ``NormalizeObservation`` refuses same-step
autoreset; SB3: ``VecNormalize``), in one process.

Every contender steps ``--envs`` copies of the same environment with the same pre-drawn random
actions, ``--chunk`` vector steps per timed call, alternately, so machine noise hits them alike.
Prints steps/s (vector steps x copies) and the time ratio ours/reference (below 1: ours faster).

    python benchmarks/bench_gym.py [--envs 8] [--chunk 500] [--repeats 7] [--env-ids CartPole-v1,Pendulum-v1]

(also ``aicanon bench gym``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import gymnasium as gym
import numpy as np

from aicanon.rl.envs import make_vector_env
from aicanon.rl.wrappers import VectorNormalize


def actions_for(env_id: str, num_envs: int, count: int) -> np.ndarray:
    space = gym.make(env_id).action_space
    space.seed(0)
    return np.stack([np.stack([space.sample() for _ in range(num_envs)]) for _ in range(count)])


def gymnasium_env(env_id: str, num_envs: int, normalize: bool):
    def make():
        env = gym.make(env_id)
        if normalize:
            env = gym.wrappers.NormalizeReward(gym.wrappers.NormalizeObservation(env))
        return env

    envs = gym.vector.SyncVectorEnv([make for _ in range(num_envs)])
    envs.reset(seed=0)
    return envs


def ours_env(env_id: str, num_envs: int, normalize: bool):
    envs = make_vector_env(env_id, num_envs, seed=0)
    if normalize:
        envs = VectorNormalize(envs)
    envs.reset(seed=0)
    return envs


def sb3_env(env_id: str, num_envs: int, normalize: bool):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    envs = DummyVecEnv([lambda: gym.make(env_id) for _ in range(num_envs)])
    if normalize:
        envs = VecNormalize(envs)
    envs.seed(0)
    envs.reset()
    return envs


def stepper(envs, actions: np.ndarray):
    """A callable stepping ``envs`` through ``actions`` (Gymnasium's or SB3's step signature alike)."""

    def run() -> None:
        for action in actions:
            envs.step(action)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=8, help="copies per vector environment")
    parser.add_argument("--chunk", type=int, default=500, help="vector steps per timed call")
    parser.add_argument("--env-ids", default="CartPole-v1,Pendulum-v1")
    args = _timing.parse_common_args(parser, repeats=7, threads=1, device="cpu", device_help="cpu only")
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", f"{args.chunk} vector steps of {args.envs} copies")
    for env_id in args.env_ids.split(","):
        actions = actions_for(env_id, args.envs, args.chunk)
        for normalize in (False, True):
            contenders = {
                "ours": ours_env(env_id, args.envs, normalize),
                "gymnasium": gymnasium_env(env_id, args.envs, normalize),
                "sb3": sb3_env(env_id, args.envs, normalize),
            }
            timings = _timing.time_alternately(
                {name: stepper(envs, actions) for name, envs in contenders.items()}, args.repeats, None
            )
            steps = args.chunk * args.envs
            rates = ", ".join(f"{name} {steps / t.median:.0f}" for name, t in timings.items())
            label = f"{env_id} {'normalised' if normalize else 'plain'}"
            _timing.print_comparison(label, timings, "median", note=f"steps/s {rates}", width=28)


if __name__ == "__main__":
    main()
