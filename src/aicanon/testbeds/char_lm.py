"""Testbed: a small pre-trained character-level language model (the base every align experiment
starts from).

LoRA, SFT, reward models and DPO all adapt a *pre-trained* language model. Here that model is a
character-level :class:`~aicanon.language.llama.Llama`, pre-trained with the Llama 2 recipe
(:func:`aicanon.language.training.train_lm`) on the Stanford Sentiment Treebank's training
sentences (lower-cased, one per line; labels never seen), optionally followed by Tiny Shakespeare.
It is small enough to pre-train in seconds on a CPU.

:func:`pretrain_char_lm` trains it once per configuration: with a ``cache`` folder the weights and
tokenizer are stored as an atomic safetensors checkpoint (:mod:`aicanon.core.checkpoint`) under
``cache/<hash of the config>/`` and later calls load them; a checkpoint that cannot be read or does
not fit is retrained with a warning.

Interface (kept plain for the later papers that need a pre-trained base)::

    model, tokenizer = pretrain_char_lm(CharLMConfig(), cache=cache_folder(None))
    ids = tokenizer.encode("a gorgeous film")     # CharTokenizer: one id per character
    logits = model(ids[None])                     # [1, T, vocab]

Choices not taken from any paper: the vocabulary is the set of characters of all SST splits (dev and
test included: only the alphabet, never their text or labels, so that encoding them cannot fail on
an unseen character); sentences are lower-cased as :func:`aicanon.datasets.sst.load_sst_binary` does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from aicanon.core.checkpoint import save_checkpoint
from aicanon.datasets.sst import SPLITS, load_sst
from aicanon.datasets.text import CharTokenizer, load_tinyshakespeare
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.training import PretrainConfig, train_lm
from aicanon.testbeds.cache import cache_folder as shared_cache_folder
from aicanon.testbeds.cache import load_cached

__all__ = ["CharLMConfig", "cache_folder", "char_lm_corpus", "pretrain_char_lm"]


@dataclass
class CharLMConfig:
    """Size and pre-training of the base model (defaults: the quick experiments' base)."""

    hidden_size: int = 64
    """Model width."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 4
    """Attention heads (head size hidden_size / num_heads)."""
    intermediate_size: int = 172
    """SwiGLU hidden size (about 8/3 of the width, as Llama's)."""
    max_seq_len: int = 256
    """Longest sequence the model accepts (SST sentences are up to about 270 characters)."""
    steps: int = 300
    """Pre-training steps of train_lm."""
    batch_size: int = 32
    """Windows per step."""
    seq_len: int = 128
    """Characters per training window."""
    lr: float = 3e-3
    """Peak learning rate (higher than Llama 2's 3e-4: a tiny model, few steps)."""
    warmup_steps: int = 30
    """Linear warmup steps."""
    shakespeare: bool = False
    """Also pre-train on Tiny Shakespeare (appended after the SST sentences)."""
    seed: int = 0
    """Seed of the initialisation and of the training windows."""

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "max_seq_len",
            "steps",
            "batch_size",
            "seq_len",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CharLMConfig.{name} must be a positive int, got {value!r}")
        if self.seq_len > self.max_seq_len:
            raise ValueError(
                f"CharLMConfig.seq_len must be <= max_seq_len={self.max_seq_len}, got {self.seq_len}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"CharLMConfig.seed must be an int >= 0, got {self.seed!r}")

    def key(self) -> str:
        """Hash of the configuration: the cache folder's name."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_folder(cache: str | None) -> Path | None:
    """Where an experiment's ``cache`` setting keeps pre-trained bases (:func:`.cache.cache_folder`)."""
    return shared_cache_folder(cache, "char_lm")


def char_lm_corpus(shakespeare: bool = False) -> tuple[str, CharTokenizer]:
    """The pre-training text (SST training sentences, lower-cased, one a line; optionally Tiny
    Shakespeare lower-cased after them) and the character tokenizer (module docstring)."""
    train = [s.lower() for s in load_sst("train")[0]]
    alphabet = set("\n")
    for split in SPLITS:
        for sentence in load_sst(split)[0]:
            alphabet.update(sentence.lower())
    text = "\n".join(train) + "\n"
    if shakespeare:
        extra = load_tinyshakespeare().lower()
        alphabet.update(extra)
        text += extra
    return text, CharTokenizer(alphabet)


def _llama_config(cfg: CharLMConfig, vocab_size: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        max_seq_len=cfg.max_seq_len,
    )


def _load_cached(folder: Path, cfg: CharLMConfig) -> tuple[Llama, CharTokenizer] | None:
    def build(state: dict) -> tuple[Llama, CharTokenizer]:
        tokenizer = CharTokenizer(state["chars"])
        model = Llama(_llama_config(cfg, tokenizer.vocab_size))
        model.load_state_dict(state["model"], strict=True)
        return model, tokenizer

    return load_cached(folder, asdict(cfg), "base-model", build)


def pretrain_char_lm(
    cfg: CharLMConfig | None = None, cache: str | Path | None = None, device: str | torch.device | None = None
) -> tuple[Llama, CharTokenizer]:
    """The pre-trained base model and its tokenizer, from ``cache`` when trained before.

    ``device`` is where pre-training runs (default the CPU; on a GPU with bf16 autocast, see
    :func:`aicanon.language.training.train_lm`); the cache does not record it, so a model cached by a
    GPU run is loaded by later CPU runs as it is. Returns the model in eval mode on the CPU, all
    parameters trainable (callers freeze or wrap).
    """
    cfg = CharLMConfig() if cfg is None else cfg
    if not isinstance(cfg, CharLMConfig):
        raise TypeError(f"cfg must be a CharLMConfig, got {type(cfg).__name__}")
    if cache is not None and not isinstance(cache, (str, Path)):
        raise TypeError(f"cache must be a folder path (str or Path) or None, got {type(cache).__name__}")
    folder = Path(cache) / cfg.key() if cache is not None else None
    if folder is not None and folder.exists():
        loaded = _load_cached(folder, cfg)
        if loaded is not None:
            loaded[0].eval()
            return loaded
    text, tokenizer = char_lm_corpus(cfg.shakespeare)
    ids = tokenizer.encode(text)
    torch.manual_seed(cfg.seed)
    model = Llama(_llama_config(cfg, tokenizer.vocab_size))
    if device is not None:
        model.to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_cfg = PretrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
    )
    # Pre-training checkpoints beside the cache entry: a killed first run resumes (removed once cached).
    training = folder.with_name(folder.name + ".training") if folder is not None else None
    train_lm(
        model,
        ids,
        None,
        train_cfg,
        generator=generator,
        description="pre-training the base",
        checkpoint=training,
        checkpoint_every=max(1, cfg.steps // 20),
    )
    model.cpu().eval()
    if folder is not None:
        save_checkpoint(
            folder, {"model": model.state_dict(), "chars": tokenizer.chars, "config": asdict(cfg)}
        )
        shutil.rmtree(training, ignore_errors=True)
    return model, tokenizer
