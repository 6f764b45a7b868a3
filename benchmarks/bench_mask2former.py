"""Benchmark: our Mask2Former heads against transformers', same weights and backbone features.

Builds ``transformers.Mask2FormerForUniversalSegmentation`` on a small random config (Swin backbone),
copies its weights into :class:`aicanon.vision.mask2former.Mask2Former` with ``from_transformers``,
and times the forward pass (no gradients) of the pixel decoder + masked-attention decoder of both on
the same backbone features: ours ``decode(features)`` against transformers' pixel decoder + transformer
module + class head. The two run alternately; the median is reported with ours / reference ratio.

    python benchmarks/bench_mask2former.py [--device cpu|cuda] [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.vision.mask2former import Mask2Former, from_transformers


def build(size: str, device: torch.device):
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    hidden, queries, layers, image = (32, 6, 4, 64) if size == "tiny" else (256, 100, 10, 256)
    backbone = SwinConfig(
        image_size=image,
        patch_size=4,
        embed_dim=16 if size == "tiny" else 96,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4 if size == "tiny" else 8,
        drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=backbone,
        num_labels=20,
        hidden_dim=hidden,
        feature_size=hidden,
        mask_feature_size=hidden,
        num_queries=queries,
        num_attention_heads=4 if size == "tiny" else 8,
        decoder_layers=layers,
        dim_feedforward=4 * hidden if size == "tiny" else 2048,
        encoder_feedforward_dim=4 * hidden if size == "tiny" else 1024,
        encoder_layers=2 if size == "tiny" else 6,
    )
    torch.manual_seed(0)
    reference = Mask2FormerForUniversalSegmentation(config).eval().to(device)
    ours = Mask2Former(
        20,
        None,
        reference.model.pixel_level_module.encoder.channels,
        dim=hidden,
        mask_dim=hidden,
        num_queries=queries,
        num_heads=config.num_attention_heads,
        decoder_layers=layers - 1,
        decoder_ffn_dim=config.dim_feedforward,
        encoder_layers=config.encoder_layers,
        encoder_ffn_dim=config.encoder_feedforward_dim,
    )
    ours.load_state_dict(from_transformers(reference.state_dict()), strict=True)
    ours = ours.eval().to(device)
    x = torch.randn(2, 3, image, image, device=device)
    with torch.no_grad():
        features = reference.model.pixel_level_module.encoder(x).feature_maps
    return reference, ours, features


def reference_heads(reference, features):
    pixel = reference.model.pixel_level_module.decoder(features)
    decoded = reference.model.transformer_module(pixel.multi_scale_features, pixel.mask_features)
    return reference.class_predictor(
        decoded.intermediate_hidden_states[-1].transpose(0, 1)
    ), decoded.masks_queries_logits[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward of pixel decoder + transformer decoder + heads")
    for size in ("tiny", "base"):
        reference, ours, features = build(size, args.device)
        with torch.no_grad():
            expected_logits, expected_masks = reference_heads(reference, features)
            got = ours.decode(features)
            difference = max(
                (got.pred_logits - expected_logits).abs().max().item(),
                (got.pred_masks - expected_masks).abs().max().item(),
            )

        def run_ours():
            with torch.no_grad():
                return ours.decode(features)

        def run_reference():
            with torch.no_grad():
                return reference_heads(reference, features)

        timings = _timing.time_alternately(
            {"ours": run_ours, "transformers": run_reference}, args.repeats, args.device, warmup=2
        )
        label = "tiny (d=32, 6 queries, 64 px)" if size == "tiny" else "base (d=256, 100 queries, 256 px)"
        _timing.print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}", width=36)


if __name__ == "__main__":
    main()
