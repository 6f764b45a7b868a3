"""Llama 2, Table 18: grouped-query attention keeps multi-head attention's quality with a smaller KV cache.

Touvron et al. (2023), Section 2.2 and Appendix A.2.1: to make inference of the 34B and 70B models
affordable, Llama 2 shares each key/value projection among a group of query heads (GQA, 8 KV heads for
64 query heads in 70B: an 8x smaller KV cache). Their ablation (Table 18: 30B models, 150B tokens,
the FFN widened to keep the parameter count) finds GQA on par with MHA: averaged over the eleven
tasks of the table, MHA scores 44.2 and GQA 44.3 (MQA 43.8). Audit: the table prints no average; 44.2
and 44.3 are the means of its MHA and GQA rows as read from a stored (OCR) copy of the paper; that
copy's MQA row misses a cell, so 43.8 is unverified, as is the 64 query heads of the 70B model
(Appendix A.2.1 confirms GQA with 8 KV projections; Table 1 marks GQA for 34B and 70B).

Our small-scale version, per seed:

1. Tiny Shakespeare by character (90 % / 10 % contiguous split).
2. Train two Llama models with the same recipe (Llama 2 Section 2.2: AdamW beta2 0.95, weight decay
   0.1, cosine to 10 % of the peak after linear warmup, gradient clipping 1.0) on the same batches:
   MHA (``num_heads`` KV heads) and GQA (``gqa_kv_heads`` KV heads), the GQA model's FFN widened so
   both have the same parameter count to within one FFN column per layer (as in Appendix A.2.1).
3. Measure the validation loss of each (the same fixed windows) and the KV cache each holds after a
   ``cache_probe_len``-token prompt, read from the :class:`~aicanon.nn.kv_cache.KVCache`'s tensors.

Claims: the GQA model's validation loss is within 2 % of the MHA model's (quick), and its KV cache is
``num_heads / gqa_kv_heads`` times smaller (4x here; 8x for Llama 2 70B). The broken variant of the
tests (``train_gqa=False``: the GQA model left at its initialisation) fails the first claim, so the
threshold does not pass by itself. The cache ratio follows from the shapes, so it checks that the
cache really holds ``gqa_kv_heads`` heads; the loss ratio is the claim training has to earn. The
numbers, per seed, are in the run's record (``results/llama2/``) and in RESULTS.md.

Departures: characters instead of Llama 2's 32K SentencePiece tokens, a model of about 0.4 M
parameters trained for seconds instead of 30B parameters for 150B tokens, and validation loss
instead of downstream task accuracy (the paper's quantity needs its scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.datasets.text import char_splits, load_tinyshakespeare
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.training import PretrainConfig, evaluate_lm, train_lm


@dataclass
class Config(ExperimentConfig):
    hidden_size: int = 512
    """Model width (Llama 2 30B ablation: 6656; ours is small enough for a CPU at quick scale)."""
    num_layers: int = 8
    """Transformer blocks."""
    num_heads: int = 8
    """Query heads; the MHA model has as many key/value heads."""
    gqa_kv_heads: int = 2
    """Key/value heads of the GQA model (Llama 2 70B: 8 for 64 query heads)."""
    extra_kv_heads: tuple[int, ...] = (1,)
    """Further KV-head counts trained and reported (1 = multi-query attention, Table 18's MQA row)."""
    intermediate_size: int = 1376
    """FFN width of the MHA model; GQA/MQA models get a wider FFN of equal total parameters."""
    match_parameters: bool = True
    """Widen the FFN of models with fewer KV heads to the MHA model's parameter count (Appendix A.2.1)."""
    steps: int = 5000
    """Optimiser steps per model."""
    batch_size: int = 64
    """Sequences per step."""
    seq_len: int = 256
    """Characters per training sequence."""
    lr: float = 1e-3
    """Peak learning rate (the cosine decays to 10 % of it)."""
    warmup_steps: int = 200
    """Linear warmup steps (Llama 2: 2000 at its scale)."""
    eval_every: int = 500
    """Validation every this many steps (for the learning curves)."""
    eval_batches: int = 32
    """Validation windows: ``eval_batches x batch_size`` fixed windows, the same for every model."""
    cache_probe_len: int = 256
    """Prompt length whose KV cache is measured."""
    train_gqa: bool = True
    """False leaves the GQA model untrained: the broken variant that must fail the quality claim."""

    @classmethod
    def quick(cls) -> Config:
        # Two CPU cores, about a minute for both models and both seeds.
        return cls(
            scale="quick",
            seeds=2,
            hidden_size=128,
            num_layers=2,
            num_heads=8,
            gqa_kv_heads=2,
            extra_kv_heads=(),
            intermediate_size=344,
            steps=150,
            batch_size=16,
            seq_len=64,
            lr=3e-3,
            warmup_steps=15,
            eval_every=50,
            eval_batches=16,
            cache_probe_len=128,
        )

    @classmethod
    def full(cls) -> Config:
        # One GPU, minutes per model; three seeds.
        return cls(scale="full", seeds=3)


CLAIMS = [
    Claim(
        metric="gqa_val_loss_ratio",
        description="validation loss of the GQA model over the MHA model's (Table 18: GQA on par with MHA, "
        "average task score 44.3 vs 44.2)",
        paper=None,
        source="Llama 2, Table 18 / Appendix A.2.1",
        quick=1.02,
        full=1.02,
        higher_is_better=False,
    ),
    Claim(
        metric="kv_cache_reduction",
        description="KV cache bytes of the MHA model over the GQA model's, measured from the cache tensors "
        "(Llama 2 70B: 64 query heads share 8 KV heads)",
        paper=8.0,
        source="Llama 2, Section 2.2, Table 1 and Appendix A.2.1 (8 KV projections; 70B's 64 query heads unverified)",
        quick=4.0,
        full=4.0,
        unit="x",
    ),
    Claim(
        metric="mha_val_loss",
        description="validation loss of the MHA model (nats per character; reported)",
        paper=None,
        source="ours",
        higher_is_better=False,
    ),
    Claim(
        metric="gqa_val_loss",
        description="validation loss of the GQA model (nats per character; reported)",
        paper=None,
        source="ours",
        higher_is_better=False,
    ),
]


def _ffn_width(cfg: Config, kv_heads: int) -> int:
    """FFN width giving a model with ``kv_heads`` KV heads the MHA model's parameter count (to within
    one FFN column per layer): the k/v projections it lacks, ``2 h (h - kv d)``, go to ``3 h`` per column."""
    if not cfg.match_parameters:
        return cfg.intermediate_size
    head_dim = cfg.hidden_size // cfg.num_heads
    saved = 2 * cfg.hidden_size * (cfg.num_heads - kv_heads) * head_dim
    return cfg.intermediate_size + round(saved / (3 * cfg.hidden_size))


def _model(cfg: Config, vocab_size: int, kv_heads: int, device: torch.device) -> Llama:
    model_cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=_ffn_width(cfg, kv_heads),
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        num_kv_heads=kv_heads,
        max_seq_len=max(cfg.seq_len, cfg.cache_probe_len),
    )
    return Llama(model_cfg).to(device)


@torch.no_grad()
def _cache_bytes(model: Llama, prompt: torch.Tensor) -> int:
    """Bytes held by the KV cache after reading ``prompt`` (measured from the cache's tensors)."""
    model.eval()
    _, cache = model(prompt, use_cache=True)
    return cache.nbytes()


def run(cfg: Config) -> Result:
    if cfg.num_heads % cfg.gqa_kv_heads:
        raise ValueError(
            f"num_heads must be a multiple of gqa_kv_heads, got {cfg.num_heads} and {cfg.gqa_kv_heads}"
        )
    seed(cfg.seed)
    device = select_device(cfg.device)
    train_ids, val_ids, tokenizer = char_splits(load_tinyshakespeare())
    pretrain = PretrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        eval_every=cfg.eval_every,
        eval_batches=cfg.eval_batches,
    )
    prompt = val_ids[: cfg.cache_probe_len].unsqueeze(0).to(device)
    variants = {"mha": cfg.num_heads, "gqa": cfg.gqa_kv_heads}
    variants.update({f"kv{k}": k for k in cfg.extra_kv_heads})
    metrics: dict[str, float] = {}
    curves: dict[str, list] = {}
    parameters: dict[str, int] = {}
    cache: dict[str, int] = {}
    for name, kv_heads in variants.items():
        # Same initialisation stream and the same batches for every variant (seeded alike).
        torch.manual_seed(cfg.seed)
        model = _model(cfg, tokenizer.vocab_size, kv_heads, device)
        parameters[name] = model.num_parameters()
        batches = torch.Generator().manual_seed(cfg.seed)
        if name == "gqa" and not cfg.train_gqa:
            loss = evaluate_lm(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
            curves[name] = [[0, loss]]
        else:
            history = train_lm(model, train_ids, val_ids, pretrain, batches, description=f"Llama 2 {name}")
            loss = history["final_val_loss"]
            curves[name] = history["val"]
        metrics[f"{name}_val_loss"] = loss
        cache[name] = _cache_bytes(model, prompt)
    metrics["gqa_val_loss_ratio"] = metrics["gqa_val_loss"] / metrics["mha_val_loss"]
    metrics["kv_cache_reduction"] = cache["mha"] / cache["gqa"]
    for name in variants:
        if name not in ("mha", "gqa"):
            metrics[f"{name}_val_loss_ratio"] = metrics[f"{name}_val_loss"] / metrics["mha_val_loss"]

    figure = Figure(figsize=(9, 3.5))
    left, right = figure.subplots(1, 2)
    for name, points in curves.items():
        steps, losses = zip(*points)
        left.plot(steps, losses, marker="o", label=f"{name} ({variants[name]} KV heads)")
    left.set_xlabel("step")
    left.set_ylabel("validation loss (nats/char)")
    left.set_title("Tiny Shakespeare, same batches")
    left.legend()
    names = list(cache)
    right.bar(names, [cache[n] / 1024 for n in names])
    right.set_ylabel(f"KV cache after {cfg.cache_probe_len} tokens (KiB)")
    right.set_title("cache measured from KVCache tensors")
    figure.tight_layout()

    notes = [
        "Characters of Tiny Shakespeare and a ~0.4M-parameter model (quick) instead of 30B models on 150B "
        "tokens; validation loss instead of Table 18's task accuracies.",
        f"GQA/MQA FFN widened to match parameters: {parameters}.",
    ]
    if not cfg.train_gqa:
        notes.append("train_gqa=False: the GQA model is untrained (broken variant).")
    return Result(
        metrics=metrics,
        figures={"gqa_vs_mha": figure},
        details={"curves": curves, "parameters": parameters, "cache_bytes": cache, "kv_heads": variants},
        notes=notes,
    )
