"""Benchmark: our selective scan and Mamba model against transformers' pure-PyTorch fallback.

Without the CUDA kernels (``mamba_ssm``, ``causal_conv1d``) transformers runs its slow path: the
selective scan ``mamba_selective_scan`` discretises the whole sequence (``exp(Δ A)`` and ``Δ B x`` as
``[batch, channels, length, state]`` tensors) and runs the recurrence as a Python loop over time (its
"recurrent iteration"). Two comparisons, each on the same inputs in one process, outputs checked
first, timed alternately (median), the ratio transformers / ours printed (above 1: ours is faster):

1. The scan itself: ``x, Δ, A, B, C, D, z`` (the shapes of the model's mixer: channels ``2 d_model``)
   through our :func:`~aicanon.language.selective_scan.selective_scan` (``--scan``, default ``auto``:
   on CPU at length >= 1,024 the compiled step loop) and through transformers' ``mamba_selective_scan``
   (the function its ``MambaMixer`` slow path calls; inputs transposed to its ``[batch, channels,
   length]`` layout).
2. The whole model (``MambaModel``, same weights loaded with ``from_transformers``): forward, and
   forward + backward.

Compiling costs seconds on the first call for a shape (printed, not counted per call). transformers'
backward is very slow (each of its ``L`` indexings ``discrete_A[:, :, i]`` has a backward that writes
a full-size zero tensor), so forward + backward runs ``--backward-repeats`` times (default 1; 0 skips).

    python benchmarks/bench_mamba.py [--length 1024] [--d-model 128] [--layers 2] [--batch 2]
                                     [--state 16] [--scan auto] [--threads 1] [--repeats 5]
                                     [--backward-repeats 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.mamba import MambaLM, config_from_transformers, from_transformers
from aicanon.language.selective_scan import selective_scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=1024, help="sequence length")
    parser.add_argument("--d-model", type=int, default=128, help="model width")
    parser.add_argument("--layers", type=int, default=2, help="Mamba blocks")
    parser.add_argument("--batch", type=int, default=2, help="sequences per batch")
    parser.add_argument("--state", type=int, default=16, help="SSM state size N")
    parser.add_argument("--scan", default="auto", help="our scan: auto, compiled, chunked or reference")
    parser.add_argument("--backward-repeats", type=int, default=1, help="timed forward+backward calls")
    parser.add_argument("--skip-model", action="store_true", help="time the scan only")
    args = _timing.parse_common_args(parser, repeats=5, threads=1, device="cpu")
    warnings.filterwarnings("ignore")
    import transformers
    from transformers.models.mamba.modeling_mamba import mamba_selective_scan
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    _timing.print_setup(
        args,
        "median",
        f"Mamba {args.layers}x{args.d_model} (N={args.state}), batch {args.batch} x length {args.length}, "
        f"our scan {args.scan}",
    )

    # 1. The scan alone, on the mixer's shapes.
    channels = 2 * args.d_model
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, args.length, channels)
    x, delta, z = (torch.randn(shape, generator=g) for _ in range(3))
    A = -torch.arange(1, args.state + 1, dtype=torch.float32).repeat(channels, 1)  # S4D-real
    B, C = (torch.randn(args.batch, args.length, args.state, generator=g) for _ in range(2))
    D, bias = torch.ones(channels), torch.randn(channels, generator=g) - 4.0  # softplus(bias) ~ Δ of init
    leaves = [t.to(args.device) for t in (x, delta, A, B, C, D, z, bias)]

    def ours_scan(x, delta, A, B, C, D, z, bias):
        return selective_scan(x, delta, A, B, C, D, z, bias, True, method=args.scan)

    def theirs_scan(x, delta, A, B, C, D, z, bias):
        t = lambda u: u.transpose(1, 2)  # noqa: E731 - their [batch, channels, length] layout
        return t(mamba_selective_scan(t(x), t(delta), A, t(B), t(C), D, t(z), bias, True))

    start = time.perf_counter()
    with torch.no_grad():
        ours_y = ours_scan(*leaves)
    first = time.perf_counter() - start
    with torch.no_grad():
        difference = (ours_y - theirs_scan(*leaves)).abs().max().item()
    print(f"scan: our first call (compiles when the scan is compiled) {first:.1f} s")
    with torch.no_grad():
        timings = _timing.time_alternately(
            {"ours": lambda: ours_scan(*leaves), "transformers": lambda: theirs_scan(*leaves)},
            args.repeats,
            args.device,
            warmup=1,
        )
    print_ratio("scan forward", timings, difference)
    if args.backward_repeats > 0:
        grads = [t.clone().requires_grad_() for t in leaves]
        start = time.perf_counter()
        ours_scan(*grads).square().mean().backward()
        print(f"scan: our first forward + backward (compiles) {time.perf_counter() - start:.1f} s")
        timings = _timing.time_alternately(
            {
                "ours": lambda: ours_scan(*grads).square().mean().backward(),
                "transformers": lambda: theirs_scan(*grads).square().mean().backward(),
            },
            args.backward_repeats,
            args.device,
            warmup=0,
        )
        print_ratio("scan forward + backward", timings, difference)
    if args.skip_model:
        return

    # 2. The whole model, same weights.
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
    print_ratio("model forward", timings, difference)
    if args.backward_repeats > 0:
        backbone(ids).square().mean().backward()  # compiles the backward when the scan is compiled
        timings = _timing.time_alternately(
            {
                "ours": lambda: backbone(ids).square().mean().backward(),
                "transformers": lambda: reference(ids).last_hidden_state.square().mean().backward(),
            },
            args.backward_repeats,
            args.device,
            warmup=0,
            before_each={
                "ours": lambda: ours.zero_grad(set_to_none=True),
                "transformers": lambda: reference.zero_grad(set_to_none=True),
            },
        )
        print_ratio("model forward + backward", timings, difference)


def print_ratio(label: str, timings, difference: float) -> None:
    ours, theirs = timings["ours"].median, timings["transformers"].median
    print(
        f"{label:<25} ours {1e3 * ours:9.1f} ms   transformers {1e3 * theirs:9.1f} ms   "
        f"speed-up transformers/ours {theirs / ours:6.2f}x   max |diff| {difference:.1e}"
    )


if __name__ == "__main__":
    main()
