"""ALBERT (Lan et al., ICLR 2020): the parameter counts of Tables 1, 3 and 4, and Table 5's point that
a model trained with next-sentence prediction (NSP) does not solve sentence-order prediction (SOP)
while a model trained with SOP also solves NSP.

(a) Parameter counts (Tables 1, 3, 4). Every model is built from its configuration on the meta
    device (no memory) and its distinct parameters are counted (a shared block counts once; the
    encoder with its pooler, transformers' ``AlbertModel``). Exact at any scale: the quick and the
    full run compute the same numbers. Table 1: ALBERT base/large/xlarge/xxlarge and BERT
    base/large; Table 3: ALBERT-base with E = 64, 128, 256, all-shared and not-shared; Table 4:
    ALBERT-base (E = 128) with all, attention-only, FFN-only and no sharing. The paper gives whole
    millions (and is loose by up to ~1M), so a claim holds when every count is within 3.5 % of
    the paper's (rounding alone allows 5 % at 10M). Table 1's ALBERT-xxlarge (235M) is 5 % above
    the 222.6M its configuration (L=12, H=4096, E=128, V=30000) holds, as transformers' AlbertModel
    also counts; it is reported, not claimed.

(b) NSP versus SOP (Table 5). Two tiny ALBERTs with the same architecture, initial weights, data
    and batch order are pre-trained on masked-LM (n-gram masking, Section 4.1) plus one
    sentence-pair loss each: BERT's NSP (the second segment is the true continuation, or, with
    probability 1/2, a segment taken from at least ``nsp_min_distance`` tokens away) or ALBERT's
    SOP (two consecutive segments, in order or, with probability 1/2, swapped). Both are scored on
    held-out pairs of *both* kinds built from the last ``test_fraction`` of the text.

    Data: Tiny Shakespeare (``tinyshakespeare/input.txt``). ``unit="char"`` (quick): lower-case
    letters, every other run of characters one space (27 symbols); ``unit="word"`` (full): lower-cased
    words and punctuation, one ``<nl>`` per line break, the ``vocab_words`` most frequent tokens of
    the training part (the rest ``[UNK]``). A segment is ``segment_tokens`` consecutive tokens; a pair
    is ``[CLS] A [SEP] B [SEP]`` with segment ids 0 and 1; the held-out pairs come from the last
    ``test_fraction`` of the text.

    Scale, and what the quick run shows. The paper pre-trains ALBERT-base (12 M parameters) for
    125k steps of batch 4096 at length 512 on Wikipedia + BookCorpus. The quick run trains a
    2-layer ALBERT (H = 64, E = 32, all shared) for 1000 steps of 64 pairs of 6-character segments
    (about 0.8 M characters seen). What it can learn there is the continuity across the segment
    boundary (does "...the ki" go on with "ng's m..."?). Claimed at quick scale: each model learns
    its own task (held-out accuracy on the task it trained with), which an untrained model (50 %)
    fails. Reported only: the transfers. The continuity cue SOP teaches can flag NSP's random second
    segments, but whether the SOP model carries it over to NSP at this scale depends on the seed
    (above chance for some seeds, at chance for others), so that claim does not hold reliably here.
    And 6 characters carry no topic, so NSP's negatives offer the NSP-trained model nothing *but* the
    same continuity cue, and it learns SOP too, well above the paper's 52 %: the paper's point that
    NSP training misses coherence rests on the topic shortcut that longer segments provide. Both
    transfers are claimed at full scale only. Smaller budgets stay at chance: word tokens, 1-layer models, no MLM loss,
    or BERT's 0.02 initialisation at this width did not leave 50 % within 3000 steps in our trials,
    and which side of that plateau a run lands on depends on the seed and the batch (batch 128,
    lr 2e-3, 700 steps left the SOP model at chance while the NSP model learned its task), so the
    quick thresholds sit well above chance (binomial std 1.1 % at 2000 pairs) but below what our
    quick runs reach. The accuracies of each run are in its record (``results/albert/``) and in
    RESULTS.md. The full config (word tokens, 32-token segments, a 6-layer H = 256 model, 20k steps of
    128 pairs, for a GPU) carries all of Table 5's claims; it has not been run here.

Departures from the paper, and why:

* Segments are cut at arbitrary token positions, not at sentence ends (the paper packs whole
  sentences up to the length budget): fixed-length segments need no padding, and a small model
  learns order only from the local continuity across the boundary, which whole sentences remove.
  The cut carries that cue in SOP's and in NSP's negatives alike (see above).
* NSP's random segment comes from the same text at least ``nsp_min_distance`` tokens away, not
  from another document (Tiny Shakespeare has no document boundaries).
* The initial weights have standard deviation ``initializer_range`` (0.1 quick, 0.04 full), not
  BERT's 0.02: 0.02 is about 0.55 / sqrt(768) for H = 768; at H = 64 the same scale is about 0.07.
* AdamW with linear warm-up and linear decay instead of LAMB (LAMB is for the paper's batch 4096).
* No dropout (ALBERT v2 also removed it, Section 4.9).

Paper numbers (Table 5, ALBERT-base, intrinsic accuracies): NSP-trained: NSP 90.5, SOP 52.0;
SOP-trained: NSP 78.9, SOP 86.5; no sentence loss: NSP 52.4, SOP 53.3. A later audit confirmed the
NSP-trained and SOP-trained numbers (90.5 / 52.0 and 78.9 / 86.5) from a reading of Table 5; the
"no sentence loss" row (52.4 / 53.3) remains unverified. Table 1's parameter counts (BERT-base
108M, BERT-large 334M, ALBERT base 12M, large 18M, xlarge 60M, xxlarge 235M) were confirmed too.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from aicanon.core import Claim, ExperimentConfig, Result, autocast, seed, select_device, track
from aicanon.core.data import fetch
from aicanon.language.albert import (
    AlbertConfig,
    AlbertEncoder,
    AlbertForPreTraining,
    count_parameters,
    ngram_mask,
)

TABLE_1 = {  # Table 1: parameters in millions
    "albert-base": 12.0,
    "albert-large": 18.0,
    "albert-xlarge": 60.0,
    "albert-xxlarge": 235.0,
    "bert-base": 108.0,
    "bert-large": 334.0,
}
TABLE_3 = {  # Table 3: ALBERT-base with embedding size E, (sharing, E) -> millions
    ("none", 64): 87.0,
    ("none", 128): 89.0,
    ("none", 256): 93.0,
    ("all", 64): 10.0,
    ("all", 128): 12.0,
    ("all", 256): 16.0,
}
TABLE_4 = {"all": 12.0, "attention": 64.0, "ffn": 38.0, "none": 89.0}  # Table 4: ALBERT-base, E = 128
TASKS = ("nsp", "sop")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIALS))


@dataclass
class Config(ExperimentConfig):
    # ------------------------------------------------------------------ (a) parameter counts
    albert_sharing: str = "all"
    """Sharing of the ALBERT models of Tables 1 and 3 (``all``, ALBERT's); ``none`` is the ablation
    that must fail the Table 1 claims."""
    # ------------------------------------------------------------------ (b) data
    unit: str = "char"
    """Tokens: ``char`` (27 symbols: letters and space) or ``word`` (words and punctuation)."""
    vocab_words: int = 2000
    """Most frequent tokens kept; the rest become ``[UNK]`` (all 27 symbols fit for ``char``)."""
    segment_tokens: int = 6
    """Tokens per segment; a pair is ``[CLS] A [SEP] B [SEP]``."""
    test_fraction: float = 0.1
    """Tail of the text held out for the evaluation pairs."""
    nsp_min_distance: int = 1000
    """NSP's random second segment starts at least this many tokens from the true continuation."""
    test_pairs: int = 2000
    """Held-out pairs of each kind (NSP and SOP) scored per model (binomial std 1.1 % at 2000)."""
    # ------------------------------------------------------------------ (b) model
    embedding_size: int = 32
    """E (the paper's 128 at H = 768)."""
    hidden_size: int = 64
    """H."""
    num_layers: int = 2
    """L (all parameters shared across layers, ALBERT's default)."""
    num_heads: int = 4
    """Attention heads."""
    intermediate_size: int = 256
    """Feed-forward width (4H)."""
    initializer_range: float = 0.1
    """Initial weight standard deviation (see the departures: 0.02 is BERT's at H = 768)."""
    # ------------------------------------------------------------------ (b) training
    steps: int = 1000
    """Optimiser steps per model."""
    batch_size: int = 64
    """Pairs per step."""
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, then linear decay to 0)."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay (BERT's)."""
    mask_prob: float = 0.15
    """Fraction of the maskable tokens covered by n-gram spans (Section 4.1)."""
    max_ngram: int = 3
    """Longest masked n-gram (Section 4.1: 3)."""
    arms: tuple[str, ...] = ("nsp", "sop")
    """Which models to train (empty: skip part (b)); each name is the sentence-pair loss it trains with."""
    nsp_arm_task: str = "nsp"
    """Task the ``nsp`` arm actually trains on; ``sop`` is the ablation that must fail the transfer claim."""
    sop_arm_task: str = "sop"
    """Task the ``sop`` arm actually trains on; ``nsp`` is the ablation that must fail the SOP claims."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=1)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=3,
            unit="word",
            vocab_words=8000,
            segment_tokens=32,
            nsp_min_distance=5000,
            test_pairs=10_000,
            embedding_size=128,
            hidden_size=256,
            num_layers=6,
            num_heads=4,
            intermediate_size=1024,
            initializer_range=0.04,
            steps=20_000,
            batch_size=128,
            lr=5e-4,
            warmup_steps=1000,
        )


def _count_claim(metric: str, table: str, what: str) -> Claim:
    return Claim(
        metric=metric,
        description=f"Largest relative gap between our parameter counts and {table}'s, over {what} "
        "(the paper gives whole millions)",
        paper=0.0,
        source=table,
        quick=0.035,
        full=0.035,
        higher_is_better=False,
    )


CLAIMS = [
    _count_claim("table1_max_relative_gap", "Table 1", "ALBERT base/large/xlarge and BERT base/large"),
    _count_claim(
        "table3_max_relative_gap", "Table 3", "ALBERT-base with E = 64/128/256, all- and not-shared"
    ),
    _count_claim(
        "table4_max_relative_gap", "Table 4", "ALBERT-base (E=128) with all/attention/FFN/no sharing"
    ),
    Claim(
        metric="bert_large_over_albert_large",
        description="BERT-large has about 18x the parameters of ALBERT-large",
        paper=334.0 / 18.0,
        source="Table 1 (334M vs 18M)",
        quick=17.0,
        full=17.0,
    ),
    *[
        Claim(
            metric=f"params_{name.replace('-', '_')}_millions",
            description=f"{name} parameters, millions"
            + (
                " (the paper's 235M is 5 % above this configuration's count)"
                if name == "albert-xxlarge"
                else ""
            ),
            paper=paper,
            source="Table 1",
        )
        for name, paper in TABLE_1.items()
    ],
    Claim(
        metric="nsp_model_sop_accuracy",
        description="A model trained with NSP does not solve SOP (held-out SOP accuracy near chance); "
        "reported at quick scale, where NSP's negatives carry no topic cue (see the module docstring)",
        paper=0.520,
        source="Table 5 (NSP row, SOP column: 52.0)",
        quick=None,
        full=0.60,
        higher_is_better=False,
    ),
    Claim(
        metric="sop_model_sop_accuracy",
        description="A model trained with SOP solves SOP (held-out accuracy)",
        paper=0.865,
        source="Table 5 (SOP row, SOP column: 86.5)",
        quick=0.57,
        full=0.75,
    ),
    Claim(
        metric="sop_model_nsp_accuracy",
        description="A model trained with SOP also solves NSP to a large extent (held-out NSP accuracy)",
        paper=0.789,
        source="Table 5 (SOP row, NSP column: 78.9)",
        quick=None,
        full=0.65,
    ),
    Claim(
        metric="nsp_model_nsp_accuracy",
        description="The NSP-trained model on its own task (held-out NSP accuracy)",
        paper=0.905,
        source="Table 5 (NSP row, NSP column: 90.5)",
        quick=0.54,
        full=0.75,
    ),
    Claim(
        metric="sop_minus_nsp_model_on_sop",
        description="SOP accuracy of the SOP-trained model minus that of the NSP-trained model",
        paper=0.865 - 0.520,
        source="Table 5",
        quick=None,
        full=0.15,
    ),
]


# ------------------------------------------------------------------------------------ (a) counts
def encoder_parameters(cfg: AlbertConfig) -> int:
    """Distinct parameters of the encoder (with pooler) of ``cfg``, built on the meta device."""
    with torch.device("meta"):
        return count_parameters(AlbertEncoder(cfg))


def parameter_counts(albert_sharing: str = "all") -> dict[str, dict[str, int]]:
    """Our counts of the models of Tables 1, 3 and 4 (ALBERT models of Tables 1 and 3 with ``albert_sharing``)."""
    table1 = {}
    for name in TABLE_1:
        overrides = {"sharing": albert_sharing} if name.startswith("albert") else {}
        table1[name] = encoder_parameters(AlbertConfig.preset(name, **overrides))
    table3 = {}
    for sharing, e in TABLE_3:
        # The paper's "ALBERT" rows share everything; the ablation changes those rows only.
        used = "none" if sharing == "none" else albert_sharing
        table3[f"{sharing}_E{e}"] = encoder_parameters(
            AlbertConfig.preset("albert-base", embedding_size=e, sharing=used)
        )
    table4 = {
        sharing: encoder_parameters(AlbertConfig.preset("albert-base", sharing=sharing))
        for sharing in TABLE_4
    }
    return {"table1": table1, "table3": table3, "table4": table4}


def relative_gap(ours: int, paper_millions: float) -> float:
    return abs(ours / 1e6 - paper_millions) / paper_millions


# ------------------------------------------------------------------------------------ (b) Table 5
UNITS = ("char", "word")


def tokenize(text: str, unit: str = "word") -> list[str]:
    """``word``: lower-cased words (with apostrophes), punctuation marks, ``<nl>`` per line break;
    ``char``: lower-case letters, every run of anything else one space (27 symbols)."""
    if unit == "char":
        return list(re.sub(r"[^a-z]+", " ", text.lower()))
    if unit == "word":
        return ["<nl>" if t == "\n" else t for t in re.findall(r"[a-z']+|[.,;:!?&-]|\n", text.lower())]
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")


def build_vocabulary(tokens: list[str], size: int) -> dict[str, int]:
    """Special tokens first, then the ``size`` most frequent tokens (ties broken alphabetically)."""
    counts = Counter(tokens)
    words = sorted(counts, key=lambda w: (-counts[w], w))[:size]
    return {w: i for i, w in enumerate(list(SPECIALS) + words)}


def load_corpus(cfg: Config) -> tuple[Tensor, Tensor, dict[str, int]]:
    """Token ids of the training head and the held-out tail of Tiny Shakespeare, and the vocabulary."""
    text = fetch("tinyshakespeare", "input.txt").read_text(encoding="utf-8")
    tokens = tokenize(text, cfg.unit)
    split = int(len(tokens) * (1 - cfg.test_fraction))
    vocab = build_vocabulary(tokens[:split], cfg.vocab_words)  # the vocabulary sees training text only
    ids = torch.tensor([vocab.get(t, UNK) for t in tokens])
    return ids[:split], ids[split:], vocab


def make_pairs(
    ids: Tensor, task: str, n: int, cfg: Config, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` pairs ``(input_ids [n, 2S+3], token_type_ids, labels [n])`` of ``task`` from ``ids``.

    Label 0: the two segments are consecutive and in order. Label 1: SOP, the same two segments
    swapped; NSP, the second segment replaced by one from at least ``nsp_min_distance`` tokens away.
    """
    s = cfg.segment_tokens
    starts = torch.randint(0, len(ids) - 2 * s, (n,), generator=generator)
    window = torch.arange(s)
    first, second = ids[starts[:, None] + window], ids[starts[:, None] + s + window]
    labels = torch.randint(0, 2, (n,), generator=generator)
    flip = labels[:, None].bool()
    if task == "sop":
        first, second = torch.where(flip, second, first), torch.where(flip, first, second)
    elif task == "nsp":
        # A start uniformly among those at least nsp_min_distance away (shift past the excluded band).
        span = len(ids) - 2 * s - 2 * cfg.nsp_min_distance
        other = torch.randint(0, span, (n,), generator=generator)
        other = (starts + s + cfg.nsp_min_distance + other) % (len(ids) - s)
        second = torch.where(flip, ids[other[:, None] + window], second)
    else:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    column = torch.full((n, 1), CLS), torch.full((n, 1), SEP)
    input_ids = torch.cat([column[0], first, column[1], second, column[1]], dim=1)
    token_type_ids = torch.cat(
        [torch.zeros(n, s + 2, dtype=torch.long), torch.ones(n, s + 1, dtype=torch.long)], 1
    )
    return input_ids, token_type_ids, labels


def model_config(cfg: Config, vocab_size: int) -> AlbertConfig:
    return AlbertConfig(
        vocab_size=vocab_size,
        embedding_size=cfg.embedding_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=2 * cfg.segment_tokens + 3,
        sharing="all",
        classifier_dropout=0.0,
        initializer_range=cfg.initializer_range,
    )


@torch.no_grad()
def evaluate(
    model: AlbertForPreTraining, pairs: dict[str, tuple[Tensor, Tensor, Tensor]], device
) -> dict[str, float]:
    """Held-out accuracy of the sentence-pair head on each kind of pair, and masked-LM accuracy."""
    model.eval()
    out = {}
    for task, (x, types, labels) in pairs.items():
        correct = 0
        for i in range(0, len(x), 500):
            _, pooled = model.albert(x[i : i + 500].to(device), types[i : i + 500].to(device))
            correct += (model.sop_logits(pooled).argmax(-1).cpu() == labels[i : i + 500]).sum().item()
        out[f"{task}_accuracy"] = correct / len(x)
    model.train()
    return out


def pretrain(
    cfg: Config, task: str, train_ids: Tensor, vocab_size: int, init_state: dict, device, label: str
) -> tuple[AlbertForPreTraining, dict[str, list[float]]]:
    """MLM + ``task`` pre-training from ``init_state``; the data order depends on the seed only."""
    model = AlbertForPreTraining(model_config(cfg, vocab_size)).to(device)
    model.load_state_dict(init_state)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(
            (step + 1) / max(1, cfg.warmup_steps),
            max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.warmup_steps)),
        ),
    )
    generator = torch.Generator().manual_seed(cfg.seed + 1)  # same batches for every arm
    history: dict[str, list[float]] = {"mlm_loss": [], "pair_loss": []}
    for _ in track(range(cfg.steps), f"ALBERT {label}", total=cfg.steps):
        x, types, labels = make_pairs(train_ids, task, cfg.batch_size, cfg, generator)
        special = (x == CLS) | (x == SEP)
        masked, mlm_labels = ngram_mask(
            x, mask_token_id=MASK, vocab_size=vocab_size, generator=generator, special_mask=special,
            mask_prob=cfg.mask_prob, max_ngram=cfg.max_ngram,
        )  # fmt: skip
        masked, types, labels, mlm_labels = (t.to(device) for t in (masked, types, labels, mlm_labels))
        with autocast(device):
            hidden, pooled = model.albert(masked, types)
            targets = mlm_labels != -100
            # The MLM head only on masked positions: the same loss, without V-wide logits elsewhere.
            mlm_loss = F.cross_entropy(model.mlm_logits(hidden[targets]).float(), mlm_labels[targets])
            pair_loss = F.cross_entropy(model.sop_logits(pooled).float(), labels)
        loss = mlm_loss + pair_loss  # Section 3.1: MLM plus the sentence-pair loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        history["mlm_loss"].append(mlm_loss.item())
        history["pair_loss"].append(pair_loss.item())
    return model, history


def _counts_figure(counts: dict[str, dict[str, int]]) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    names = list(TABLE_1)
    x = torch.arange(len(names)).tolist()
    ax.bar([i - 0.2 for i in x], [counts["table1"][n] / 1e6 for n in names], 0.4, label="ours (exact)")
    ax.bar([i + 0.2 for i in x], [TABLE_1[n] for n in names], 0.4, label="Table 1")
    ax.set_xticks(x, names, rotation=20)
    ax.set(yscale="log", ylabel="parameters (millions)", title="Table 1 parameter counts")
    ax.legend()
    fig.tight_layout()
    return fig


def _curves_figure(histories: dict[str, dict[str, list[float]]]) -> Figure:
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    for arm, history in histories.items():
        for ax, key in zip(axes, ("mlm_loss", "pair_loss"), strict=True):
            values = torch.tensor(history[key])
            k = max(1, len(values) // 50)
            smooth = values[: len(values) // k * k].view(-1, k).mean(1) if len(values) >= k else values
            ax.plot(torch.arange(len(smooth)) * k, smooth, label=f"trained with {arm.upper()}")
    axes[0].set(title="masked-LM loss", xlabel="step", ylabel="cross-entropy")
    axes[1].set(title="sentence-pair loss (own task)", xlabel="step")
    axes[1].axhline(0.6931, color="grey", lw=0.8, ls="--")
    axes[1].legend()
    fig.tight_layout()
    return fig


def _table_figure(accuracies: dict[str, dict[str, float]]) -> Figure:
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    arms = list(accuracies)
    width = 0.35
    for j, task in enumerate(TASKS):
        ax.bar([i + (j - 0.5) * width for i in range(len(arms))], [accuracies[a][f"{task}_accuracy"] for a in arms],
               width, label=f"scored on {task.upper()}")  # fmt: skip
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(arms)), [f"trained with {a.upper()}" for a in arms])
    ax.set(ylim=(0.4, 1.0), ylabel="held-out accuracy", title="Table 5 at quick scale")
    ax.legend()
    fig.tight_layout()
    return fig


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    device = select_device(cfg.device)
    for arm in cfg.arms:
        if arm not in TASKS:
            raise ValueError(f"arms must be drawn from {TASKS}, got {cfg.arms!r}")
    for name in ("nsp_arm_task", "sop_arm_task"):
        if getattr(cfg, name) not in TASKS:
            raise ValueError(f"{name} must be one of {TASKS}, got {getattr(cfg, name)!r}")
    metrics: dict[str, float] = {}
    notes: list[str] = []

    # (a) Tables 1, 3 and 4: exact counts on the meta device.
    counts = parameter_counts(cfg.albert_sharing)
    for name, count in counts["table1"].items():
        metrics[f"params_{name.replace('-', '_')}_millions"] = count / 1e6
    claimed = [n for n in TABLE_1 if n != "albert-xxlarge"]  # see the module docstring
    metrics["table1_max_relative_gap"] = max(relative_gap(counts["table1"][n], TABLE_1[n]) for n in claimed)
    metrics["table3_max_relative_gap"] = max(
        relative_gap(counts["table3"][f"{s}_E{e}"], paper) for (s, e), paper in TABLE_3.items()
    )
    metrics["table4_max_relative_gap"] = max(relative_gap(counts["table4"][s], p) for s, p in TABLE_4.items())
    metrics["bert_large_over_albert_large"] = (
        counts["table1"]["bert-large"] / counts["table1"]["albert-large"]
    )
    notes.append(
        "Table 1's ALBERT-xxlarge (235M) is 5 % above the 222.6M its configuration holds (transformers' "
        "AlbertModel counts the same); reported, not claimed."
    )

    # (b) Table 5: NSP- and SOP-trained models, each scored on both tasks.
    accuracies: dict[str, dict[str, float]] = {}
    histories: dict[str, dict[str, list[float]]] = {}
    details: dict = {"parameter_counts": counts, "table1_paper_millions": TABLE_1}
    if cfg.arms:
        train_ids, test_ids, vocab = load_corpus(cfg)
        test_generator = torch.Generator().manual_seed(10_000 + cfg.seed)
        test_pairs = {task: make_pairs(test_ids, task, cfg.test_pairs, cfg, test_generator) for task in TASKS}
        torch.manual_seed(cfg.seed)
        init_state = AlbertForPreTraining(model_config(cfg, len(vocab))).state_dict()  # shared by the arms
        for arm in cfg.arms:
            task = cfg.nsp_arm_task if arm == "nsp" else cfg.sop_arm_task
            model, histories[arm] = pretrain(
                cfg, task, train_ids, len(vocab), init_state, device, f"trained with {task}"
            )
            accuracies[arm] = evaluate(model, test_pairs, device)
            for key, value in accuracies[arm].items():
                metrics[f"{arm}_model_{key}"] = value
        if set(cfg.arms) == set(TASKS):
            metrics["sop_minus_nsp_model_on_sop"] = (
                accuracies["sop"]["sop_accuracy"] - accuracies["nsp"]["sop_accuracy"]
            )
        notes.append(
            f"Table 5 at small scale: {cfg.num_layers}-layer ALBERT (H={cfg.hidden_size}, E={cfg.embedding_size}, "
            f"all shared), {cfg.steps} steps of {cfg.batch_size} pairs of {cfg.segment_tokens}-token segments "
            f"from Tiny Shakespeare ({len(train_ids)} training tokens); the paper: ALBERT-base, 125k steps of "
            "batch 4096 at length 512 on Wikipedia + BookCorpus."
        )
        notes.append(
            "Segments are cut at arbitrary token positions, not at sentence ends; init std "
            f"{cfg.initializer_range} (BERT's 0.02 is for H=768); AdamW instead of LAMB."
        )
        if cfg.scale == "quick":
            notes.append(
                "At quick scale (6-character segments, no topic in them) the NSP-trained model learns "
                "the same boundary-continuity cue as the SOP model and so also scores above chance on "
                "SOP; the paper's 52 % rests on a topic shortcut that needs longer segments. The SOP "
                "model's transfer to NSP is seed-dependent here (60 % seed 0, 50 % seed 1). Both "
                "transfers are reported at quick scale and claimed at full scale only."
            )
        details.update(
            vocab_size=len(vocab),
            train_tokens=len(train_ids),
            test_tokens=len(test_ids),
            accuracies=accuracies,
            final_losses={
                a: {k: sum(v[-50:]) / max(1, len(v[-50:])) for k, v in h.items()}
                for a, h in histories.items()
            },
        )
    figures = {"parameter_counts": _counts_figure(counts)}
    if histories:
        figures["training_curves"] = _curves_figure(histories)
    if set(accuracies) == set(TASKS):
        figures["table5"] = _table_figure(accuracies)
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
