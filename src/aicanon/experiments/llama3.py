"""Llama 3, Section 3.2: a larger RoPE base (and Llama 3.1's frequency scaling) for longer contexts.

Dubey et al. (2024), Section 3.2: "We increase the RoPE base frequency hyperparameter to 500,000. This
enables us to better support longer contexts; Xiong et al. (2023) showed this value to be effective
for context lengths up to 32,768." Llama 3 then extends the context in continued pre-training
(Section 3.4.2); Llama 3.1 rescales RoPE's low frequencies (factor 8 beyond 8K wavelengths) to reach
128K. The paper gives no number for the base alone, so this experiment measures what changes at
small scale and claims only what holds robustly across seeds.

Per seed:

1. Tiny Shakespeare by character; train two identical Llama models at context ``train_len`` (256)
   with the Llama 2/3 recipe on the same batches, one with RoPE base 10,000 (Llama 2) and one with
   500,000 (Llama 3).
2. Evaluate both on the same validation windows of ``eval_len`` (1024) characters, four times the
   training context, with no further training; also each model with Llama 3.1's frequency scaling
   (``factor = eval_len / train_len``, ``original_max_position_embeddings = train_len``, low/high
   frequency factors 1 and 4) switched on at evaluation time.
3. Report the loss (nats/char; perplexity = exp) on positions inside the training context
   (``< train_len``) and beyond it (``>= train_len``), and their ratio.

Departures: characters, a ~0.4 M-parameter model, seconds of training, no long-context continued
pre-training stage (Section 3.4.2 trains at the longer context before using it; here the long
context is only evaluated, which is the harder, zero-shot test of the positional encoding).

What the metrics show, and what is claimed at quick scale (what held on every seed we tried):

* past the training context both models' loss rises above their loss inside it, the base-10,000
  model's more than the base-500,000 model's, so the larger base's loss beyond the context is lower
  (``larger_base_extrapolation_gain``, claim: ratio >= 1.02);
* Llama 3.1's scaling, switched on without retraining, removes most or all of that rise and lowers
  the 1024-character perplexity of the base-10,000 model (``llama31_scaling_perplexity_gain``,
  claim: >= 1.05), at the price of a slightly higher loss inside the context.

Both thresholds sit below the gains of our quick runs and above the untrained models' ratios of
1.00 (the broken variant, which fails both claims). Not claimed: which base is better *inside* the
training context (it flips between seeds at this scale), and anything about the paper's contexts
(8K-128K) or its benchmarks. The numbers (losses inside and beyond the context, perplexities, with
and without the scaling) are in the run's record (``results/llama3/``) and in RESULTS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.datasets.text import char_splits, load_tinyshakespeare
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.training import PretrainConfig, train_lm


@dataclass
class Config(ExperimentConfig):
    hidden_size: int = 384
    """Model width."""
    num_layers: int = 6
    """Transformer blocks."""
    num_heads: int = 6
    """Query heads (head dimension = hidden_size / num_heads)."""
    num_kv_heads: int = 2
    """Key/value heads (Llama 3 uses GQA at every size)."""
    intermediate_size: int = 1024
    """SwiGLU width."""
    bases: tuple[float, ...] = (10000.0, 500000.0)
    """RoPE bases trained (Llama 2: 10,000; Llama 3: 500,000)."""
    train_len: int = 256
    """Training context (characters)."""
    eval_len: int = 1024
    """Evaluation context, beyond the training one."""
    steps: int = 3000
    """Optimiser steps per model."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 1e-3
    """Peak learning rate (cosine to 10 %)."""
    warmup_steps: int = 100
    """Linear warmup steps."""
    eval_windows: int = 32
    """Validation windows of eval_len characters (the same for every model)."""
    train: bool = True
    """False evaluates untrained models: the broken variant of the tests."""

    @classmethod
    def quick(cls) -> Config:
        return cls(
            scale="quick",
            seeds=1,
            hidden_size=128,
            num_layers=2,
            num_heads=8,
            num_kv_heads=2,
            intermediate_size=344,
            steps=120,
            batch_size=8,
            lr=3e-3,
            warmup_steps=12,
            eval_windows=8,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=3)


CLAIMS = [
    Claim(
        metric="larger_base_extrapolation_gain",
        description="loss beyond the training context (positions 256-1023) of the base-10,000 model over the "
        "base-500,000 model's: the larger base degrades less past the context it was trained on",
        paper=None,
        source="Llama 3, Section 3.2 (RoPE base 500,000 'to better support longer contexts'); no number given",
        quick=1.02,
        full=1.0,
    ),
    Claim(
        metric="llama31_scaling_perplexity_gain",
        description="perplexity at 1024 of the base-10,000 model without over with Llama 3.1's frequency "
        "scaling (factor 4 = 1024/256), switched on at evaluation without retraining",
        paper=None,
        source="Llama 3.1 RoPE scaling (model release; Section 3.4.2 extends context in training)",
        quick=1.05,
        full=1.0,
    ),
    Claim(
        metric="base10000_perplexity_1024",
        description="perplexity at 1024 characters, RoPE base 10,000, trained at 256 (reported)",
        paper=None,
        source="ours",
        higher_is_better=False,
    ),
    Claim(
        metric="base500000_perplexity_1024",
        description="perplexity at 1024 characters, RoPE base 500,000, trained at 256 (reported)",
        paper=None,
        source="ours",
        higher_is_better=False,
    ),
    Claim(
        metric="base10000_llama31_perplexity_1024",
        description="perplexity at 1024 characters, base 10,000 with Llama 3.1 scaling at evaluation (reported)",
        paper=None,
        source="ours",
        higher_is_better=False,
    ),
]


def _model(cfg: Config, vocab_size: int, base: float, scaling: dict | None = None) -> Llama:
    return Llama(
        LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_layers=cfg.num_layers,
            num_heads=cfg.num_heads,
            num_kv_heads=cfg.num_kv_heads,
            max_seq_len=cfg.eval_len,
            rope_theta=base,
            rope_scaling=scaling,
        )
    )


@torch.no_grad()
def position_losses(model: Llama, windows: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss at each position ``[eval_len]`` over ``windows [N, eval_len + 1]``."""
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(windows.shape[1] - 1)
    for row in windows:
        x, y = row[:-1].unsqueeze(0).to(device), row[1:].unsqueeze(0).to(device)
        logits = model(x)
        total += F.cross_entropy(logits[0].float(), y[0], reduction="none").cpu()
    return total / windows.shape[0]


def run(cfg: Config) -> Result:
    if cfg.eval_len <= cfg.train_len:
        raise ValueError(f"eval_len must exceed train_len, got {cfg.eval_len} <= {cfg.train_len}")
    if not cfg.bases:
        raise ValueError("bases must name at least one RoPE base, got ()")
    seed(cfg.seed)
    device = select_device(cfg.device)
    train_ids, val_ids, tokenizer = char_splits(load_tinyshakespeare())
    # Fixed, evenly spaced validation windows: every model reads the same text.
    stride = (val_ids.numel() - cfg.eval_len - 1) // cfg.eval_windows
    windows = torch.stack(
        [val_ids[i * stride : i * stride + cfg.eval_len + 1] for i in range(cfg.eval_windows)]
    )
    pretrain = PretrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        seq_len=cfg.train_len,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        eval_batches=4,
    )
    scaling = {
        "rope_type": "llama3",
        "factor": cfg.eval_len / cfg.train_len,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": cfg.train_len,
    }
    metrics: dict[str, float] = {}
    curves: dict[str, list[float]] = {}
    for base in cfg.bases:
        name = f"base{int(base)}"
        torch.manual_seed(cfg.seed)  # same initialisation and batches for every base
        model = _model(cfg, tokenizer.vocab_size, base).to(device)
        if cfg.train:
            train_lm(
                model,
                train_ids,
                None,
                pretrain,
                torch.Generator().manual_seed(cfg.seed),
                description=f"Llama 3 {name}",
            )
        scaled = _model(cfg, tokenizer.vocab_size, base, scaling).to(device)
        scaled.load_state_dict(model.state_dict())  # same weights, only RoPE's frequencies rescaled
        for variant, net in ((name, model), (f"{name}_llama31", scaled)):
            losses = position_losses(net, windows)
            curves[variant] = losses.tolist()
            inside = float(losses[: cfg.train_len].mean())
            beyond = float(losses[cfg.train_len :].mean())
            metrics[f"{variant}_loss_inside"] = inside
            metrics[f"{variant}_loss_beyond"] = beyond
            metrics[f"{variant}_beyond_over_inside"] = beyond / inside
            metrics[f"{variant}_perplexity_{cfg.eval_len}"] = math.exp(float(losses.mean()))

    low, high = f"base{int(min(cfg.bases))}", f"base{int(max(cfg.bases))}"
    metrics["larger_base_extrapolation_gain"] = metrics[f"{low}_loss_beyond"] / metrics[f"{high}_loss_beyond"]
    metrics["llama31_scaling_perplexity_gain"] = (
        metrics[f"{low}_perplexity_{cfg.eval_len}"] / metrics[f"{low}_llama31_perplexity_{cfg.eval_len}"]
    )

    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    bucket = max(1, cfg.eval_len // 32)
    for variant, losses in curves.items():
        values = torch.tensor(losses).view(-1, bucket).mean(1)
        axis.plot(torch.arange(values.numel()) * bucket + bucket / 2, values, label=variant)
    axis.axvline(cfg.train_len, color="gray", linestyle="--", label="training context")
    axis.set_xlabel("position")
    axis.set_ylabel("validation loss (nats/char)")
    axis.set_title(f"trained at {cfg.train_len}, evaluated at {cfg.eval_len}")
    axis.legend(fontsize=7)
    figure.tight_layout()
    notes = [
        "No long-context continued pre-training (Llama 3 Section 3.4.2): the longer context is evaluated zero-shot.",
        f"Llama 3.1 scaling applied at evaluation only: {scaling}.",
    ]
    if not cfg.train:
        notes.append("train=False: untrained models (broken variant).")
    return Result(
        metrics=metrics, figures={"loss_by_position": figure}, details={"position_loss": curves}, notes=notes
    )
