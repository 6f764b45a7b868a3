"""Benchmark: environment steps per second of our SAC training loop against stable-baselines3's SAC,
on the same environment (Pendulum-v1) with the same network sizes, batch size and one gradient step
per environment step, in one process.

Both agents first fill their buffers with ``--learning-starts`` random steps; then chunks of
``--chunk`` training steps (act, step the environment, store, one gradient step of critics, actor and
temperature) run alternately, ours then SB3's (``model.learn(chunk, reset_num_timesteps=False)``), so
machine noise hits both alike. Prints steps/s of each and the time ratio ours/SB3 (below 1: ours is
faster), per network size.

    python benchmarks/bench_sac.py [--threads 1] [--repeats 5] [--chunk 500] [--sizes 64,256]

(also ``aicanon bench sac``). One torch thread is the setting the agents train with.
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import numpy as np
import torch

from aicanon.rl.envs import make_env
from aicanon.rl.sac import SAC, SACConfig


class OurLoop:
    """The experiment's training loop (aicanon.experiments.sac.train) without evaluation."""

    def __init__(self, hidden: int, batch_size: int, learning_starts: int) -> None:
        self.env = make_env("Pendulum-v1")
        cfg = SACConfig(hidden=(hidden, hidden), batch_size=batch_size, buffer_size=100_000)
        self.agent = SAC(self.env.observation_space, self.env.action_space, cfg, seed=0)
        self.observation, _ = self.env.reset(seed=0)
        for _ in range(learning_starts):
            self.step(self.agent.random_action(), learn=False)

    def step(self, action: np.ndarray, learn: bool = True) -> None:
        next_observation, reward, terminated, truncated, _ = self.env.step(action)
        self.agent.observe(self.observation, action, reward, next_observation, terminated)
        self.observation = next_observation
        if learn:
            self.agent.update()
        if terminated or truncated:
            self.observation, _ = self.env.reset()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step(self.agent.act(self.observation))


def sb3_model(hidden: int, batch_size: int, learning_starts: int):
    import stable_baselines3 as sb3

    model = sb3.SAC(
        "MlpPolicy",
        "Pendulum-v1",
        policy_kwargs={"net_arch": [hidden, hidden]},
        batch_size=batch_size,
        buffer_size=100_000,
        learning_starts=learning_starts,
        seed=0,
        device="cpu",
    )
    model.learn(learning_starts)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk", type=int, default=500, help="training steps per timed call")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--sizes", default="64,256", help="hidden widths (2 layers each) to compare")
    args = _timing.parse_common_args(parser, repeats=5, threads=1, device="cpu", device_help="cpu only")
    warnings.filterwarnings("ignore")
    _timing.print_setup(
        args, "median", f"{args.chunk} training steps on Pendulum-v1, batch {args.batch_size}"
    )
    for hidden in (int(size) for size in args.sizes.split(",")):
        ours = OurLoop(hidden, args.batch_size, args.learning_starts)
        theirs = sb3_model(hidden, args.batch_size, args.learning_starts)
        timings = _timing.time_alternately(
            {
                "ours": lambda ours=ours: ours.run(args.chunk),
                "sb3": lambda theirs=theirs: theirs.learn(args.chunk, reset_num_timesteps=False),
            },
            args.repeats,
            None,
            warmup=1,
        )
        rates = {name: args.chunk / timing.median for name, timing in timings.items()}
        _timing.print_comparison(
            f"2 x {hidden}",
            timings,
            "median",
            note=f"steps/s ours {rates['ours']:.0f}, sb3 {rates['sb3']:.0f}",
            width=12,
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
