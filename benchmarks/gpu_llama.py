"""GPU throughput: training tokens/s and MFU of our Llama against transformers' LlamaForCausalLM.

The 110M-non-embedding configuration (hidden 768, 12 layers, 12 heads, SwiGLU 2048, vocabulary 32000,
sequence 1024, batch 16), bf16 autocast with float32 master weights, AdamW (Llama 2 betas), one
training step = forward + cross-entropy + backward + optimizer step. Timed in one process, same
weights: ours eager, ours under ``torch.compile``, transformers eager attention, transformers SDPA,
transformers SDPA under ``torch.compile``.

MFU = achieved model FLOP/s over the peak, with model FLOPs per token ``6 N + 12 L T d`` (N: non-embedding
parameters including the LM head; the second term is attention's score and value products, PaLM
Appendix B); reported against the card's dense bf16 peak (``--peak-tflops``, H100/H200 SXM: 989) and
against the matmul ceiling measured here (a large bf16 matmul), so it is honest on any card.

    python benchmarks/gpu_llama.py                # on a GPU, ~5-8 minutes on an H200
    python benchmarks/gpu_llama.py --smoke        # tiny config on CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from _gpu import matmul_ceiling, time_lm_training

from aicanon.core.device import select_device
from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.llama_weights import from_transformers

FULL = dict(
    vocab_size=32000,
    hidden_size=768,
    intermediate_size=2048,
    num_layers=12,
    num_heads=12,
    num_kv_heads=12,
    max_seq_len=1024,
)
SMOKE = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=160,
    num_layers=2,
    num_heads=4,
    num_kv_heads=4,
    max_seq_len=64,
)


def flops_per_token(cfg: LlamaConfig, seq_len: int) -> float:
    with torch.device("meta"):
        n = Llama(cfg).num_parameters(exclude_embeddings=True)
    return 6 * n + 12 * cfg.num_layers * seq_len * cfg.hidden_size


def reference_model(cfg: LlamaConfig, attention: str):
    import transformers

    return transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads,
            max_position_embeddings=cfg.max_seq_len,
            rms_norm_eps=cfg.norm_eps,
            rope_parameters={"rope_theta": cfg.rope_theta, "rope_type": "default"},
            attn_implementation=attention,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny config, few steps (CPU check)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="card's dense bf16 peak (H100/H200 SXM: 989)"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs")
    parser.add_argument(
        "--skip-eager-reference", action="store_true", help="skip transformers' eager attention"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = select_device(args.device)
    if args.smoke:
        cfg, args.batch_size, args.seq_len, args.steps, args.warmup = LlamaConfig(**SMOKE), 2, 32, 2, 1
    else:
        cfg = LlamaConfig(**FULL)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    ceiling = matmul_ceiling(device, 8192 if device.type == "cuda" else 256)
    per_token = flops_per_token(cfg, args.seq_len)
    tokens = args.batch_size * args.seq_len
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    with torch.device("meta"):
        n_params = Llama(cfg).num_parameters(exclude_embeddings=True)
    print(
        f"device {name}, torch {torch.__version__}, non-embedding parameters {n_params / 1e6:.1f} M, "
        f"batch {args.batch_size} x {args.seq_len}, bf16 autocast: {device.type == 'cuda'}"
    )
    print(
        f"model FLOPs/token {per_token / 1e6:.1f} M; measured matmul ceiling {ceiling / 1e12:.1f} TFLOP/s; "
        f"peak assumed {args.peak_tflops} TFLOP/s"
    )

    torch.manual_seed(0)
    reference = reference_model(cfg, "sdpa").to(device)
    state = reference.state_dict()
    ids = torch.randint(0, cfg.vocab_size, (args.batch_size, args.seq_len + 1), device=device)

    def ours():
        model = Llama(cfg).to(device)
        load_state_dict_strict(model, from_transformers(state, cfg))
        return model

    def theirs(attention):
        model = reference_model(cfg, attention).to(device)
        model.load_state_dict(state)
        return model

    runs = [("ours eager", lambda: ours(), False, False)]
    if not args.no_compile:
        runs.append(("ours torch.compile", lambda: ours(), False, True))
    if not args.skip_eager_reference:
        runs.append(("transformers eager attention", lambda: theirs("eager"), True, False))
    runs.append(("transformers sdpa", lambda: theirs("sdpa"), True, False))
    if not args.no_compile:
        runs.append(("transformers sdpa torch.compile", lambda: theirs("sdpa"), True, True))
    del reference
    results = {}
    for label, build, hf, compiled in runs:
        model = build()
        if compiled:
            model = torch.compile(model)
        start = time.perf_counter()
        seconds = time_lm_training(model, ids, device, args.steps, args.warmup, hf=hf, betas=(0.9, 0.95))
        rate = tokens / seconds
        achieved = rate * per_token
        results[label] = rate
        print(
            f"{label:<34} {seconds * 1e3:9.1f} ms/step  {rate:12,.0f} tokens/s  "
            f"MFU {100 * achieved / (args.peak_tflops * 1e12):5.1f} % of peak, "
            f"{100 * achieved / ceiling:5.1f} % of measured matmul  (run {time.perf_counter() - start:.0f} s)"
        )
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    base = results.get("transformers sdpa")
    if base:
        for label, rate in results.items():
            print(f"  {label:<34} throughput / transformers sdpa = {rate / base:.2f}")


if __name__ == "__main__":
    main()
