"""Benchmark: our ViT-S/16 against timm's vit_small_patch16_224, same weights and inputs, one process.

Times forward + backward (sum of squares of the logits) at 224x224 on a batch of 2 (``--batch``) and
prints ours / timm's time ratio (below 1: ours is faster). The two run alternately, repeat after
repeat; the median is reported. ``--tiny`` swaps in a 2-layer width-64 ViT at 32x32 for a quick check.

    python benchmarks/bench_vit.py [--device cpu|cuda] [--threads N] [--repeats R] [--batch B] [--tiny]

(also ``aicanon bench vit``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.vit import VisionTransformer, vit
from aicanon.vision.vit_weights import from_timm


def main() -> None:
    import timm

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2, help="images per batch")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer width-64 ViT at 32x32")
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of the classifier")
    torch.manual_seed(0)
    if args.tiny:
        kwargs = {
            "img_size": 32,
            "patch_size": 4,
            "embed_dim": 64,
            "depth": 2,
            "num_heads": 4,
            "num_classes": 10,
        }
        ours, label = VisionTransformer(**kwargs), "ViT 2x64/4 at 32x32"
        reference = timm.create_model("vit_small_patch16_224", pretrained=False, **kwargs)
        size = 32
    else:
        ours, label = vit("S/16"), "ViT-S/16 at 224x224"
        reference = timm.create_model("vit_small_patch16_224", pretrained=False)
        size = 224
    load_state_dict_strict(ours, from_timm(reference.state_dict(), grid_size=ours.grid_size))
    ours, reference = ours.to(args.device).eval(), reference.to(args.device).eval()
    x = torch.randn(args.batch, 3, size, size, device=args.device)
    _timing.compare_image_models(
        f"{label}, batch {args.batch}", ours, reference, x, args.repeats, args.device
    )


if __name__ == "__main__":
    main()
