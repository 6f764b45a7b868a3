"""Benchmark: our Swin-T and DeiT-S (distilled) against timm's, same weights and inputs, one process.

Times forward + backward (sum of squares of the logits) of Swin-T (``swin_tiny_patch4_window7_224``)
and DeiT-S with the distillation token (``deit_small_distilled_patch16_224``) at 224x224, batch 2,
and prints ours / timm's time ratio (below 1: ours is faster). The two run alternately, repeat after
repeat; the median is reported. Both models are checked to give the same logits first.

    python benchmarks/bench_visual_transformer_survey.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench visual-transformer-survey -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.deit import deit
from aicanon.vision.deit import from_timm as deit_from_timm
from aicanon.vision.swin import from_timm as swin_from_timm
from aicanon.vision.swin import swin


def compare(
    label: str, timm_name: str, ours: torch.nn.Module, from_timm, args: argparse.Namespace, batch: int
) -> None:
    import timm

    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False, drop_path_rate=0.0).to(args.device).eval()
    load_state_dict_strict(ours, from_timm(reference.state_dict()), source=f"timm {timm_name} state dict")
    ours = ours.to(args.device).eval()
    x = torch.randn(batch, 3, 224, 224, device=args.device)
    _timing.compare_image_models(label, ours, reference, x, args.repeats, args.device, width=36)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2, help="images per call")
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", f"forward + backward at 224x224, batch {args.batch}")
    for label, timm_name, build, from_timm in (
        ("Swin-T (28.3M parameters)", "swin_tiny_patch4_window7_224", lambda: swin("T"), swin_from_timm),
        ("DeiT-S distilled (22.4M)", "deit_small_distilled_patch16_224", lambda: deit("S"), deit_from_timm),
    ):
        compare(label, timm_name, build(), from_timm, args, args.batch)


if __name__ == "__main__":
    main()
