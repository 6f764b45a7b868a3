"""GPU throughput: training tokens/s and MFU of a 12 x 768 Mamba LM with the Triton selective scan.

Configuration: d_model 768, 12 blocks, N = 16, expand 2, vocabulary 50280 (the released models'),
sequence 1024, batch 16, bf16 autocast with float32 master weights, AdamW; one training step =
forward + cross-entropy + backward + optimizer step. Before timing, the Triton scan is checked
against the chunked PyTorch scan on the GPU (forward and gradients) and the script stops if they
differ. The issue's target: at least 100k training tokens/s on an H200 (transformers' fallback path:
412 tokens/s there; ``--reference`` times it for one step of one sequence).

MFU = model FLOP/s over the peak, with FLOPs per token ``6 N + 3 * 9 E N_state * n_layer`` (N:
parameters except the embedding, the tied head counted once as a matmul; the second term is the scan,
about 9 flops per state element forward, tripled for backward), against the card's dense bf16 peak
(``--peak-tflops``, H100/H200 SXM: 989) and against a measured large bf16 matmul.

    python benchmarks/gpu_mamba.py                 # on a CUDA machine, about 2 minutes
    python benchmarks/gpu_mamba.py --smoke         # tiny model on CPU (chunked scan): the script runs
"""

from __future__ import annotations

import argparse
import warnings

import torch
from _gpu import matmul_ceiling, time_lm_training

from aicanon.core.device import select_device
from aicanon.language.mamba import MambaConfig, MambaLM
from aicanon.language.selective_scan import selective_scan_chunked, selective_scan_triton

FULL = dict(d_model=768, n_layer=12, vocab_size=50280, d_state=16)
SMOKE = dict(d_model=32, n_layer=2, vocab_size=256, d_state=4)


def check_triton(device: torch.device) -> None:
    """Triton scan against the chunked scan on this GPU; raises if forward or gradients differ."""
    torch.manual_seed(0)
    b, length, channels, state = 2, 300, 96, 16
    tensors = [
        torch.randn(b, length, channels, device=device),
        0.5 * torch.randn(b, length, channels, device=device),
        -(torch.rand(channels, state, device=device) * 3 + 0.1),
        torch.randn(b, length, state, device=device),
        torch.randn(b, length, state, device=device),
        torch.randn(channels, device=device),
        torch.randn(b, length, channels, device=device),
        0.3 * torch.randn(channels, device=device),
    ]
    results = []
    for scan in (selective_scan_triton, selective_scan_chunked):
        leaves = [t.clone().requires_grad_() for t in tensors]
        y = scan(*leaves, delta_softplus=True)
        (y * torch.linspace(-1, 1, y.numel(), device=device).view_as(y)).sum().backward()
        results.append([y.detach()] + [t.grad for t in leaves])
    worst = max(
        ((a - c).abs().max() / c.abs().max().clamp(min=1)).item() for a, c in zip(results[0], results[1])
    )
    print(f"triton vs chunked scan on {device}: largest relative difference {worst:.1e}")
    if worst > 1e-3:
        raise SystemExit("the Triton scan disagrees with the chunked scan; not timing it")


def flops_per_token(cfg: MambaConfig) -> float:
    with torch.device("meta"):
        model = MambaLM(cfg)
    params = sum(p.numel() for p in model.parameters())  # the tied embedding/head counted once: the head
    scan = 3 * 9 * cfg.d_inner * cfg.d_state * cfg.n_layer
    return 6 * params + scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU with the chunked scan")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the card")
    parser.add_argument("--reference", action="store_true", help="also time transformers' fallback (1 x seq)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = torch.device("cpu") if args.smoke else select_device(args.device)
    if args.smoke:
        args.batch_size, args.seq_len, args.steps, args.warmup = 2, 64, 2, 1
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        check_triton(device)
    cfg = MambaConfig(**(SMOKE if args.smoke else FULL), scan="auto" if device.type == "cuda" else "chunked")
    torch.manual_seed(0)
    model = MambaLM(cfg).to(device)
    ids = torch.randint(0, cfg.vocab_size, (args.batch_size, args.seq_len + 1), device=device)
    seconds = time_lm_training(model, ids, device, args.steps, args.warmup)
    tokens = args.batch_size * args.seq_len
    tokens_per_second = tokens / seconds
    achieved = tokens_per_second * flops_per_token(cfg)
    ceiling = matmul_ceiling(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{name}: Mamba {cfg.n_layer}x{cfg.d_model} (N={cfg.d_state}), "
        f"batch {args.batch_size} x {args.seq_len}, "
        f"scan={'triton' if device.type == 'cuda' else 'chunked'}, bf16 autocast"
    )
    print(
        f"ours: {1e3 * seconds:8.1f} ms/step   {tokens_per_second:10.0f} tokens/s   "
        f"MFU {100 * achieved / (args.peak_tflops * 1e12):5.1f} % of peak, "
        f"{100 * achieved / ceiling:5.1f} % of the measured matmul ({ceiling / 1e12:.0f} TFLOP/s)"
    )
    if args.reference:
        import transformers

        hf_model = transformers.MambaForCausalLM(
            transformers.MambaConfig(
                vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layer,
                state_size=cfg.d_state, use_associative_scan=False,
            )
        ).to(device)  # fmt: skip
        hf_seconds = time_lm_training(hf_model, ids[:1], device, 1, 1, hf=True)
        print(f"transformers fallback: {args.seq_len / hf_seconds:10.0f} tokens/s (1 x {args.seq_len})")


if __name__ == "__main__":
    main()
