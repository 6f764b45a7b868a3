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
   at 5 (Section 8.1). The trained model and its tokenizer are cached under
   ``results_dir()/_cache/gnmt/<hash of the training settings>`` (``cache``), so a rerun of the same
   configuration only decodes.
3. alpha and beta are tuned on validation sentences over a small grid (as the paper tunes on a dev
   set); then the test sentences are translated with plain beam search (alpha = beta = 0), with the
   paper's alpha = beta = 0.2 and with the tuned pair, and scored by corpus BLEU
   (:func:`aicanon.language.bleu.corpus_bleu`, sacrebleu's 13a semantics).
4. Mechanism: the ratio of hypothesis to reference length (BLEU's sys_len / ref_len): plain beam
   search's translations are shorter than the normalised search's.

Claims (quick): the tuned Eq. 14 scoring beats plain beam search on test BLEU by at least 0.5
(half the paper's +1.1); the tuned search's translations are at least 1 % longer relative to the
references than plain search's. Ablations that fail the first claim: beam size 1 (Eq. 14 cannot
change a greedy search: lp is common to every candidate of a step and cp to every token of a
hypothesis) and the untrained model.

Status at quick scale (a gap, not a pass): the quick model (3500 steps, training loss 2.64) reaches
test BLEU 13.9 with plain beam search, but on these short captions its plain search already
over-generates (hypothesis/reference length 1.09), so there is no brevity for lp to correct:
validation BLEU over the alpha/beta grid spans 14.8-15.8 (best alpha = 0.6, beta = 0; beta = 0.2
always costs 0.2-0.9), and on test the tuned pair gives -0.09 BLEU, the paper's alpha = beta = 0.2
+0.06, the length ratio +0.001; both quick claims fail. (With 2000 steps, loss 3.7, BLEU 3.4, the
same: +0.00 tuned, +0.03 at the paper's setting.) The first run trains for about 17 minutes on two
busy CPU cores; reruns load the cached model and take about 30 s. Whether Table 2's direction
appears on Multi30k needs a stronger model (BLEU 30+: a 256-512-unit model for several epochs on a
GPU) and longer sentences, where plain search's short bias is larger.

Cost of ``--full`` (the paper's model: 8+8 layers of 1024 units, 32k wordpieces, 12 hypotheses,
Table 2's 6x6 grid -- on Multi30k, far smaller than WMT): an estimated 1-2 GPU-hours per seed on
one H100 (15 epochs of training with the step-by-step bottom decoder layer, then 36 validation and
3 test decodes), 3 seeds; not run here (no GPU in this session).
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
    vocab_size: int = 4000
    """Wordpieces in the shared model (the paper: 8k-32k, Section 4.1)."""
    max_pieces: int = 16
    """Training and evaluation pairs longer than this many wordpieces on either side are dropped."""
    hidden_size: int = 128
    """LSTM units per layer (the paper: 1024)."""
    encoder_layers: int = 2
    """Encoder layers, the bi-directional bottom one included (the paper: 8)."""
    decoder_layers: int = 2
    """Decoder layers (the paper: 8)."""
    dropout: float = 0.0
    """Dropout on layer outputs (the paper: 0.2-0.3)."""
    init_scale: float = 0.1
    """Uniform initialisation range (the paper: 0.04)."""
    steps: int = 3500
    """Adam steps (0: the untrained model)."""
    batch_size: int = 64
    """Sentence pairs per step (the paper: 128)."""
    learning_rate: float = 3e-3
    """Adam's learning rate, decayed to a tenth by a cosine (the paper: 2e-4 then SGD)."""
    grad_clip: float = 5.0
    """Gradient-norm clipping (Section 8.1: 5.0)."""
    beam_size: int = 4
    """Hypotheses kept per step (the paper keeps 8-12)."""
    score_margin: float | None = 3.0
    """Pruning margin of Section 7 (the paper's "beamsize" 3.0); None: no pruning."""
    alphas: tuple[float, ...] = (0.0, 0.2, 0.6, 1.0)
    """alpha values of the tuning grid (Table 2's grid: 0.0-1.0 in steps of 0.2)."""
    betas: tuple[float, ...] = (0.0, 0.2)
    """beta values of the tuning grid."""
    val_sentences: int = 200
    """Validation pairs (within max_pieces) used to tune alpha and beta; 0 skips tuning (uses 0.2, 0.2)."""
    test_sentences: int = 300
    """Test pairs (within max_pieces) translated and scored; the first ones of the test set."""
    decode_batch: int = 100
    """Sentences translated together."""
    cache: str | None = None
    """Folder of cached trained models; None: results_dir()/_cache/gnmt; '': do not cache."""

    @classmethod
    def quick(cls) -> Config:
        # A 2+2-layer, 128-unit model with 4k wordpieces on pairs of at most 16 pieces. Training
        # takes about 17 minutes on 2 busy CPU cores the first time, so the model is cached (`cache`).
        return cls(scale="quick", seeds=1, threads=1)

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
            beam_size=12,
            alphas=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            betas=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            val_sentences=1014,
            test_sentences=1000,
        )


# Thresholds: the paper's direction with a margin above seed noise (the quick test BLEU moves by a
# tenth between alpha/beta settings of our model). They are NOT met at quick scale (see the module
# docstring: -0.09 tuned, +0.06 at the paper's setting, length gain +0.001); kept at
# the target rather than lowered. Beam size 1 and the untrained model fail them by construction.
CLAIMS = [
    Claim(
        metric="bleu_gain_tuned",
        description="test BLEU of Eq. 14 scoring (alpha, beta tuned on validation) minus plain beam search's",
        paper=1.1,
        source=(
            "Table 2: 30.3 BLEU at alpha=beta=0, 31.4 at the best alpha, beta (WMT'14 En->Fr; "
            "unverified: the table could not be read from the paper's text here)"
        ),
        quick=0.5,
        full=0.5,
        unit="BLEU",
    ),
    Claim(
        metric="bleu_gain_paper_setting",
        description="test BLEU at the paper's alpha=beta=0.2 minus plain beam search's",
        paper=1.1,
        source="Section 7 / Table 2 (alpha=0.2, beta=0.2; unverified)",
        quick=None,
        full=None,
        unit="BLEU",
    ),
    Claim(
        metric="length_ratio_gain",
        description=(
            "hypothesis/reference length ratio of the tuned search minus plain beam search's "
            "(plain search is shorter)"
        ),
        paper=None,
        source="Section 7 (plain beam search favours shorter results); no number given",
        quick=0.01,
        full=0.01,
    ),
    Claim(
        metric="bleu_tuned",
        description="test BLEU of the tuned Eq. 14 search (Multi30k En->De, short captions)",
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
    for name in ("vocab_size", "max_pieces", "hidden_size", "batch_size", "beam_size", "decode_batch"):
        check_int(name, getattr(cfg, name))
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
) -> list[str]:
    """Beam-search translations (detokenised text) of encoded source sentences."""
    outputs = []
    for start in range(0, len(sources), cfg.decode_batch):
        batch = _pad(sources[start : start + cfg.decode_batch], tokenizer.pad_id).to(device)
        hypotheses = beam_search(
            model, batch, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, beam_size=cfg.beam_size,
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

    # Tune alpha and beta on validation sentences (the paper tunes on a development set).
    grid: dict[tuple[float, float], float] = {}
    if cfg.val_sentences > 0:
        val_sources, val_references = _evaluation_set(tokenizer, "val", cfg, cfg.val_sentences)
        for alpha in cfg.alphas:
            for beta in cfg.betas:
                hypotheses = translate(model, tokenizer, val_sources, cfg, alpha, beta, device)
                grid[(alpha, beta)] = corpus_bleu(hypotheses, [val_references]).score
        alpha_best, beta_best = max(grid, key=lambda key: (grid[key], -key[0], -key[1]))
    else:
        alpha_best, beta_best = 0.2, 0.2

    test_sources, test_references = _evaluation_set(tokenizer, "test", cfg, cfg.test_sentences)
    settings = {"plain": (0.0, 0.0), "paper": (0.2, 0.2), "tuned": (alpha_best, beta_best)}
    scores, outputs = {}, {}
    for name, (alpha, beta) in settings.items():
        if name == "tuned" and (alpha, beta) == settings["paper"]:
            scores[name], outputs[name] = scores["paper"], outputs["paper"]
            continue
        outputs[name] = translate(model, tokenizer, test_sources, cfg, alpha, beta, device)
        scores[name] = corpus_bleu(outputs[name], [test_references])

    metrics = {
        "bleu_plain": scores["plain"].score,
        "bleu_paper_setting": scores["paper"].score,
        "bleu_tuned": scores["tuned"].score,
        "bleu_gain_paper_setting": scores["paper"].score - scores["plain"].score,
        "bleu_gain_tuned": scores["tuned"].score - scores["plain"].score,
        "length_ratio_plain": scores["plain"].length_ratio,
        "length_ratio_tuned": scores["tuned"].length_ratio,
        "length_ratio_gain": scores["tuned"].length_ratio - scores["plain"].length_ratio,
        "alpha_tuned": alpha_best,
        "beta_tuned": beta_best,
    }
    if losses:
        metrics["final_training_loss"] = float(np.mean(losses[-20:]))
    figures = {}
    if grid:
        figures["validation_grid"] = _grid_figure(grid, cfg)
    if losses:
        figure = Figure(figsize=(5, 3.5), layout="constrained")
        axis = figure.subplots()
        axis.plot(np.arange(1, len(losses) + 1), losses)
        axis.set(xlabel="step", ylabel="cross-entropy per wordpiece", title="GNMT training (Eq. 7)")
        figures["training_loss"] = figure
    details = {
        "validation_grid": [{"alpha": a, "beta": b, "bleu": v} for (a, b), v in grid.items()],
        "test_sentences": len(test_sources),
        "examples": [
            {"reference": test_references[i], **{name: outputs[name][i] for name in outputs}}
            for i in range(min(5, len(test_sources)))
        ],
        "model_from_cache": cached,
        "bleu_signature": "corpus BLEU-4, 13a, exp smoothing, case-sensitive (sacrebleu's defaults)",
    }
    notes = [
        "Multi30k En->De (captions), pairs of at most "
        f"{cfg.max_pieces} wordpieces, the first {len(test_sources)} such test pairs; the paper's Table 2 "
        "is WMT'14 En->Fr.",
        "Maximum-likelihood training only (no RL refinement; Table 2 is also before RL).",
    ]
    if cached:
        notes.append("the trained model came from the cache (same training settings); only decoding ran")
    if cfg.scale == "quick":
        notes.append(
            f"quick: {cfg.encoder_layers}+{cfg.decoder_layers} layers of {cfg.hidden_size} units, "
            f"{cfg.vocab_size} wordpieces, {cfg.steps} Adam steps, beam {cfg.beam_size}; "
            "the paper: 8+8 layers x 1024."
        )
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)


__all__ = ["CLAIMS", "Config", "run", "train_model", "training_key", "translate"]
