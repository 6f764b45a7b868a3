"""Benchmark: environment steps per second of our TD3 (and DDPG) training loop against
stable-baselines3's, on the same environment (Pendulum-v1), network sizes, batch size and schedule
(``learning_starts`` random steps, then one update per step), in one process.

Each repeat trains a fresh agent of each library for ``--steps`` steps, alternately, so machine
noise hits both alike; the median time is reported with the ratio ours / SB3 (below 1: ours faster).

    python benchmarks/bench_td3.py [--threads 1] [--repeats 3] [--steps 3000] [--hidden 64,64]

(also ``aicanon bench td3``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.rl.envs import make_env
from aicanon.rl.td3 import TD3, TD3Config, train_off_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="environment steps per training run")
    parser.add_argument("--learning-starts", type=int, default=500, help="random steps before updates")
    parser.add_argument("--hidden", default="64,64", help="hidden widths of actor and critics")
    args = _timing.parse_common_args(parser, repeats=3, threads=1, device="cpu")
    warnings.filterwarnings("ignore")
    import stable_baselines3 as sb3

    hidden = tuple(int(width) for width in args.hidden.split(","))
    _timing.print_setup(args, "median", f"{args.steps} steps of Pendulum-v1 training, nets {hidden}")
    for name in ("TD3", "DDPG"):
        config = TD3Config(hidden=hidden, learning_starts=args.learning_starts)
        if name == "DDPG":
            config = TD3Config.ddpg(hidden=hidden, learning_starts=args.learning_starts)

        def ours(config=config) -> None:
            env = make_env("Pendulum-v1", rescale_actions=True)
            agent = TD3(env.observation_space, env.action_space, config, seed=0)
            train_off_policy(agent, env, args.steps, seed=0)

        def reference(name=name) -> None:
            model = getattr(sb3, name)(
                "MlpPolicy",
                "Pendulum-v1",
                policy_kwargs={"net_arch": list(hidden)},
                learning_starts=args.learning_starts,
                batch_size=100,
                learning_rate=1e-3,
                buffer_size=args.steps,
                seed=0,
                device="cpu",
            )
            model.learn(total_timesteps=args.steps)

        timings = _timing.time_alternately({"ours": ours, "sb3": reference}, args.repeats, None, warmup=0)
        steps_per_second = {k: args.steps / t.median for k, t in timings.items()}
        _timing.print_comparison(
            f"{name} training loop",
            timings,
            "median",
            note=f"steps/s ours {steps_per_second['ours']:.0f}, sb3 {steps_per_second['sb3']:.0f}",
            width=24,
        )
    torch.set_num_threads(torch.get_num_threads())


if __name__ == "__main__":
    main()
