"""Benchmark: a LoRA training step, ours (Llama + apply_lora) against peft on transformers' LlamaForCausalLM.

Same base weights (converted), same adapter (r = 8 on q_proj and v_proj, B set non-zero so both compute
the same non-trivial function), same token batch; one step is forward, cross-entropy of the next
token, backward and an AdamW step on the LoRA parameters. Prints ours / peft's median step time and
the memory each keeps for training: trainable parameters, Adam-state bytes and gradient bytes (ratios
below 1: ours uses less). The two run alternately, repeat after repeat.

    python benchmarks/bench_lora.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench lora``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch
import torch.nn.functional as F

from aicanon.align.lora import apply_lora, load_adapter_state_dict
from aicanon.language.llama import Llama
from aicanon.language.llama_weights import config_from_transformers, from_transformers


def _state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        v.numel() * v.element_size()
        for s in optimizer.state.values()
        for v in s.values()
        if isinstance(v, torch.Tensor)
    )


def _grad_bytes(model: torch.nn.Module) -> int:
    return sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)


def compare(
    name: str, hidden: int, layers: int, heads: int, batch: int, length: int, device, repeats: int
) -> None:
    import peft
    import transformers

    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(
        vocab_size=512,
        hidden_size=hidden,
        intermediate_size=int(hidden * 8 / 3),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=max(256, length),
        attn_implementation="sdpa",
    )
    reference = transformers.LlamaForCausalLM(hf_cfg)
    cfg = config_from_transformers(hf_cfg)
    ours = Llama(cfg)
    ours.load_state_dict(from_transformers(reference.state_dict(), cfg))
    reference = peft.get_peft_model(
        reference, peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    )
    apply_lora(ours, ["q_proj", "v_proj"], r=8, alpha=16)
    with torch.no_grad():
        for n, p in reference.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    load_adapter_state_dict(ours, peft.get_peft_model_state_dict(reference))
    reference.to(device).train()
    ours.to(device).train()
    ids = torch.randint(0, 512, (batch, length + 1), generator=torch.Generator().manual_seed(1)).to(device)
    x, y = ids[:, :-1], ids[:, 1:]
    with torch.no_grad():
        difference = (ours(x) - reference(input_ids=x).logits).abs().max().item()
    optimizers = {
        "ours": torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-4),
        "peft": torch.optim.AdamW([p for p in reference.parameters() if p.requires_grad], lr=1e-4),
    }

    def step(model, logits_of, optimizer):
        optimizer.zero_grad(set_to_none=False)
        logits = logits_of(model)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
        optimizer.step()

    timings = _timing.time_alternately(
        {
            "ours": lambda: step(ours, lambda m: m(x), optimizers["ours"]),
            "peft": lambda: step(reference, lambda m: m(input_ids=x).logits, optimizers["peft"]),
        },
        repeats,
        device,
        warmup=3,
    )
    _timing.print_comparison(
        name, timings, "median", ours="ours", note=f"max |diff| {difference:.1e}", width=40
    )
    trainable = {
        k: sum(p.numel() for p in m.parameters() if p.requires_grad)
        for k, m in (("ours", ours), ("peft", reference))
    }
    state = {k: _state_bytes(o) for k, o in optimizers.items()}
    grads = {"ours": _grad_bytes(ours), "peft": _grad_bytes(reference)}
    print(
        f"{'':<40}   trainable ours {trainable['ours']} / peft {trainable['peft']}"
        f"   Adam state ratio {state['ours'] / state['peft']:.2f} ({state['ours']} B)"
        f"   gradient bytes ratio {grads['ours'] / grads['peft']:.2f} ({grads['ours']} B)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-small", action="store_true", help="only the tiny configuration")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "LoRA training step (forward, backward, AdamW)")
    compare("tiny (2 x 64, 4 heads), 8 x 64 tokens", 64, 2, 4, 8, 64, args.device, args.repeats)
    if not args.skip_small:
        compare(
            "small (4 x 256, 4 heads), 8 x 128 tokens",
            256,
            4,
            4,
            8,
            128,
            args.device,
            max(3, args.repeats // 4),
        )


if __name__ == "__main__":
    main()
