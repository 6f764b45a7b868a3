"""GIoU: ours (aicanon.vision.giou) against torchvision.ops on the same boxes, in one process.

Prints the median wall time of each and the ratio ours / torchvision (goal: <= 1). Our functions
validate their inputs (finite, x1 <= x2, y1 <= y2: one device synchronisation per argument), which
torchvision does not; ``--no-check`` is not offered, so the ratio includes that cost.

    python benchmarks/bench_giou.py [--pairwise 2000] [--pairs 200000] [--device cpu|cuda] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision import ops

from aicanon.vision.giou import box_iou, generalized_box_iou, giou_loss


def random_boxes(n: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 500
    wh = torch.rand(n, 2, generator=generator) * 200 + 1
    return torch.cat([xy, xy + wh], dim=1).to(device)


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairwise", type=int, default=2000, help="N = M for the [N, M] pairwise metrics")
    parser.add_argument(
        "--pairs", type=int, default=200_000, help="matched pairs for the loss (forward + backward)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    a, b = random_boxes(args.pairwise, device, g), random_boxes(args.pairwise, device, g)
    pred, target = random_boxes(args.pairs, device, g), random_boxes(args.pairs, device, g)

    def loss_step(fn):
        def step():
            p = pred.clone().requires_grad_(True)
            fn(p, target).backward()

        return step

    cases = [
        (f"box_iou {args.pairwise}x{args.pairwise}", lambda: box_iou(a, b), lambda: ops.box_iou(a, b)),
        (
            f"generalized_box_iou {args.pairwise}x{args.pairwise}",
            lambda: generalized_box_iou(a, b),
            lambda: ops.generalized_box_iou(a, b),
        ),
        (
            f"giou_loss fwd+bwd {args.pairs} pairs",
            loss_step(lambda p, t: giou_loss(p, t, reduction="mean")),
            loss_step(lambda p, t: ops.generalized_box_iou_loss(p, t, reduction="mean")),
        ),
    ]
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'case':44s} {'ours ms':>9s} {'torchvision ms':>15s} {'ratio':>7s}")
    for name, ours, reference in cases:
        t_ours, t_ref = timed(ours, args.repeats, device), timed(reference, args.repeats, device)
        print(f"{name:44s} {t_ours * 1e3:9.2f} {t_ref * 1e3:15.2f} {t_ours / t_ref:7.2f}")


if __name__ == "__main__":
    main()
