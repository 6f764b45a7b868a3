"""Benchmark: our Mamba against transformers' ``MambaModel`` (its pure-PyTorch fallback), same weights.

Without the CUDA kernels (``mamba_ssm``, ``causal_conv1d``) transformers runs its slow path: the
selective scan as a Python loop over time (``mamba_selective_scan``'s "recurrent iteration"). Ours runs
the chunked scan on CPU (``aicanon.language.selective_scan.selective_scan_chunked``). Both models hold
the same weights (loaded with ``from_transformers``); the outputs are compared first, then the
forward pass and forward + backward are timed alternately at sequence length 1,024 (the issue's
setting) and the ratio transformers / ours is printed (above 1: ours is faster).

    python benchmarks/bench_mamba.py [--length 1024] [--d-model 128] [--layers 2] [--batch 2]
                                     [--threads N] [--repeats R] [--device cpu]
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.mamba import MambaLM, config_from_transformers, from_transformers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=1024, help="sequence length")
    parser.add_argument("--d-model", type=int, default=128, help="model width")
    parser.add_argument("--layers", type=int, default=2, help="Mamba blocks")
    parser.add_argument("--batch", type=int, default=2, help="sequences per batch")
    parser.add_argument("--state", type=int, default=16, help="SSM state size N")
    parser.add_argument("--scan", default="auto", help="our scan: auto, chunked or reference")
    args = _timing.parse_common_args(parser, repeats=5, device="cpu")
    warnings.filterwarnings("ignore")
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_config = transformers.MambaConfig(
        vocab_size=1000,
        hidden_size=args.d_model,
        state_size=args.state,
        num_hidden_layers=args.layers,
        use_associative_scan=False,  # the plain sequential fallback (the associative one needs torch.compile)
    )
    torch.manual_seed(0)
    reference = transformers.MambaModel(hf_config).to(args.device)
    cfg = config_from_transformers(hf_config, scan=args.scan)
    ours = MambaLM(cfg).to(args.device)
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    backbone = ours.backbone  # MambaModel's output is the final normalised hidden state, as transformers'
    ids = torch.randint(0, 1000, (args.batch, args.length), device=args.device)

    with torch.no_grad():
        difference = (backbone(ids) - reference(ids).last_hidden_state).abs().max().item()
    _timing.print_setup(
        args,
        "median",
        f"Mamba {args.layers}x{args.d_model} (N={args.state}), batch {args.batch} x length {args.length}, "
        f"our scan {args.scan}",
    )

    def forward(model, hf: bool):
        with torch.no_grad():
            out = model(ids)
            return out.last_hidden_state if hf else out

    timings = _timing.time_alternately(
        {"ours": lambda: forward(backbone, False), "transformers": lambda: forward(reference, True)},
        args.repeats,
        args.device,
        warmup=1,
    )
    print_ratio("forward", timings, difference)

    timings = _timing.time_alternately(
        {
            "ours": lambda: backbone(ids).square().mean().backward(),
            "transformers": lambda: reference(ids).last_hidden_state.square().mean().backward(),
        },
        args.repeats,
        args.device,
        warmup=1,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    print_ratio("forward + backward", timings, difference)


def print_ratio(label: str, timings, difference: float) -> None:
    ours, theirs = timings["ours"].median, timings["transformers"].median
    print(
        f"{label:<20} ours {1e3 * ours:9.1f} ms   transformers {1e3 * theirs:9.1f} ms   "
        f"speed-up transformers/ours {theirs / ours:6.2f}x   max |diff| {difference:.1e}"
    )


if __name__ == "__main__":
    main()
