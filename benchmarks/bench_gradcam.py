"""Grad-CAM: ours (aicanon.explain.gradcam.grad_cam) against captum's LayerGradCam, one process.

The same small CNN, the same images and targets, the same layer; each row prints the median time
of one call, the ratio ours / captum (below 1: ours faster) and the largest difference between the
two maps at the layer's resolution (captum's ``relu_attributions=True`` is Eq. 2's ReLU). Ours also
upsamples the map to the input size (captum's LayerGradCam does not), so the ratio includes that.

    python benchmarks/bench_gradcam.py [--batch 32] [--size 64] [--device cpu|cuda] [--repeats 20]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from captum.attr import LayerGradCam
from torch import nn

from aicanon.explain.gradcam import grad_cam


def small_cnn(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, 10),
    ).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="images per call")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv")
    args = _timing.parse_common_args(parser, repeats=20)
    device = args.device
    torch.manual_seed(0)
    model = small_cnn(args.width).to(device)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    targets = torch.randint(0, 10, (args.batch,), device=device)
    layer = model[7]  # the last conv's ReLU
    captum = LayerGradCam(model, layer)

    def ours():
        return grad_cam(model, images, layer, targets)

    def reference():
        return captum.attribute(images, target=targets, relu_attributions=True)

    ours_map = torch.as_tensor(ours().extras["layer_map"])
    reference_map = reference().detach().cpu()[:, 0]
    diff = (ours_map - reference_map).abs().max().item()
    _timing.print_setup(args, "median")
    timings = _timing.time_alternately({"ours": ours, "captum": reference}, args.repeats, device)
    _timing.print_comparison(
        f"grad_cam {args.batch}x3x{args.size}x{args.size}", timings, "median", note=f"max |diff| {diff:.2e}"
    )


if __name__ == "__main__":
    main()
