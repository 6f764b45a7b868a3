"""Benchmark: our Mixer-S/16 against timm's mixer_s16_224, same weights and inputs, one process.

Times forward + backward (sum of squares of the logits) at 224x224 on a batch of 2 (``--batch``) and
prints ours / timm's time ratio (below 1: ours is faster). The two run alternately, repeat after
repeat; the median is reported. ``--tiny`` swaps in a 2-layer width-64 Mixer at 32x32.

    python benchmarks/bench_mlp_mixer.py [--device cpu|cuda] [--threads N] [--repeats R] [--batch B] [--tiny]

(also ``aicanon bench mlp-mixer``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.mlp_mixer import MlpMixer, from_timm, mixer


def main() -> None:
    from timm.models.mlp_mixer import MlpMixer as TimmMixer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2, help="images per batch")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer width-64 Mixer at 32x32")
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of the classifier")
    torch.manual_seed(0)
    if args.tiny:
        ours, label, size = (
            MlpMixer(32, 4, 3, 10, hidden_dim=64, depth=2, tokens_mlp_dim=32, channels_mlp_dim=256),
            "Mixer 2x64/4 at 32x32",
            32,
        )
        reference = TimmMixer(num_classes=10, img_size=32, patch_size=4, num_blocks=2, embed_dim=64)
    else:
        ours, label, size = mixer("S/16"), "Mixer-S/16 at 224x224", 224
        reference = TimmMixer(patch_size=16, num_blocks=8, embed_dim=512)
    load_state_dict_strict(ours, from_timm(reference.state_dict()))
    ours, reference = ours.to(args.device).eval(), reference.to(args.device).eval()
    x = torch.randn(args.batch, 3, size, size, device=args.device)
    _timing.compare_image_models(
        f"{label}, batch {args.batch}", ours, reference, x, args.repeats, args.device
    )


if __name__ == "__main__":
    main()
