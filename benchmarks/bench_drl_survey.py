"""Benchmark: environment steps per second of our PPO and DQN training loops against
stable-baselines3's, same environment (CartPole-v1), same network sizes and hyperparameters, one
process, one torch thread.

PPO: 8 environments x 32 steps per iteration, 20 epochs of one 256-step mini-batch, 64-64 tanh
actor and critic (the zoo's CartPole settings). DQN: one environment, 64-64 ReLU Q-network,
128 gradient steps of batch 64 every 256 steps after 1000 warm-up steps. Each side trains from
scratch for ``--steps`` environment steps; the two run alternately ``--repeats`` times and the
median is reported with the ratio ours / SB3 (below 1: ours is faster). Both loops do the same
amount of learning work, so the ratio measures the loop's overhead.

    python benchmarks/bench_drl_survey.py [--steps N] [--repeats R] [--threads 1]
"""

from __future__ import annotations

import argparse
import warnings

import _timing

from aicanon.rl.dqn import DQN, DQNConfig
from aicanon.rl.envs import make_env
from aicanon.rl.ppo import PPOConfig
from aicanon.rl.ppo_agent import PPOAgent, PPOAgentConfig


def ppo_pair(steps: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    update = PPOConfig(epochs=20, minibatch_size=256, lr=1e-3)

    def ours():
        PPOAgent("CartPole-v1", PPOAgentConfig(num_envs=8, n_steps=32, update=update), seed=0).learn(steps)

    def theirs():
        env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=32,
            batch_size=256,
            n_epochs=20,
            gamma=0.98,
            gae_lambda=0.8,
            learning_rate=1e-3,
            ent_coef=0.0,
            seed=0,
            device="cpu",
        )
        model.learn(steps)

    return ours, theirs


def dqn_pair(steps: int):
    from stable_baselines3 import DQN as SB3DQN

    cfg = DQNConfig(hidden=(64, 64))

    def ours():
        DQN(make_env("CartPole-v1"), cfg, seed=0).learn(steps)

    def theirs():
        model = SB3DQN(
            "MlpPolicy",
            "CartPole-v1",
            learning_rate=cfg.learning_rate,
            buffer_size=cfg.buffer_size,
            learning_starts=cfg.learning_starts,
            batch_size=cfg.batch_size,
            gamma=cfg.gamma,
            train_freq=cfg.train_freq,
            gradient_steps=cfg.gradient_steps,
            target_update_interval=cfg.target_update_interval,
            exploration_fraction=cfg.exploration_fraction,
            exploration_final_eps=cfg.exploration_final_eps,
            policy_kwargs={"net_arch": [64, 64]},
            seed=0,
            device="cpu",
        )
        model.learn(steps)

    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5120, help="environment steps per training run")
    args = _timing.parse_common_args(parser, repeats=3, threads=1, device="cpu")
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", f"training {args.steps} environment steps from scratch")
    for name, pair in (("PPO", ppo_pair), ("DQN", dqn_pair)):
        ours, theirs = pair(args.steps)
        timings = _timing.time_alternately({"ours": ours, "sb3": theirs}, args.repeats, None, warmup=0)
        rates = {k: args.steps / t.median for k, t in timings.items()}
        note = f"steps/s ours {rates['ours']:.0f}, sb3 {rates['sb3']:.0f}"
        _timing.print_comparison(
            f"{name} on CartPole-v1", timings, "median", ours="ours", note=note, width=24
        )


if __name__ == "__main__":
    main()
