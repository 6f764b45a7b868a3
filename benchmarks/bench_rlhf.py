"""Benchmark: InstructGPT's PPO step (aicanon.align.rlhf.RLHFTrainer) on a tiny Llama: steps/s and
generated tokens/s.

trl 1.16 (the installed reference) no longer ships a PPO trainer (``PPOTrainer`` left trl after 0.x;
neither ``trl`` nor ``trl.experimental`` has one), so there is no reference to time against on the same
inputs: this script reports ours alone. A step is one rollout (batched generation with the KV cache,
policy / reference / value passes, reward, GAE) and one PPO update (``epochs`` passes of mini-batches).

    python benchmarks/bench_rlhf.py [--device cpu|cuda] [--threads N] [--repeats R] [--batch B]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from aicanon.align.reward_model import RewardModel
from aicanon.align.rlhf import RLHFConfig, RLHFTrainer, ValueModel
from aicanon.core.device import select_device
from aicanon.language.llama import Llama, LlamaConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 8 // 3 // 4 * 4,
        num_layers=args.layers,
        num_heads=max(1, args.hidden // 16),
        max_seq_len=256,
    )
    policy = Llama(config).to(device)
    reference = Llama(config).to(device)
    reference.load_state_dict(policy.state_dict())
    value = ValueModel.from_reward_model(RewardModel(policy)).to(device)
    reward_model = RewardModel(policy).to(device).eval()

    def reward_fn(sequences, mask):
        with torch.no_grad():
            return reward_model(sequences, mask)

    trainer = RLHFTrainer(
        policy,
        reference,
        value,
        reward_fn,
        RLHFConfig(max_new_tokens=args.new_tokens, minibatch_size=max(1, args.batch // 2), epochs=1),
        eos_token_id=None,
        pad_token_id=0,
    )
    prompts = torch.randint(1, 64, (args.batch, 8), device=device)
    mask = torch.ones_like(prompts)
    trainer.step(prompts, mask)  # warm-up
    times, tokens = [], []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        stats = trainer.step(prompts, mask)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        tokens.append(stats["length"] * args.batch)
    median = statistics.median(times)
    print(
        f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, "
        f"new tokens {args.new_tokens}"
    )
    print(f"ours: {1 / median:.3f} PPO steps/s, {statistics.median(tokens) / median:.0f} generated tokens/s")
    print("reference: none (trl 1.16 has no PPO trainer; see the docstring)")


if __name__ == "__main__":
    main()
