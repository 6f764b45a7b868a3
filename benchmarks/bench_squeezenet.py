"""SqueezeNet: ours (aicanon.vision.squeezenet) against torchvision's, forward + backward, one process.

Both models hold the same weights (ours loads torchvision's state dict) and see the same batch of
224x224 images; each row prints the time of one forward + backward pass of each, the ratio
ours/torchvision (below 1: ours faster) and the largest difference between the logits.

    python benchmarks/bench_squeezenet.py [--repeats 10] [--threads 2] [--device cpu] [--batch 8]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torchvision.models.squeezenet import SqueezeNet as TorchvisionSqueezeNet

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.squeezenet import SqueezeNet, from_torchvision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per pass")
    parser.add_argument("--size", type=int, default=224, help="image height and width")
    args = _timing.parse_common_args(parser, repeats=10, threads=2, device="cpu")
    device = args.device
    rows = []
    for version in ("1_0", "1_1"):
        torch.manual_seed(0)
        reference = TorchvisionSqueezeNet(version).to(device).train()
        ours = SqueezeNet(version).to(device).train()
        load_state_dict_strict(ours, from_torchvision(reference.state_dict()))
        x = torch.randn(args.batch, 3, args.size, args.size, device=device)
        with torch.no_grad():
            reference.eval(), ours.eval()
            diff = (ours(x) - reference(x)).abs().max().item()
            reference.train(), ours.train()

        def step(model, x=x):
            def run():
                model(x).sum().backward()

            return run

        timings = _timing.time_alternately(
            {"ours": step(ours), "torchvision": step(reference)},
            args.repeats,
            device,
            before_each={
                "ours": lambda m=ours: m.zero_grad(set_to_none=True),
                "torchvision": lambda m=reference: m.zero_grad(set_to_none=True),
            },
        )
        rows.append((f"SqueezeNet v{version} fwd+bwd {args.batch}x3x{args.size}x{args.size}", timings, diff))
    _timing.print_setup(args, "median", "forward + backward, train mode")
    for name, timings, diff in rows:
        _timing.print_comparison(name, timings, "median", note=f"max |logit diff| (eval) {diff:.2e}")


if __name__ == "__main__":
    main()
