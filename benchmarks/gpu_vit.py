"""GPU throughput: ViT-B/16 training images/s, ours against timm's vit_base_patch16_224.

One training step = forward + cross-entropy + backward + AdamW step at 224x224, batch 128 (``--batch``),
1000 classes, same initial weights. Timed in one process, alternating: timm eager float32 (the
reference figure: 2,692 images/s on an H200 is timm eager), timm eager bf16 autocast, ours eager bf16,
and, unless ``--no-compile``, timm and ours under ``torch.compile``. Ours uses bf16 autocast, fused
AdamW and channels-last input; the goal is >= 1.5x timm eager.

    python benchmarks/gpu_vit.py                  # on a GPU, a few minutes
    python benchmarks/gpu_vit.py --smoke          # tiny config on CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F

from aicanon.core.device import select_device
from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.vit import VisionTransformer, vit
from aicanon.vision.vit_weights import from_timm


def make_step(model: torch.nn.Module, device: torch.device, bf16: bool, fused: bool, channels_last: bool):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused and device.type == "cuda")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(
    steps: dict, x: torch.Tensor, y: torch.Tensor, device: torch.device, warmup: int, iters: int
) -> dict:
    for fn in steps.values():  # compile and autotune outside the timing
        for _ in range(warmup):
            fn(x, y)
    times = {name: [] for name in steps}
    for _ in range(iters):
        for name, fn in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn(x, y)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: x.shape[0] / sorted(t)[len(t) // 2] for name, t in times.items()}


def main() -> None:
    import timm

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny ViT on CPU, 2 iterations")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = torch.device("cpu") if args.smoke else select_device(args.device)
    torch.manual_seed(0)
    if args.smoke:
        kwargs = {
            "img_size": 32,
            "patch_size": 8,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "num_classes": 10,
        }
        make_ours = lambda: VisionTransformer(**kwargs)
        make_timm = lambda: timm.create_model("vit_base_patch16_224", pretrained=False, **kwargs)
        batch, size, classes, iters, warmup = 4, 32, 10, 2, 1
    else:
        make_ours = lambda: vit("B/16")
        make_timm = lambda: timm.create_model("vit_base_patch16_224", pretrained=False)
        batch, size, classes, iters, warmup = args.batch, 224, 1000, args.iters, 3
    reference_weights = make_timm().state_dict()
    models = {}
    for name in (
        "timm eager fp32",
        "timm eager bf16",
        "ours eager bf16",
        "timm compiled bf16",
        "ours compiled bf16",
    ):
        if "compiled" in name and (args.no_compile or args.smoke):
            continue
        model = make_timm() if name.startswith("timm") else make_ours()
        if name.startswith("ours"):
            load_state_dict_strict(model, from_timm(reference_weights, grid_size=model.grid_size))
        else:
            model.load_state_dict(reference_weights)
        model = model.to(device).train()
        fast = name.startswith("ours")
        if fast and device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        runnable = torch.compile(model) if "compiled" in name else model
        models[name] = make_step(runnable, device, bf16="bf16" in name, fused=fast, channels_last=fast)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    throughput = measure(models, x, y, device, warmup, iters)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, batch {batch}, {size}x{size}, median of {iters} steps")
    base = throughput["timm eager fp32"]
    for label, value in throughput.items():
        print(f"{label:<22} {value:10.1f} images/s   x{value / base:5.2f} vs timm eager fp32")


if __name__ == "__main__":
    main()
