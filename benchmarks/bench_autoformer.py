"""Benchmark: our Auto-Correlation layer against transformers' AutoformerAttention, same weights and inputs.

Times forward + backward of one self auto-correlation layer (d_model 512, 8 heads, c = 1, the paper's
sizes) on a batch of 32 series of length L = 96, 192, 336 and 720, in training mode (lags shared by
the batch) and in evaluation mode (lags per sample, forward only), and prints ours / transformers'
time ratio (below 1: ours is faster). The two layers run alternately, repeat after repeat; the
median is reported.

The outputs are compared first on one sample (transformers mixes samples when a batch meets several
heads, see tests/timeseries/test_autoformer.py), so the timed functions are the same computation.

    python benchmarks/bench_autoformer.py [--device cpu|cuda] [--threads N] [--repeats R] [--batch B]

(also ``aicanon bench autoformer -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.timeseries.autocorrelation import AutoCorrelation

NAMES = {"q_proj": "query", "k_proj": "key", "v_proj": "value", "out_proj": "output"}


def compare(length: int, batch: int, training: bool, device: torch.device, repeats: int) -> None:
    from transformers.models.autoformer.modeling_autoformer import AutoformerAttention

    torch.manual_seed(0)
    reference = AutoformerAttention(embed_dim=512, num_heads=8, autocorrelation_factor=1).to(device)
    ours = AutoCorrelation(512, 8, factor=1).to(device)
    ours.load_state_dict(
        {NAMES[k.split(".")[0]] + "." + k.split(".")[1]: v for k, v in reference.state_dict().items()}
    )
    reference.train(training)
    ours.train(training)
    x = torch.randn(batch, length, 512, device=device)
    with torch.no_grad():
        one = x[:1]
        difference = (ours(one, one, one) - reference(one)[0]).abs().max().item()
    if training:
        callables = {
            "ours": lambda: ours(x, x, x).square().mean().backward(),
            "transformers": lambda: reference(x)[0].square().mean().backward(),
        }
        before = {
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        }
    else:

        def forward(module, *args):
            with torch.no_grad():
                return module(*args)

        callables = {"ours": lambda: forward(ours, x, x, x), "transformers": lambda: forward(reference, x)}
        before = None
    timings = _timing.time_alternately(callables, repeats, device, warmup=2, before_each=before)
    mode = "train fwd+bwd" if training else "eval forward"
    _timing.print_comparison(
        f"L={length:4d} B={batch} {mode}", timings, "median", note=f"max |diff| {difference:.1e}", width=30
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="series per batch")
    parser.add_argument("--lengths", type=int, nargs="+", default=[96, 192, 336, 720])
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "one Auto-Correlation layer, d_model 512, 8 heads, c = 1")
    for training in (True, False):
        for length in args.lengths:
            compare(length, args.batch, training, args.device, args.repeats)


if __name__ == "__main__":
    main()
