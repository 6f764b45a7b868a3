"""Testbed: a small pre-trained masked language model (an ALBERT/BERT-style encoder with its MLM head)
and its word-level vocabulary, for the prompt-based learning experiments.

Prompting a masked LM (Liu et al. 2021, Section 3.1: cloze prompts; PET, LM-BFF) needs a model that
was *pre-trained* to fill ``[MASK]`` slots. No checkpoint can be downloaded here, so this testbed
pre-trains one, once per configuration: an :class:`~aicanon.language.albert.AlbertForPreTraining`
trained on the masked-LM objective alone (BERT's 80/10/10 replacement of 15 % of the tokens) over

* the Stanford Sentiment Treebank's *training* sentences, lower-cased, labels never seen, and
* optionally WikiText-2's validation split (lower-cased paragraphs cut into ``seq_len`` pieces;
  the training split is not staged here), for general text.

The vocabulary is word-level (:class:`~aicanon.datasets.vocabulary.Vocabulary`, SST's PTB
tokenisation): ``[PAD] [UNK] [CLS] [SEP] [MASK]`` and then the most frequent words of the
pre-training text; other words map to ``[UNK]``.

:func:`pretrain_masked_lm` trains it; with a ``cache`` folder the weights and vocabulary are stored
as an atomic safetensors checkpoint (:mod:`aicanon.core.checkpoint`) under
``cache/<hash of the config>/`` and later calls load them (a checkpoint that cannot be read or does
not fit is retrained with a warning), as :mod:`aicanon.testbeds.char_lm` does::

    model, vocab = pretrain_masked_lm(MaskedLMConfig(), cache=cache_folder(None))
    ids = vocab.encode("[CLS] a gorgeous film . [SEP]".split())
    mlm_logits, _ = model(ids[None])          # [1, T, len(vocab)]

Choices not taken from any paper: the sentence-order head of ``AlbertForPreTraining`` is kept but
never trained (only the MLM loss is used: prompting reads the MLM head); every sequence is one SST
sentence or one WikiText piece, ``[CLS] ... [SEP]``, trimmed to the longest row of its batch; AdamW
with linear warm-up and decay; 30 % of the tokens masked, not BERT's 15 % (faster learning at this
scale); the initial weight scale is ``initializer_range`` (0.05: BERT's 0.02 is sized for H = 768).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from aicanon.core.checkpoint import save_checkpoint
from aicanon.core.progress import track
from aicanon.datasets.sst import load_sst
from aicanon.datasets.vocabulary import Vocabulary
from aicanon.datasets.wikitext import load_wikitext2
from aicanon.language.albert import IGNORE_INDEX, AlbertConfig, AlbertForPreTraining
from aicanon.testbeds.cache import cache_folder as shared_cache_folder
from aicanon.testbeds.cache import load_cached

__all__ = [
    "CLS",
    "MASK",
    "PAD",
    "SEP",
    "SPECIALS",
    "UNK",
    "MaskedLMConfig",
    "cache_folder",
    "mask_tokens",
    "masked_lm_corpus",
    "pretrain_masked_lm",
]

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = SPECIALS


@dataclass
class MaskedLMConfig:
    """Size and pre-training of the masked LM (defaults: the quick experiments' model)."""

    vocab_size: int = 4000
    """Words kept (specials included); the rest map to ``[UNK]``."""
    embedding_size: int = 64
    """E: the factorised embedding width."""
    hidden_size: int = 64
    """H: the encoder width."""
    num_layers: int = 2
    """Transformer layers."""
    num_heads: int = 4
    """Attention heads."""
    intermediate_size: int = 128
    """Feed-forward width."""
    sharing: str = "none"
    """ALBERT's cross-layer sharing (``all``, ``attention``, ``ffn``, ``none``); ``none`` is BERT's."""
    seq_len: int = 40
    """Longest pre-training sequence, ``[CLS]`` and ``[SEP]`` included."""
    steps: int = 1500
    """Optimiser steps."""
    batch_size: int = 128
    """Sequences per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate."""
    warmup_steps: int = 100
    """Linear warm-up steps (then linear decay to 0)."""
    weight_decay: float = 0.01
    """AdamW weight decay (BERT's)."""
    mask_prob: float = 0.3
    """Fraction of the tokens that carry an MLM target (BERT's 15 %; 30 % learns faster at this scale,
    as Wettig et al. 2023 found for larger models)."""
    initializer_range: float = 0.05
    """Initial weight standard deviation."""
    wikitext: bool = False
    """Also pre-train on WikiText-2's validation split."""
    seed: int = 0
    """Seed of the initialisation, the batches and the masks."""

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "seq_len",
            "steps",
            "batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MaskedLMConfig.{name} must be a positive int, got {value!r}")
        if self.vocab_size <= len(SPECIALS):
            raise ValueError(f"MaskedLMConfig.vocab_size must be > {len(SPECIALS)}, got {self.vocab_size}")
        if self.seq_len < 4:
            raise ValueError(f"MaskedLMConfig.seq_len must be >= 4, got {self.seq_len}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"MaskedLMConfig.mask_prob must be in (0, 1), got {self.mask_prob}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"MaskedLMConfig.seed must be an int >= 0, got {self.seed!r}")
        self.albert_config()  # the encoder's own checks (E <= H, heads divide H, sharing mode)

    def key(self) -> str:
        """Hash of the configuration: the cache folder's name."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def albert_config(self) -> AlbertConfig:
        return AlbertConfig(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=128,
            sharing=self.sharing,
            factorize=True,
            hidden_act="gelu_new",
            pad_token_id=0,
            initializer_range=self.initializer_range,
            classifier_dropout=0.0,
        )


def cache_folder(cache: str | None) -> Path | None:
    """Where an experiment's ``cache`` setting keeps pre-trained masked LMs (:func:`.cache.cache_folder`)."""
    return shared_cache_folder(cache, "masked_lm")


def masked_lm_corpus(cfg: MaskedLMConfig) -> tuple[list[list[str]], Vocabulary]:
    """The pre-training sequences (lists of words, without ``[CLS]``/``[SEP]``) and the vocabulary."""
    sequences = [s.lower().split() for s in load_sst("train")[0]]
    if cfg.wikitext:
        piece = cfg.seq_len - 2
        tokens = load_wikitext2("valid")
        paragraph: list[str] = []
        for token in tokens:
            if token != "<eos>":
                paragraph.append(token.lower())
                continue
            # Headings (" = Title = ") carry no sentences; skip them and blank lines.
            if len(paragraph) > 3 and paragraph[0] != "=":
                sequences.extend(paragraph[i : i + piece] for i in range(0, len(paragraph), piece))
            paragraph = []
    vocab = Vocabulary.build(sequences, max_size=cfg.vocab_size, specials=SPECIALS, unk=UNK, pad=PAD)
    return sequences, vocab


def mask_tokens(
    ids: torch.Tensor, vocab_size: int, mask_id: int, maskable: torch.Tensor, prob: float, generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: each maskable token carries a target with probability ``prob`` (at least one
    per row), and is then replaced by ``[MASK]`` (80 %), a random word (10 %) or kept (10 %).
    Returns ``(inputs, labels)``, labels ``-100`` where there is no target."""
    u = torch.rand(ids.shape, generator=generator)
    chosen = (u < prob) & maskable
    # Rows without any target get their lowest-u maskable token, so no batch row is wasted.
    first = torch.where(maskable, u, torch.full_like(u, 2.0)).argmin(dim=1)
    chosen[torch.arange(ids.shape[0]), first] |= maskable[torch.arange(ids.shape[0]), first]
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    v = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(len(SPECIALS), vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (v < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (v >= 0.8) & (v < 0.9), random_ids, inputs)
    return inputs, labels


def _load_cached(folder: Path, cfg: MaskedLMConfig) -> tuple[AlbertForPreTraining, Vocabulary] | None:
    def build(state: dict) -> tuple[AlbertForPreTraining, Vocabulary]:
        vocab = Vocabulary(state["tokens"], unk=UNK, pad=PAD)
        model = AlbertForPreTraining(cfg.albert_config())
        model.load_state_dict(state["model"], strict=True)
        return model, vocab

    return load_cached(folder, asdict(cfg), "masked-LM", build)


def pretrain_masked_lm(
    cfg: MaskedLMConfig | None = None,
    cache: str | Path | None = None,
    device: str | torch.device | None = None,
) -> tuple[AlbertForPreTraining, Vocabulary]:
    """The pre-trained masked LM and its vocabulary, from ``cache`` when trained before.

    Returns the model in eval mode on the CPU (all parameters trainable: callers freeze or copy it).
    The model's ``pretraining`` attribute holds the last MLM losses and the seconds it took
    (``None`` fields when loaded from the cache).
    """
    cfg = MaskedLMConfig() if cfg is None else cfg
    if not isinstance(cfg, MaskedLMConfig):
        raise TypeError(f"cfg must be a MaskedLMConfig, got {type(cfg).__name__}")
    if cache is not None and not isinstance(cache, (str, Path)):
        raise TypeError(f"cache must be a folder path (str or Path) or None, got {type(cache).__name__}")
    folder = Path(cache) / cfg.key() if cache is not None else None
    if folder is not None and folder.exists():
        loaded = _load_cached(folder, cfg)
        if loaded is not None:
            loaded[0].eval()
            loaded[0].pretraining = {"final_mlm_loss": None, "seconds": None, "cached": True}
            return loaded
    start = time.perf_counter()
    sequences, vocab = masked_lm_corpus(cfg)
    albert_cfg = cfg.albert_config()
    if len(vocab) != albert_cfg.vocab_size:
        raise ValueError(
            f"MaskedLMConfig.vocab_size must be at most the corpus's {len(vocab)} distinct words and "
            f"specials, got {cfg.vocab_size}"
        )
    cls_id, sep_id, mask_id = (vocab.index(t) for t in (CLS, SEP, MASK))
    rows = [[cls_id, *vocab.encode(s[: cfg.seq_len - 2]).tolist(), sep_id] for s in sequences]
    lengths = torch.tensor([len(r) for r in rows])
    table = torch.zeros(len(rows), cfg.seq_len, dtype=torch.long)
    for i, r in enumerate(rows):
        table[i, : len(r)] = torch.tensor(r)

    torch.manual_seed(cfg.seed)
    model = AlbertForPreTraining(albert_cfg)
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embeddings" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )

    def schedule(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    losses: list[float] = []
    for _ in track(range(cfg.steps), "pre-training the masked LM"):
        index = torch.randint(len(rows), (cfg.batch_size,), generator=generator)
        width = int(lengths[index].max())
        ids = table[index, :width]
        real = ids != 0
        maskable = real & (ids != cls_id) & (ids != sep_id)
        inputs, labels = mask_tokens(ids, albert_cfg.vocab_size, mask_id, maskable, cfg.mask_prob, generator)
        inputs, labels, real = inputs.to(device), labels.to(device), real.to(device)
        hidden, _ = model.albert(inputs, attention_mask=real)
        targets = labels != IGNORE_INDEX
        # The MLM head only at the positions that carry a target (the vocabulary projection dominates).
        logits = model.mlm_logits(hidden[targets])
        loss = F.cross_entropy(logits, labels[targets])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    model.cpu().eval()
    tail = losses[-50:]
    model.pretraining = {
        "final_mlm_loss": sum(tail) / len(tail),
        "final_perplexity": math.exp(sum(tail) / len(tail)),
        "seconds": time.perf_counter() - start,
        "cached": False,
    }
    if folder is not None:
        save_checkpoint(folder, {"model": model.state_dict(), "tokens": vocab.tokens, "config": asdict(cfg)})
    return model, vocab
