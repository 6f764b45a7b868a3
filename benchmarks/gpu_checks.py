"""Correctness on a GPU (not speed): what the CPU test suite cannot reach.

* Our Llama on CUDA equals the same model on the CPU (float32), with packed ``segment_ids`` too;
* it compiles as one graph (``fullgraph=True``): no host-device sync in the forward pass;
* ``aicanon.align.sft.train_sft`` learns the SFT tests' toy task on CUDA with bf16 autocast.

    python benchmarks/gpu_checks.py        # on a GPU, well under a minute
"""

from __future__ import annotations

import copy

import torch

from aicanon.align.sft import SFTConfig, collate, sft_loss, tokenize_example, train_sft
from aicanon.datasets.text import CharTokenizer
from aicanon.language.llama import Llama, LlamaConfig


def main() -> None:
    import sys

    device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cuda")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=160, num_layers=2, num_heads=4,
                      num_kv_heads=2, max_seq_len=128)  # fmt: skip
    cpu = Llama(cfg).eval()
    gpu = copy.deepcopy(cpu).to(device)
    ids = torch.randint(0, 64, (3, 40))
    segments = torch.tensor([0] * 15 + [1] * 25).expand(3, 40).contiguous()
    for kwargs in ({}, {"segment_ids": segments}):
        want = cpu(ids, **kwargs)
        got = gpu(ids.to(device), **{k: v.to(device) for k, v in kwargs.items()}).cpu()
        err = (want - got).abs().max().item()
        print(f"llama cuda vs cpu {'packed' if kwargs else 'plain'}: max abs diff {err:.2e}")
        assert err < 1e-4
    compiled = torch.compile(gpu, fullgraph=True)
    err = (compiled(ids.to(device)).cpu() - cpu(ids)).abs().max().item()
    print(f"llama compiled fullgraph vs cpu: max abs diff {err:.2e}")
    assert err < 1e-3

    tokenizer = CharTokenizer("abcd\n")
    pairs = [("a", "b"), ("c", "d")] * 4
    examples = [tokenize_example(p, r, tokenizer.encode, end="\n") for p, r in pairs]
    torch.manual_seed(1)
    model = Llama(LlamaConfig(vocab_size=5, hidden_size=32, intermediate_size=64, num_layers=2,
                              num_heads=4, max_seq_len=16)).to(device)  # fmt: skip
    history = train_sft(model, examples, SFTConfig(steps=60, batch_size=4, lr=1e-2, warmup_steps=5,
                                                   packing=True, seq_len=9),
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    batch = {k: v.to(device) for k, v in collate(examples).items()}
    with torch.no_grad():
        loss = sft_loss(model, batch).item()
    print(f"train_sft on cuda (bf16 autocast): final loss {loss:.4f}, last steps {history['loss'][-3:]}")
    assert loss < 0.05
    print("gpu checks passed")


if __name__ == "__main__":
    main()
