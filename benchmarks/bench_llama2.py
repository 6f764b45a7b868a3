"""Benchmark: our Llama against transformers' LlamaForCausalLM, same weights and inputs, one process.

Times forward + backward (mean next-token cross-entropy) of a tiny Llama (GQA, 4 layers, width 256)
and a small one (width 512, 8 layers) on CPU, and prints ours / transformers' time ratio (below 1:
ours is faster; goal <= 1.0). The reference runs with eager attention and with SDPA. Both models run
alternately, repeat after repeat; the median is reported. The logits are checked equal first.

    python benchmarks/bench_llama2.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench llama2 -- --threads 2``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch
import torch.nn.functional as F

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.llama_weights import from_transformers


def reference_model(cfg: LlamaConfig, attention: str):
    import transformers

    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_theta": cfg.rope_theta, "rope_type": "default"},
        attn_implementation=attention,
    )
    return transformers.LlamaForCausalLM(hf_cfg)


def compare(
    label: str, cfg: LlamaConfig, batch: int, length: int, device: torch.device, repeats: int
) -> None:
    torch.manual_seed(0)
    eager = reference_model(cfg, "eager").to(device)
    sdpa = reference_model(cfg, "sdpa").to(device)
    sdpa.load_state_dict(eager.state_dict())
    ours = Llama(cfg).to(device)
    load_state_dict_strict(ours, from_transformers(eager.state_dict(), cfg))
    ids = torch.randint(0, cfg.vocab_size, (batch, length), device=device)
    targets = ids.roll(-1, dims=1)

    def step(model, hf: bool):
        logits = model(ids).logits if hf else model(ids)
        F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()

    with torch.no_grad():
        difference = (ours(ids) - eager(ids).logits).abs().max().item()
    timings = _timing.time_alternately(
        {
            "ours": lambda: step(ours, False),
            "hf-sdpa": lambda: step(sdpa, True),
            "hf-eager": lambda: step(eager, True),
        },
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "hf-sdpa": lambda: sdpa.zero_grad(set_to_none=True),
            "hf-eager": lambda: eager.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}", width=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward, cross-entropy")
    tiny = LlamaConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=688,
        num_layers=4,
        num_heads=8,
        num_kv_heads=2,
        max_seq_len=512,
    )
    compare("tiny (d=256, 4 layers, GQA 8/2), 8x128", tiny, 8, 128, args.device, args.repeats)
    small = LlamaConfig(
        vocab_size=2048,
        hidden_size=512,
        intermediate_size=1376,
        num_layers=8,
        num_heads=8,
        num_kv_heads=8,
        max_seq_len=512,
    )
    compare("small (d=512, 8 layers, MHA), 4x256", small, 4, 256, args.device, max(3, args.repeats // 2))


if __name__ == "__main__":
    main()
