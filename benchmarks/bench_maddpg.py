"""Benchmark: environment steps per second of our MADDPG training loop on mpe2, against mpe2 alone.

No maintained library implements MADDPG (stable-baselines3 has no multi-agent algorithms), so the
reference here is the environment itself: mpe2's parallel env stepped with random actions, the
ceiling any training loop on it can reach. For each scenario (speaker-listener, spread) it prints

* ``env``: env steps/s of mpe2 with random actions (no learning);
* ``act``: our loop acting (actors' forward passes, Gumbel sampling, replay writes), no updates;
* ``paper schedule``: MADDPG training with the released code's schedule (an update every 100 steps,
  batch 1024);
* ``quick schedule``: the quick experiment's (an update every 4 steps, batch 128, 4 envs),

as steps/s and as the ratio ours/env (time per step; above 1: slower than the bare env).

    python benchmarks/bench_maddpg.py [--threads 1] [--repeats 3]

(also ``aicanon bench maddpg``). Single-threaded torch is the setting the agents use.
"""

from __future__ import annotations

import argparse
import time

import _timing
import numpy as np

from aicanon.rl.maddpg import MADDPG, MADDPGConfig, spaces_of, train


def make(scenario: str, count: int) -> list:
    from mpe2 import simple_speaker_listener_v4, simple_spread_v3

    module = simple_speaker_listener_v4 if scenario == "speaker_listener" else simple_spread_v3
    return [module.parallel_env(continuous_actions=False, max_cycles=25) for _ in range(count)]


def env_only(scenario: str, episodes: int) -> float:
    """Seconds per env step with random actions."""
    env = make(scenario, 1)[0]
    steps, start = 0, time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=episode)
        for name in env.possible_agents:
            env.action_space(name).seed(episode)
        while env.agents:
            env.step({name: env.action_space(name).sample() for name in env.agents})
            steps += 1
    return (time.perf_counter() - start) / steps


def our_loop(
    scenario: str, episodes: int, num_envs: int, batch: int, update_every: int, warmup: int
) -> float:
    """Seconds per env step of :func:`aicanon.rl.maddpg.train` (updates included)."""
    envs = make(scenario, num_envs)
    _, sizes, counts = spaces_of(envs[0])
    agent = MADDPG(sizes, counts, MADDPGConfig(batch_size=batch, buffer_size=100_000), seed=0)
    # Fill the buffer first so that the timed part updates at its schedule from the start.
    train(agent, envs, max(1, 2 * batch // (25 * num_envs) + 1), seed=0, warmup_steps=10**9, update_every=1)
    start_steps, start = agent.environment_steps, time.perf_counter()
    train(
        agent, envs, max(1, episodes // num_envs), seed=10**6, warmup_steps=warmup, update_every=update_every
    )
    return (time.perf_counter() - start) / (agent.environment_steps - start_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=40, help="episodes per timed run")
    args = _timing.parse_common_args(parser, repeats=3, threads=1, device="cpu", device_help="cpu only")
    _timing.print_setup(args, "median", "env steps/s of training loops on mpe2 (25-step episodes)")
    for scenario in ("speaker_listener", "spread"):
        runs = {
            "env": lambda s=scenario: env_only(s, args.episodes),
            "act": lambda s=scenario: our_loop(s, args.episodes, 1, 64, 1, 10**9),
            "paper schedule": lambda s=scenario: our_loop(s, args.episodes, 1, 1024, 100, 0),
            "quick schedule": lambda s=scenario: our_loop(s, args.episodes, 4, 128, 4, 0),
        }
        seconds = {name: float(np.median([fn() for _ in range(args.repeats)])) for name, fn in runs.items()}
        line = [f"{scenario:<17}"]
        for name, value in seconds.items():
            ratio = "" if name == "env" else f" (x{value / seconds['env']:.2f})"
            line.append(f"{name} {1 / value:8.0f} steps/s{ratio}")
        print("   ".join(line))


if __name__ == "__main__":
    main()
