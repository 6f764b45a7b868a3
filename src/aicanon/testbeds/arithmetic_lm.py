"""Testbed: a small Llama pre-trained on generated arithmetic word problems (with and without worked
rationales) plus English text, at three sizes: the model the reasoning, evaluation and
RL-from-feedback experiments prompt, sample, fine-tune and score.

The papers it serves (chain of thought, zero-shot CoT, self-consistency, …) were shown on 100B+
models and GSM8K. Their mechanism needs a model that can do a multi-step problem one step at a time
but not all at once; a character-level model trained on problems of this kind has that property at
a size a CPU trains in a minute or two:

    Q: Mia has 7 shells. Mia finds 5 more. Mia gives away 3. How many shells does Mia have now?
    A: Mia starts with 7 shells. 7 + 5 = 12. 12 - 3 = 9. The answer is 9.

Each problem has 1 to ``max_steps`` operations (add, subtract, double, triple) on numbers below 100.
A problem is written in one of three styles:

* ``"cot"``: the worked rationale (one equation per step) then ``The answer is N.`` (the answer
  format of Wei et al.'s exemplars);
* ``"direct"``: ``The answer is N.`` at once;
* ``"trigger"``: ``Let's think step by step.`` (Kojima et al.'s trigger) before the rationale.

Pre-training documents hold 1–4 problems of one style separated by a blank line, so that a few-shot
prompt's exemplars decide the style of the answer (in-context, as in the papers), interleaved with
documents of English text (the Stanford Sentiment Treebank's training sentences, labels never seen).
The split between training and held-out problems is by a hash of the question text: a held-out
question never occurs in pre-training.

:func:`pretrain_arithmetic_lm` trains once per configuration and caches the weights by the config's
hash (as :mod:`.char_lm` does); :func:`arithmetic_language_model` wraps the model as a
:class:`~aicanon.language.completion.LanguageModel`, and :func:`save_arithmetic_lm` writes the
transformers-format folder that ``aicanon serve`` serves.

The tokenizer is Llama's kind (Touvron et al. 2023, Section 2.1): byte-pair encoding trained on
the corpus, every number split into single digits, bytes as the fallback (byte-level BPE, so any
text encodes). Digit tokens keep the arithmetic a digit-by-digit skill; the merged word pieces make
a few-shot prompt about 2.5 times shorter than in characters, so an 8-exemplar chain-of-thought
prompt fits the context the model is trained on. Training windows (``seq_len``) must be as long as
the prompts the experiments send: a model trained on short windows does not generalise to longer
positions, and answers long few-shot prompts with noise.

Calibration (the default configuration: ``small``, 0.1M parameters, 1,500 steps of 16 x 512 tokens;
4-shot prompts, greedy decoding, 40 held-out problems per step count): chain-of-thought answers are
right for 88 %, 85 % and 65 % of the 1-, 2- and 3-step problems, direct answers for 15 %, 5 % and
8 %. The model computes one step at a time, not several at once: the mechanism the reasoning papers
rely on. Pre-training took 45 minutes on two heavily shared cores (about a fifth of that alone is
our estimate); the medium and large sizes of the scale sweep have not been calibrated yet.

Choices not from any paper (the papers pre-train on web text at scale): the task, its styles and
their mix; the vocabulary's size.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from aicanon.core.checkpoint import save_checkpoint
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.sst import load_sst
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.local_backend import LocalLanguageModel, TokenizersAdapter
from aicanon.language.training import PretrainConfig, train_lm
from aicanon.testbeds.cache import cache_folder as shared_cache_folder
from aicanon.testbeds.cache import load_cached

__all__ = [
    "ANSWER_PREFIX",
    "SIZES",
    "STYLES",
    "TRIGGER",
    "ArithmeticLMConfig",
    "ArithmeticProblem",
    "arithmetic_corpus",
    "arithmetic_language_model",
    "arithmetic_problems",
    "cache_folder",
    "pretrain_arithmetic_lm",
    "save_arithmetic_lm",
    "train_tokenizer",
]

ANSWER_PREFIX = "The answer is"
TRIGGER = "Let's think step by step."
STYLES = ("cot", "direct", "trigger")
SIZES: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 48, "num_layers": 2, "num_heads": 4, "intermediate_size": 128},
    "medium": {"hidden_size": 96, "num_layers": 3, "num_heads": 4, "intermediate_size": 256},
    "large": {"hidden_size": 160, "num_layers": 4, "num_heads": 4, "intermediate_size": 432},
}
"""The three sizes of the scale sweep (about 0.06M, 0.35M and 1.3M parameters)."""

_NAMES = ("Ann", "Ben", "Cara", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ivy", "Jack", "Kim", "Leo", "Mia")
_ITEMS = ("apples", "books", "coins", "cards", "eggs", "pens", "shells", "stamps", "marbles", "toys")
_LIMIT = 100  # every number in a problem (start, operands, intermediate results) stays below this
_HELD_OUT = 10  # one question in _HELD_OUT (by hash) is held out of pre-training


@dataclass(frozen=True)
class ArithmeticProblem:
    """One word problem: its question, its steps ``(operator, operand, before, after)`` and answer."""

    question: str
    steps: tuple[tuple[str, int, int, int], ...]
    answer: int
    subject: str = ""
    item: str = ""

    @property
    def rationale(self) -> str:
        """The worked solution: the starting amount, then one equation per step, then the answer."""
        start = self.steps[0][2]
        parts = [f"{self.subject} starts with {start} {self.item}."]
        parts += [f"{before} {op} {operand} = {after}." for op, operand, before, after in self.steps]
        return " ".join(parts + [f"{ANSWER_PREFIX} {self.answer}."])

    def answer_text(self, style: str) -> str:
        """What follows ``A:`` in the given style (:data:`STYLES`)."""
        check_choice("style", style, STYLES)
        if style == "direct":
            return f"{ANSWER_PREFIX} {self.answer}."
        return f"{TRIGGER} {self.rationale}" if style == "trigger" else self.rationale

    def format(self, style: str) -> str:
        """``Q: <question>\\nA: <answer in the style>``."""
        return f"Q: {self.question}\nA: {self.answer_text(style)}"

    @property
    def held_out(self) -> bool:
        """Whether this question belongs to the held-out split (never seen in pre-training)."""
        digest = hashlib.sha256(self.question.encode()).digest()
        return digest[0] % _HELD_OUT == 0


def _problem(rng: random.Random, steps: int) -> ArithmeticProblem:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    value = rng.randint(2, 30)
    sentences = [f"{name} has {value} {item}."]
    record = []
    for _ in range(steps):
        choices = ["+"] if value < 2 else ["+", "-"]
        if value * 2 < _LIMIT:
            choices.append("*")
        op = rng.choice(choices)
        if op == "+":
            operand = rng.randint(1, min(30, _LIMIT - 1 - value)) if value < _LIMIT - 1 else 0
            if operand == 0:
                op, operand = "-", rng.randint(1, value - 1)
        elif op == "-":
            operand = rng.randint(1, value - 1)
        else:
            operand = 3 if value * 3 < _LIMIT and rng.random() < 0.4 else 2
        after = {"+": value + operand, "-": value - operand, "*": value * operand}[op]
        if op == "+":
            sentences.append(rng.choice([f"{name} finds {operand} more.", f"{name} buys {operand} more."]))
        elif op == "-":
            sentences.append(rng.choice([f"{name} gives away {operand}.", f"{name} loses {operand}."]))
        else:
            sentences.append(f"Then the {item} {'double' if operand == 2 else 'triple'}.")
        record.append((op, operand, value, after))
        value = after
    sentences.append(f"How many {item} does {name} have now?")
    return ArithmeticProblem(" ".join(sentences), tuple(record), value, name, item)


def arithmetic_problems(
    count: int, *, seed: int = 0, split: str = "train", min_steps: int = 1, max_steps: int = 3
) -> list[ArithmeticProblem]:
    """``count`` distinct problems of ``split`` (``"train"`` or ``"test"``, the held-out questions)
    with ``min_steps``..``max_steps`` operations, drawn deterministically from ``seed``."""
    check_int("count", count)
    check_choice("split", split, ("train", "test"))
    check_int("min_steps", min_steps)
    check_int("max_steps", max_steps, min_steps)
    rng = random.Random(f"arithmetic/{seed}/{min_steps}/{max_steps}")
    problems: list[ArithmeticProblem] = []
    seen: set[str] = set()
    for _ in range(count * _HELD_OUT * 50):
        problem = _problem(rng, rng.randint(min_steps, max_steps))
        if problem.held_out == (split == "test") and problem.question not in seen:
            seen.add(problem.question)
            problems.append(problem)
            if len(problems) == count:
                return problems
    raise ValueError(f"could not draw {count} distinct {split} problems with {min_steps}-{max_steps} steps")


@dataclass
class ArithmeticLMConfig:
    """Size, corpus and pre-training of the model (defaults: the calibrated ``"small"`` model of the
    module docstring)."""

    size: str = "small"
    """One of :data:`SIZES`."""
    problems: int = 20000
    """Training problems in the corpus (each written once, in one style)."""
    style_mix: dict[str, float] = field(default_factory=lambda: {"cot": 0.5, "direct": 0.35, "trigger": 0.15})
    """Share of problem documents in each style."""
    text_fraction: float = 0.15
    """Share of documents that are English text (SST training sentences)."""
    max_steps: int = 3
    """Most operations per training problem."""
    vocab_size: int = 512
    """Size of the BPE vocabulary (two special tokens, 256 bytes, merges)."""
    steps: int = 1500
    """Pre-training steps."""
    batch_size: int = 16
    seq_len: int = 512
    """Tokens per training window (about 1,300 characters: an 8-exemplar CoT prompt)."""
    lr: float = 3e-3
    """Peak learning rate (far above Llama 2's 3e-4: a tiny model, few steps)."""
    warmup_steps: int = 100
    max_seq_len: int = 1024
    """Longest context the model accepts (its RoPE table; it is trained on ``seq_len``)."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("size", self.size, tuple(SIZES))
        for name in ("problems", "max_steps", "steps", "batch_size", "seq_len", "max_seq_len"):
            check_int(name, getattr(self, name))
        check_int("vocab_size", self.vocab_size, 260, note="2 special tokens, 256 bytes and merges")
        check_int("warmup_steps", self.warmup_steps, 0)
        check_int("seed", self.seed, 0)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_float("text_fraction", self.text_fraction, 0.0, 1.0, max_inclusive=False)
        if not isinstance(self.style_mix, dict) or set(self.style_mix) - set(STYLES) or not self.style_mix:
            raise ValueError(f"style_mix must map some of {STYLES} to shares, got {self.style_mix!r}")
        for style, share in self.style_mix.items():
            check_float(f"style_mix[{style!r}]", share, 0.0, finite=True)
        if sum(self.style_mix.values()) <= 0:
            raise ValueError(f"style_mix must have a positive share, got {self.style_mix!r}")
        if self.seq_len > self.max_seq_len:
            raise ValueError(f"seq_len must be <= max_seq_len={self.max_seq_len}, got {self.seq_len}")

    def key(self) -> str:
        """Hash of the configuration: the cache folder's name."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def arithmetic_corpus(cfg: ArithmeticLMConfig) -> str:
    """The pre-training text: documents of 1–4 same-style problems and of English text, shuffled,
    separated by blank lines (module docstring)."""
    rng = random.Random(f"corpus/{cfg.seed}")
    problems = arithmetic_problems(cfg.problems, seed=cfg.seed, max_steps=cfg.max_steps)
    styles, weights = zip(*cfg.style_mix.items(), strict=True)
    documents: list[str] = []
    index = 0
    while index < len(problems):
        size = rng.randint(1, 4)
        style = rng.choices(styles, weights)[0]
        documents.append("\n\n".join(p.format(style) for p in problems[index : index + size]))
        index += size
    if cfg.text_fraction > 0:
        sentences = load_sst("train")[0]
        wanted = round(len(documents) * cfg.text_fraction / (1 - cfg.text_fraction))
        order = list(range(len(sentences)))
        rng.shuffle(order)
        for k in range(wanted):
            start = order[k % len(order)]
            documents.append(" ".join(sentences[(start + j) % len(sentences)] for j in range(3)))
    rng.shuffle(documents)
    return "\n\n".join(documents) + "\n\n"


def train_tokenizer(text: str, vocab_size: int = 512) -> TokenizersAdapter:
    """A byte-level BPE ``tokenizers`` tokenizer trained on ``text`` (module docstring): numbers split
    into single digits, ``<s>`` = 0 and ``</s>`` = 1, any text encodes and decodes back exactly.
    Deterministic: the same text gives the same vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    check_int("vocab_size", vocab_size, 260, note="2 special tokens, 256 bytes and merges")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text.split("\n\n"), trainer)
    return TokenizersAdapter(tokenizer)


def _llama_config(cfg: ArithmeticLMConfig, vocab_size: int) -> LlamaConfig:
    return LlamaConfig(vocab_size=vocab_size, max_seq_len=cfg.max_seq_len, **SIZES[cfg.size])


def cache_folder(cache: str | Path | None) -> Path | None:
    """Where an experiment's ``cache`` setting keeps pre-trained models (:func:`.cache.cache_folder`)."""
    return shared_cache_folder(cache, "arithmetic_lm")


def _load_cached(folder: Path, cfg: ArithmeticLMConfig) -> tuple[Llama, TokenizersAdapter] | None:
    from tokenizers import Tokenizer

    def build(state: dict) -> tuple[Llama, TokenizersAdapter]:
        tokenizer = TokenizersAdapter(Tokenizer.from_str(state["tokenizer"]))
        model = Llama(_llama_config(cfg, tokenizer.tokenizer.get_vocab_size()))
        model.load_state_dict(state["model"], strict=True)
        return model, tokenizer

    return load_cached(folder, asdict(cfg), "arithmetic-LM", build)


def pretrain_arithmetic_lm(
    cfg: ArithmeticLMConfig | None = None,
    cache: str | Path | None = None,
    device: str | torch.device | None = None,
) -> tuple[Llama, TokenizersAdapter]:
    """The pre-trained model (eval mode, on the CPU) and its tokenizer, from ``cache`` when trained
    before (``cache`` is a folder, or None for no cache: see :func:`cache_folder`)."""
    cfg = ArithmeticLMConfig() if cfg is None else cfg
    if not isinstance(cfg, ArithmeticLMConfig):
        raise TypeError(f"cfg must be an ArithmeticLMConfig, got {type(cfg).__name__}")
    if cache is not None and not isinstance(cache, (str, Path)):
        raise TypeError(f"cache must be a folder path (str or Path) or None, got {type(cache).__name__}")
    folder = Path(cache) / cfg.key() if cache is not None else None
    if folder is not None and folder.exists():
        loaded = _load_cached(folder, cfg)
        if loaded is not None:
            loaded[0].eval()
            return loaded
    text = arithmetic_corpus(cfg)
    tokenizer = train_tokenizer(text, cfg.vocab_size)
    ids = torch.tensor(tokenizer.tokenizer.encode(text).ids, dtype=torch.long)
    torch.manual_seed(cfg.seed)
    model = Llama(_llama_config(cfg, tokenizer.tokenizer.get_vocab_size()))
    if device is not None:
        model.to(device)
    train = PretrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    # Pre-training checkpoints beside the cache entry: a killed first run resumes (removed once cached).
    training = folder.with_name(folder.name + ".training") if folder is not None else None
    train_lm(
        model,
        ids,
        None,
        train,
        generator=generator,
        description=f"pre-training the {cfg.size} model",
        checkpoint=training,
        checkpoint_every=max(1, cfg.steps // 20),
    )
    model.cpu().eval()
    if folder is not None:
        state = {
            "model": model.state_dict(),
            "tokenizer": tokenizer.tokenizer.to_str(),
            "config": asdict(cfg),
        }
        save_checkpoint(folder, state)
        shutil.rmtree(training, ignore_errors=True)
    return model, tokenizer


def arithmetic_language_model(
    cfg: ArithmeticLMConfig | None = None, cache: str | Path | None = None, *, seed: int = 0
) -> LocalLanguageModel:
    """The pre-trained model as a :class:`~aicanon.language.completion.LanguageModel` (``seed`` seeds
    its sampler); use stop sequences such as ``"\\n\\n"`` to end a completion after one answer."""
    model, tokenizer = pretrain_arithmetic_lm(cfg, cache)
    return LocalLanguageModel(model, tokenizer, eos_token_id=1, seed=seed)


def save_arithmetic_lm(model: Llama, tokenizer: TokenizersAdapter, folder: str | Path) -> Path:
    """Write ``model`` and ``tokenizer`` as a transformers-format Llama folder (``config.json``,
    ``model.safetensors``, ``tokenizer.json``, ``generation_config.json``) that
    :func:`~aicanon.language.local_backend.load_local_language_model`, ``aicanon serve`` and
    transformers' ``LlamaForCausalLM`` load."""
    from aicanon.language.llama_weights import save_pretrained

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_pretrained(model, folder)
    tokenizer.tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": 1}), encoding="utf-8")
    return folder
