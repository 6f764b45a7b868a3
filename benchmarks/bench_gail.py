"""Benchmark: one GAIL iteration against one plain on-policy iteration on the same rollout size, and
the policy step (TRPO, the paper's; PPO, the option) against stable-baselines3's PPO training loop.

Three rows, CartPole-v1, 8 environments x 128 steps per iteration, 64-64 tanh networks, one
process, one torch thread:

1. **Discriminator overhead.** ``--iterations`` GAIL iterations (rollout, discriminator Adam steps,
   rewards from D, GAE, TRPO step + value fit) against the same loop with the environment's reward
   and no discriminator (rl.trpo's TRPO agent on the same batch size): the ratio is GAIL's cost
   over plain TRPO's.
2. The same with the PPO policy step against our PPO agent (rl.ppo_agent) with the same update
   settings (10 epochs of 256-pair mini-batches) and the same γ, λ.
3. **GAIL (PPO step) against stable-baselines3's PPO** on the same environment steps and update
   settings: SB3 has no GAIL, so this compares our whole GAIL iteration with SB3's plain PPO
   iteration (a ratio above 1 is GAIL's discriminator work plus any overhead of ours).

The ratio is ours / reference (below 1: ours faster).

    python benchmarks/bench_gail.py [--iterations N] [--repeats R] [--threads 1]
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import gymnasium as gym

from aicanon.rl.demonstrations import generate_demonstrations
from aicanon.rl.gail import GAIL, GAILConfig
from aicanon.rl.ppo import PPOConfig
from aicanon.rl.ppo_agent import PPOAgent, PPOAgentConfig
from aicanon.rl.trpo import TRPO, TRPOConfig

ENV = "CartPole-v1"
NUM_ENVS, N_STEPS = 8, 128
PPO_UPDATE = PPOConfig(epochs=10, minibatch_size=256, lr=3e-4)


def _demonstrations():
    space = gym.make(ENV).action_space
    space.seed(0)
    return generate_demonstrations(lambda o: space.sample(), ENV, 4, seed=0, source="random (timing only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=5, help="iterations per timed training run")
    args = _timing.parse_common_args(parser, repeats=3, threads=1, device="cpu")
    warnings.filterwarnings("ignore")
    steps = args.iterations * NUM_ENVS * N_STEPS
    _timing.print_setup(args, "median", f"{args.iterations} iterations of {NUM_ENVS} x {N_STEPS} steps")
    demonstrations = _demonstrations()
    common = dict(num_envs=NUM_ENVS, n_steps=N_STEPS, hidden=(64, 64), discriminator_hidden=(64, 64))

    def gail(policy_step):
        def run():
            GAIL(
                ENV, demonstrations, GAILConfig(policy_step=policy_step, ppo=PPO_UPDATE, **common), seed=0
            ).learn(steps)

        return run

    def trpo():
        cfg = TRPOConfig(num_envs=NUM_ENVS, n_steps=N_STEPS, value_epochs=5, value_minibatch_size=256)
        TRPO(ENV, cfg, seed=0).learn(steps)

    def ppo():
        cfg = PPOAgentConfig(
            num_envs=NUM_ENVS, n_steps=N_STEPS, gamma=0.995, gae_lambda=0.97, update=PPO_UPDATE
        )
        PPOAgent(ENV, cfg, seed=0).learn(steps)

    def sb3_ppo():
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(ENV, n_envs=NUM_ENVS, seed=0)
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=N_STEPS,
            batch_size=256,
            n_epochs=10,
            gamma=0.995,
            gae_lambda=0.97,
            learning_rate=3e-4,
            seed=0,
            device="cpu",
        )
        model.learn(steps)

    rows = (
        ("GAIL (TRPO) vs plain TRPO", {"gail": gail("trpo"), "trpo": trpo}, "gail"),
        ("GAIL (PPO) vs our PPO", {"gail": gail("ppo"), "ppo": ppo}, "gail"),
        ("GAIL (PPO) vs SB3 PPO", {"gail": gail("ppo"), "sb3": sb3_ppo}, "gail"),
    )
    for label, callables, ours in rows:
        timings = _timing.time_alternately(callables, args.repeats, None, warmup=1)
        rates = ", ".join(f"{k} {steps / t.median:.0f}" for k, t in timings.items())
        _timing.print_comparison(label, timings, "median", ours=ours, note=f"steps/s {rates}", width=28)


if __name__ == "__main__":
    main()
