"""Benchmark: our Sam against transformers' SamModel, same tiny random config, weights and inputs.

Times the forward pass (image encoder + prompt encoder + mask decoder, 3 masks for each of 4 point
prompts per image) and prints ours / transformers' time ratio (below 1: ours is faster). The two run
alternately, repeat after repeat, so machine noise hits both alike; the median is reported.

    python benchmarks/bench_segment_anything.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench segment-anything -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.vision.sam import Sam
from aicanon.vision.sam_weights import config_from_transformers, from_transformers


def build(image_size: int, device: torch.device):
    from transformers import SamConfig, SamModel
    from transformers.models.sam.configuration_sam import (
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    grid = image_size // 16
    vision = SamVisionConfig(hidden_size=192, output_channels=128, num_hidden_layers=4, num_attention_heads=3,
                             image_size=image_size, patch_size=16, mlp_dim=768, window_size=8,
                             global_attn_indexes=[1, 3], num_pos_feats=64)  # fmt: skip
    prompt = SamPromptEncoderConfig(
        hidden_size=128, image_size=image_size, patch_size=16, image_embedding_size=grid
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=128, mlp_dim=512, num_attention_heads=8, iou_head_hidden_dim=128
    )
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    torch.manual_seed(0)
    reference = SamModel(config).eval().to(device)
    with torch.no_grad():  # transformers' SAM init leaves most weights near zero: make outputs non-trivial
        for name, parameter in reference.named_parameters():
            if "positional_embedding" not in name:
                parameter.normal_(0, 0.05)
    ours_config = config_from_transformers(config)
    ours = Sam(ours_config).eval()
    ours.load_state_dict(from_transformers(reference.state_dict(), ours_config))
    return ours.to(device), reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=256, help="input side (1024 in the paper)")
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", f"forward, {args.image_size} px, batch 2, 4 point prompts x 3 masks")
    ours, reference = build(args.image_size, args.device)
    torch.manual_seed(1)
    images = torch.randn(2, 3, args.image_size, args.image_size, device=args.device)
    points = torch.rand(2, 4, 1, 2, device=args.device) * args.image_size
    labels = torch.ones(2, 4, 1, dtype=torch.long, device=args.device)
    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        masks, _ = ours(images, points, labels)
        expected = reference(pixel_values=images, input_points=points, input_labels=labels).pred_masks
        difference = (masks - expected).abs().max().item()
        timings = _timing.time_alternately(
            {
                "ours": lambda: ours(images, points, labels),
                "transformers": lambda: reference(
                    pixel_values=images, input_points=points, input_labels=labels
                ),
            },
            args.repeats,
            args.device,
            warmup=2,
        )
    _timing.print_comparison(
        "tiny SAM forward",
        timings,
        "median",
        note=f"max |diff| {difference:.1e} (|masks| up to {masks.abs().max():.1e})",
        width=24,
    )


if __name__ == "__main__":
    main()
