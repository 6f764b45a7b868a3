"""Benchmark: our DETR detector against transformers' DetrForObjectDetection, same weights and inputs.

Times forward + backward of the detector from the backbone's projected tokens on (transformers'
``inputs_embeds`` path; the backbones differ and are not compared) for a tiny configuration
(d_model 64, 2 + 2 layers, 4 heads, FFN 128, 10 queries, 6 x 6 tokens, batch 32: the quick
experiment's shape) and for DETR's own transformer shape (d_model 256, 6 + 6 layers, 8 heads, FFN
2048, 100 queries, 25 x 34 tokens of an 800 x 1066 image at stride 32, batch 2). Prints ours /
transformers' median time ratio (below 1: ours faster); the two alternate, repeat after repeat.
Auxiliary outputs are off in both (transformers' auxiliary path feeds normalised states onward).

    python benchmarks/bench_vision_transformers_survey.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-paper]

(also ``aicanon bench vision-transformers-survey -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.detr import Detr, SmallResNet, from_transformers


def compare(name: str, d_model: int, layers: int, heads: int, ffn: int, queries: int, hw: tuple[int, int], batch: int,
            device: torch.device, repeats: int) -> None:  # fmt: skip
    import transformers

    backbone = transformers.ResNetConfig(
        num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], out_features=["stage2"], layer_type="basic"
    )
    config = transformers.DetrConfig(
        backbone_config=backbone, num_channels=1, num_queries=queries, d_model=d_model, encoder_layers=layers,
        decoder_layers=layers, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, encoder_attention_heads=heads,
        decoder_attention_heads=heads, num_labels=10, dropout=0.0, auxiliary_loss=False,
    )  # fmt: skip
    torch.manual_seed(0)
    reference = transformers.DetrForObjectDetection(config).to(device)
    ours = Detr(
        SmallResNet(1, (8, 16)), 10, num_queries=queries, d_model=d_model, num_heads=heads, encoder_layers=layers,
        decoder_layers=layers, ffn_dim=ffn, dropout=0.0, aux_loss=False,
    ).to(device)  # fmt: skip
    load_state_dict_strict(ours, from_transformers(reference.state_dict()), allow_missing=("backbone.",))
    h, w = hw
    tokens = torch.randn(batch, h * w, d_model, device=device)
    if h != w:
        # transformers' inputs_embeds path assumes a square map (it takes sqrt of the length).
        h = w = int((h * w) ** 0.5)
        tokens = tokens[:, : h * w]

    def run_ours():
        out = ours.forward_tokens(tokens, h, w)
        (out.logits.square().mean() + out.boxes.mean()).backward()

    def run_reference():
        out = reference(pixel_values=None, inputs_embeds=tokens)
        (out.logits.square().mean() + out.pred_boxes.mean()).backward()

    with torch.no_grad():  # the same function first: timing two different ones would mean nothing
        difference = (ours.forward_tokens(tokens, h, w).logits - reference(pixel_values=None, inputs_embeds=tokens).logits)
        difference = difference.abs().max().item()
    timings = _timing.time_alternately(
        {"ours": run_ours, "transformers": run_reference},
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(name, timings, "median", note=f"max |diff| {difference:.1e}", width=44)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-paper", action="store_true", help="only the tiny configuration")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of the detector from tokens")
    compare("tiny (d 64, 2+2 layers, 36 tokens, batch 32)", 64, 2, 4, 128, 10, (6, 6), 32, args.device, args.repeats)
    if not args.skip_paper:
        compare("paper shape (d 256, 6+6, ~850 tokens, batch 2)", 256, 6, 8, 2048, 100, (25, 34), 2, args.device,
                max(3, args.repeats // 4))  # fmt: skip


if __name__ == "__main__":
    main()
