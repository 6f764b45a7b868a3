"""The LLM lifecycle of "A Survey of Large Language Models" (Zhao et al. 2023, arXiv 2303.18223) as one
pipeline: pre-training (Section 4), adaptation by instruction tuning and alignment tuning (Section 5:
5.1 instruction tuning, 5.2 alignment by RLHF/PPO and by DPO-style supervised alignment), utilisation
by prompting (Section 6) and capacity evaluation (Section 7), every stage evaluated on every metric.

A survey has no single experiment; its deliverable here (issue 23, rank 65) is the lifecycle run end
to end on one small Llama-architecture model, with the survey's point as the claim: *each stage
improves the capacity it targets without collapsing the others*.

Per seed:

1. **Pre-training** (Section 4): the cached arithmetic testbed model
   (:mod:`aicanon.testbeds.arithmetic_lm`, a 0.1M-parameter Llama with a BPE tokenizer, pre-trained on
   arithmetic word problems and SST text; never retrained here: every later stage starts from a *copy*
   of its weights). The stage before it is the same architecture at its random initialisation.
2. **Instruction tuning** (Section 5.1, :func:`aicanon.align.sft.train_sft`): ``sft_steps`` steps on
   generated demonstrations ``Instruction: <task>\nResponse: <answer></s>``: "Answer with the number
   only. <word problem>" (answered ``The answer is N.``), "Explain step by step. <word problem>"
   (answered with the worked rationale), and "Write a movie review sentence." (answered with SST
   training sentences, positive and negative alike); a third of the "explain" demonstrations keep the
   pre-training format ``Q: ...\nA:`` (data mixing, Section 5.1.2).
3. **Alignment** (Section 5.2), two methods from the instruction-tuned model, each compared with it,
   both towards one *preference*, positive reviews (the DPO paper's IMDb task in miniature):
   **DPO** (:func:`aicanon.align.dpo.train_dpo`) on ``dpo_pairs`` pairs (preferred: a positive SST
   training sentence, rejected: a negative one), and **PPO** with a per-token KL penalty to the
   instruction-tuned model (:class:`aicanon.align.rlhf.RLHFTrainer`, InstructGPT's stage 3; PPO-ptx
   with ``ppo_ptx > 0``) against the preference reward on sampled reviews.
4. **Evaluation** (Section 7) of all five stages (init, pre-trained, instruction-tuned, DPO, PPO) on
   four metrics:

   * ``perplexity``: held-out perplexity of corpus-like text: held-out word problems (questions never
     in pre-training) in the corpus' three styles and SST dev sentences (language modelling,
     Section 7.1.1);
   * ``instruction``: instruction following (%): the share of greedy responses to held-out
     instructions (held-out questions, half "number only", half "explain") that have the form asked
     for (:func:`follows`);
   * ``reward``: the preference reward (x 100), a fixed rule standing for the labeler
     (:func:`sentiment_reward`: ``sigmoid(3 x`` the mean SST log-odds of positive vs negative of the
     response's words ``)``), averaged over ``eval_items`` reviews sampled at T = 1;
   * ``arithmetic``: zero-shot accuracy (%) on held-out word problems prompted in the pre-training
     format ``Q: ...\nA:`` (greedy, the answer read after "The answer is"): a capability the adaptation
     stages must not destroy (Section 7.1.1, reasoning).

Claims (means over seeds): the target metric of each stage improves over the stage before it
(pre-training: perplexity falls; instruction tuning: instruction following rises; DPO and PPO: the
preference reward rises), and no stage's other metrics get worse by more than a stated tolerance (perplexity
up by at most ``ppl_tolerance`` %, a score down by at most ``score_tolerance`` points). Ablation
``ablation="lr0"`` runs every adaptation stage with learning rate 0 (train_sft refuses lr 0, so
instruction tuning is skipped; DPO runs with lr 0; PPO with 1e-12, as RLHFConfig refuses 0): the
gain claims fail (all three gains are 0.0).

Departures (the survey's subjects are 10B+ models on trillions of tokens): the model, its corpus and
the tasks are ours and tiny; the preference reward is a rule, not a learned reward model (the survey's
RLHF trains one; a rule is the labeler the reward model would approximate; the issue allows either);
every stage runs tens of steps. Nothing in the survey gives a number for these claims: the claims
carry ``paper=None``.

Full configuration (written, smoke-tested with tiny overrides in the tests): the testbed's ``large``
size (1.3M parameters, uncalibrated: pre-training it costs another 1-2 GPU hours), 2,000 SFT steps,
1,000 DPO steps, 500 PPO iterations of 64 prompts, 500 held-out items per metric: about 1 GPU hour
after pre-training. The full run keeps each finished stage (``checkpoint``: the stage's weights, its
training curve and the RNG states after it, under ``<results>/_checkpoints/llm-survey``), so a killed
seed resumes at the first unfinished stage and ends with the uninterrupted seed's metrics; the stages
are removed when the seed is done.

Cost of the quick run (3 seeds): about 15 s per seed on one thread of a shared CPU once the testbed
model is cached (SFT 2.4 s, DPO 4.6 s, PPO 8 s, evaluation 1.2 s); 48 s for the three seeds.
"""

from __future__ import annotations

import copy
import math
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from aicanon.align.dpo import DPOConfig, train_dpo
from aicanon.align.reward_model import RewardModel
from aicanon.align.rlhf import RLHFConfig, RLHFTrainer, ValueModel
from aicanon.align.sft import SFTConfig, tokenize_example, train_sft
from aicanon.core import Claim, ExperimentConfig, Result, rng_state, seed, set_rng_state
from aicanon.core.checkpoint import load_or_compute
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.core.results import checkpoint_folder
from aicanon.datasets.sst import load_sst
from aicanon.language.generation import generate, left_pad
from aicanon.language.llama import Llama
from aicanon.testbeds.arithmetic_lm import (
    ANSWER_PREFIX,
    STYLES,
    ArithmeticLMConfig,
    arithmetic_corpus,
    arithmetic_problems,
    cache_folder,
    pretrain_arithmetic_lm,
)

STAGES = ("init", "pretrained", "sft", "dpo", "ppo")
"""The lifecycle's stages, in the table's order (``dpo`` and ``ppo`` both start from ``sft``)."""
PREVIOUS = {"pretrained": "init", "sft": "pretrained", "dpo": "sft", "ppo": "sft"}
TARGET = {"pretrained": "perplexity", "sft": "instruction", "dpo": "reward", "ppo": "reward"}
METRICS = ("perplexity", "instruction", "reward", "arithmetic")
EOS = 1  # the testbed tokenizer's </s>


@dataclass
class Config(ExperimentConfig):
    cache: str | None = None
    """Folder of the pre-trained testbed model (None: the project's results/_cache)."""
    testbed: dict = field(default_factory=dict)
    """Overrides of :class:`ArithmeticLMConfig` (empty: the calibrated, cached default; the tests pass
    a tiny configuration)."""
    sft_steps: int = 60
    """Instruction-tuning steps."""
    sft_lr: float = 1e-3
    sft_batch_size: int = 16
    sft_examples: int = 400
    """Instruction demonstrations (a third each: repeat, reverse, solve)."""
    dpo_steps: int = 40
    """DPO steps (batches of ``dpo_batch_size`` pairs)."""
    dpo_lr: float = 1e-4
    dpo_beta: float = 0.5
    """DPO's beta (the paper: 0.1, the full config's; 0.5 at quick scale held the other metrics)."""
    dpo_batch_size: int = 16
    dpo_pairs: int = 160
    """(positive, negative) review pairs (SST training sentences) for DPO."""
    ppo_iterations: int = 30
    """PPO iterations (one rollout of ``ppo_prompts`` prompts and one update each)."""
    ppo_prompts: int = 32
    ppo_lr: float = 1e-4
    ppo_reward_scale: float = 10.0
    """PPO's reward is ``scale * (rule - 0.5)`` (the rule's x 100 stays the reported metric)."""
    ppo_ptx: float = 0.0
    """PPO-ptx's pre-training loss coefficient gamma (InstructGPT: 27.8; 0: plain PPO)."""
    ppo_beta: float = 0.1
    """KL coefficient to the instruction-tuned model (InstructGPT: 0.02, the full config's; 0.1 at quick
    scale kept the tiny model's arithmetic, where 0.02 lost up to 20 points)."""
    max_steps: int = 2
    """Most operations of the instruction and evaluation word problems."""
    max_new_tokens: int = 48
    """Response budget (a 2-step rationale is about 40 tokens)."""
    eval_items: int = 32
    """Held-out instructions and held-out word problems per metric."""
    arithmetic_steps: int = 1
    """Operations of the held-out word problems of the arithmetic metric."""
    ppl_windows: int = 16
    """Windows of ``ppl_seq_len`` tokens of held-out text for the perplexity."""
    ppl_seq_len: int = 128
    ppl_tolerance: float = 40.0
    """Largest allowed rise of perplexity (%) caused by a stage whose target is another metric."""
    score_tolerance: float = 20.0
    """Largest allowed drop (points) of a score caused by a stage whose target is another metric."""
    ablation: str = "none"
    """``"none"`` or ``"lr0"`` (adaptation stages with learning rate 0: module docstring)."""
    checkpoint: bool = False
    """Keep each finished adaptation stage under the results folder, so that a killed seed resumes at
    the first unfinished one (module docstring); the full run does."""

    def __post_init__(self) -> None:
        for name in (
            "sft_batch_size",
            "sft_examples",
            "dpo_batch_size",
            "dpo_pairs",
            "ppo_prompts",
            "eval_items",
        ):
            check_int(name, getattr(self, name))
        for name in ("sft_steps", "dpo_steps", "ppo_iterations"):
            check_int(name, getattr(self, name), 0)
        check_int("max_steps", self.max_steps)
        check_int("max_new_tokens", self.max_new_tokens)
        check_int("arithmetic_steps", self.arithmetic_steps, 1)
        check_int("ppl_windows", self.ppl_windows)
        check_int("ppl_seq_len", self.ppl_seq_len, 2)
        for name in ("sft_lr", "dpo_lr", "ppo_lr", "dpo_beta"):
            check_float(name, getattr(self, name), 0.0, min_inclusive=False, finite=True)
        check_float("ppo_ptx", self.ppo_ptx, 0.0, finite=True)
        check_float("ppo_reward_scale", self.ppo_reward_scale, 0.0, min_inclusive=False, finite=True)
        check_float("ppo_beta", self.ppo_beta, 0.0, finite=True, note="the KL coefficient")
        check_float("ppl_tolerance", self.ppl_tolerance, 0.0, finite=True)
        check_float("score_tolerance", self.score_tolerance, 0.0, finite=True)
        check_choice("ablation", self.ablation, ("none", "lr0"))
        if not isinstance(self.testbed, dict):
            raise TypeError(f"testbed must be a dict of ArithmeticLMConfig overrides, got {self.testbed!r}")
        ArithmeticLMConfig(**self.testbed)  # validates the overrides

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=3, threads=1)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=3,
            testbed={"size": "large"},
            sft_steps=2000,
            sft_lr=1e-3,
            sft_examples=20000,
            dpo_steps=1000,
            dpo_lr=1e-4,
            dpo_batch_size=64,
            ppo_iterations=500,
            ppo_prompts=64,
            ppo_lr=1e-4,
            ppo_beta=0.02,
            dpo_beta=0.1,
            max_steps=3,
            max_new_tokens=80,
            eval_items=500,
            arithmetic_steps=2,
            ppl_windows=256,
            ppl_seq_len=512,
            checkpoint=True,
        )


# Quick thresholds, from seeds 0-2 of the quick config (per seed: pre-trained/init perplexity 0.011,
# 0.018, 0.014; instruction gain 100, 100, 100 points; DPO reward gain +1.40, +1.42, +0.86; PPO
# +2.56, +1.72, +0.30; worst perplexity rise 25, 21, 26 % (instruction tuning's); worst score drop
# 6.3, 18.8, 15.6 points (DPO's arithmetic accuracy, 32 problems: 3.1 points each)). The gains'
# thresholds sit below the means; the learning-rate-0 ablation gives 0 for every gain and fails.
# The reward gains are small (the rule's scale: ~52 -> ~54): alignment moves the tiny model's reviews
# only a little in tens of steps. The tolerances (40 %, 20 points) are ours (the issue asks for a
# stated one); a 10-point tolerance would fail on seeds 1 and 2 (DPO's alignment tax on arithmetic).
CLAIMS = [
    Claim(
        metric="pretrain_ppl_ratio",
        description="pre-trained / random-init perplexity on held-out text (pre-training's target)",
        paper=None,
        source="Section 4 (pre-training builds language modelling; the survey gives no number)",
        quick=0.1,
        full=0.1,
        higher_is_better=False,
    ),
    Claim(
        metric="sft_instruction_gain",
        description="instruction tuning minus pre-trained: held-out instructions followed, points",
        paper=None,
        source="Section 5.1 (instruction tuning; no number for this set-up)",
        quick=50.0,
        full=50.0,
        unit="points",
    ),
    Claim(
        metric="dpo_reward_gain",
        description="DPO minus instruction-tuned: preference reward x 100 on held-out instructions",
        paper=None,
        source="Section 5.2 (alignment tuning; no number for this set-up)",
        quick=0.5,
        full=2.0,
        unit="points",
    ),
    Claim(
        metric="ppo_reward_gain",
        description="PPO minus instruction-tuned: preference reward x 100 on held-out instructions",
        paper=None,
        source="Section 5.2.3 (RLHF with PPO; no number for this set-up)",
        quick=0.5,
        full=2.0,
        unit="points",
    ),
    Claim(
        metric="worst_ppl_increase",
        description="largest rise of held-out perplexity caused by an adaptation stage (%)",
        paper=None,
        source="our stated tolerance (Config.ppl_tolerance; the issue names none)",
        quick=40.0,
        full=40.0,
        higher_is_better=False,
        unit="%",
    ),
    Claim(
        metric="worst_score_drop",
        description="largest drop of a non-target score (instruction, reward, arithmetic) caused by a stage",
        paper=None,
        source="our stated tolerance (Config.score_tolerance; the issue names none)",
        quick=20.0,
        full=20.0,
        higher_is_better=False,
        unit="points",
    ),
]


# -- data -------------------------------------------------------------------------------------------

BRIEF = "Answer with the number only."
EXPLAIN = "Explain step by step."


def _instruction(kind: str, problem) -> tuple[str, str, int]:
    """(prompt, target response, answer) of one instruction about a word problem."""
    target = f"{ANSWER_PREFIX} {problem.answer}." if kind == BRIEF else problem.rationale
    return f"Instruction: {kind} {problem.question}\nResponse:", " " + target, problem.answer


def _instructions(
    cfg: Config, run_seed: int
) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """Training demonstrations (training-split problems) and held-out instructions (held-out problems),
    half asking for the number only, half for the worked steps."""
    rng = random.Random(f"llm-survey/{run_seed}")
    kinds = (BRIEF, EXPLAIN)
    problems = arithmetic_problems(cfg.sft_examples, split="train", seed=run_seed, max_steps=cfg.max_steps)
    held = arithmetic_problems(cfg.eval_items, split="test", seed=run_seed, max_steps=cfg.max_steps)
    train = [_instruction(rng.choice(kinds), p) for p in problems]
    test = [_instruction(kinds[i % 2], p) for i, p in enumerate(held)]
    return train, test


REVIEW = "Instruction: Write a movie review sentence.\nResponse:"


def sentiment_lexicon(min_count: int = 5) -> dict[str, float]:
    """The preference rule's word weights: the smoothed log-odds ``log((n_pos + 1) / (n_neg + 1))`` of
    each word (seen at least ``min_count`` times) appearing in a positive (root 3-4) rather than a
    negative (0-1) SST training sentence."""
    sentences, labels = load_sst("train")
    counts: dict[str, list[int]] = {}
    for text, label in zip(sentences, labels.tolist(), strict=True):
        if label == 2:
            continue
        for word in set(text.lower().split()):
            counts.setdefault(word, [0, 0])[int(label > 2)] += 1
    return {w: math.log((c[1] + 1) / (c[0] + 1)) for w, c in counts.items() if sum(c) >= min_count}


def sentiment_reward(response: str, lexicon: dict[str, float]) -> float:
    """The fixed preference rule (the labeler of the alignment stages): ``sigmoid(3 * mean log-odds)``
    of the response's words (unknown words count 0; an empty response scores 0.5)."""
    words = response.lower().split()
    mean = sum(lexicon.get(w, 0.0) for w in words) / max(1, len(words))
    return 1.0 / (1.0 + math.exp(-3.0 * mean))


def _reviews(count: int, run_seed: int) -> tuple[list[str], list[str]]:
    """Positive and negative SST training sentences (``count`` each), for SFT and DPO."""
    sentences, labels = load_sst("train")
    rng = random.Random(f"llm-survey-reviews/{run_seed}")
    positive = [s for s, y in zip(sentences, labels.tolist(), strict=True) if y >= 3 and len(s.split()) <= 20]
    negative = [s for s, y in zip(sentences, labels.tolist(), strict=True) if y <= 1 and len(s.split()) <= 20]
    return rng.sample(positive, count), rng.sample(negative, count)


def follows(prompt: str, response: str) -> bool:
    """Whether ``response`` has the form the instruction asks for: ``The answer is N.`` alone for the
    number-only instruction; a worked rationale (``... starts with ...``) ending with it otherwise."""
    text = response.strip()
    brief = re.fullmatch(rf"{ANSWER_PREFIX} \d+\.", text) is not None
    if BRIEF in prompt:
        return brief
    return " starts with " in text and re.search(rf"{ANSWER_PREFIX} \d+\.$", text) is not None


def preference_reward(prompt: str, response: str, answer: int) -> float:
    """A rule for the arithmetic instructions: 0.5 for the requested form, 0.5 for the right answer
    (reported as ``instruction_reward``; the alignment stages' preference is :func:`sentiment_reward`)."""
    return 0.5 * follows(prompt, response) + 0.5 * (_stated_answer(response) == str(answer))


def _held_out_text(cfg: Config, run_seed: int) -> str:
    rng = random.Random(f"llm-survey-text/{run_seed}")
    problems = arithmetic_problems(3 * cfg.ppl_windows, split="test", seed=run_seed)
    documents = [p.format(rng.choice(STYLES)) for p in problems]
    sentences = load_sst("dev")[0]
    documents += [" ".join(rng.sample(sentences, 3)) for _ in range(cfg.ppl_windows)]
    rng.shuffle(documents)
    return "\n\n".join(documents)


# -- evaluation (Section 7) -------------------------------------------------------------------------


@torch.no_grad()
def perplexity(model: nn.Module, ids: Tensor, windows: int, seq_len: int) -> float:
    """exp of the mean next-token NLL over ``windows`` consecutive windows of ``seq_len`` tokens."""
    usable = min(windows, (ids.numel() - 1) // seq_len)
    if usable < 1:
        raise ValueError(f"held-out text of {ids.numel()} tokens is shorter than one window of {seq_len}")
    rows = ids[: usable * seq_len + 1]
    inputs = rows[:-1].view(usable, seq_len)
    labels = rows[1:].view(usable, seq_len)
    model.eval()
    logits = model(inputs)
    logits = logits[0] if isinstance(logits, tuple) else logits
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1))
    return math.exp(float(nll))


@torch.no_grad()
def _greedy(model: nn.Module, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    ids, mask = left_pad([tokenizer.encode(p) for p in prompts])
    model.eval()
    out = generate(model, ids, mask, max_new_tokens=max_new_tokens, temperature=0.0, eos_token_id=EOS)
    texts = []
    for row in out[:, ids.shape[1] :].tolist():
        row = row[: row.index(EOS)] if EOS in row else row
        texts.append(tokenizer.decode(row))
    return texts


@torch.no_grad()
def _sample(model: nn.Module, tokenizer, prompts: list[str], max_new_tokens: int, run_seed: int) -> list[str]:
    ids, mask = left_pad([tokenizer.encode(p) for p in prompts])
    model.eval()
    generator = torch.Generator().manual_seed(run_seed)
    out = generate(
        model,
        ids,
        mask,
        max_new_tokens=max_new_tokens,
        temperature=1.0,
        eos_token_id=EOS,
        generator=generator,
    )
    texts = []
    for row in out[:, ids.shape[1] :].tolist():
        row = row[: row.index(EOS)] if EOS in row else row
        texts.append(tokenizer.decode(row))
    return texts


def _first_line(text: str) -> str:
    return text.split("\n")[0].strip()


def _scores(prompts: list[str], responses: list[str], answers: list[int]) -> tuple[float, float]:
    """Instruction following (% of responses in the requested form) and preference reward (x 100)."""
    follow = [follows(p, r) for p, r in zip(prompts, responses, strict=True)]
    reward = [preference_reward(p, r, a) for p, r, a in zip(prompts, responses, answers, strict=True)]
    return 100.0 * sum(follow) / len(follow), 100.0 * sum(reward) / len(reward)


def _stated_answer(text: str) -> str | None:
    text = text.split("\n\n")[0]
    if ANSWER_PREFIX not in text:
        return None
    tail = text.split(ANSWER_PREFIX, 1)[1].strip()
    digits = ""
    for char in tail:
        if not char.isdigit():
            break
        digits += char
    return digits or None


def evaluate(model: nn.Module, tokenizer, data: dict, cfg: Config) -> dict[str, float]:
    """The four metrics of one stage (module docstring)."""
    prompts = [p for p, _, _ in data["test"]]
    responses = [_first_line(r) for r in _greedy(model, tokenizer, prompts, cfg.max_new_tokens)]
    instruction, _ = _scores(prompts, responses, [a for _, _, a in data["test"]])
    reviews = _sample(model, tokenizer, [REVIEW] * cfg.eval_items, cfg.max_new_tokens, 7919)
    reward = 100.0 * sum(sentiment_reward(_first_line(r), data["lexicon"]) for r in reviews) / len(reviews)
    answers = _greedy(
        model, tokenizer, [f"Q: {p.question}\nA:" for p in data["problems"]], cfg.max_new_tokens
    )
    return {
        "perplexity": perplexity(model, data["held_out_ids"], cfg.ppl_windows, cfg.ppl_seq_len),
        "instruction": instruction,
        "reward": reward,
        "arithmetic": 100.0
        * sum(_stated_answer(a) == str(p.answer) for a, p in zip(answers, data["problems"], strict=True))
        / len(answers),
    }


# -- the stages (Sections 4-5) ----------------------------------------------------------------------


def instruction_tune(
    model: Llama, tokenizer, train: list[tuple[str, str]], cfg: Config, run_seed: int
) -> dict:
    # Data mixing (Section 5.1.2): a third of the demonstrations keep the pre-training format.
    mixed = [
        (p.replace("Instruction: " + EXPLAIN + " ", "Q: ").replace("\nResponse:", "\nA:"), r)
        if i % 3 == 0 and EXPLAIN in p
        else (p, r)
        for i, (p, r, _) in enumerate(train)
    ]
    positive, negative = _reviews(max(1, len(train) // 4), run_seed)
    mixed += [(REVIEW, " " + text) for text in positive + negative]  # both sentiments: no preference yet
    examples = [tokenize_example(p, r, tokenizer.encode, EOS) for p, r in mixed]
    sft = SFTConfig(steps=cfg.sft_steps, batch_size=cfg.sft_batch_size, lr=cfg.sft_lr, warmup_steps=5)
    if cfg.ablation == "lr0" or cfg.sft_steps == 0:
        return {"loss": []}  # SFTConfig refuses lr 0: the stage is skipped (the same model)
    return train_sft(model, examples, sft, torch.Generator().manual_seed(run_seed), "instruction tuning")


def align_dpo(policy: Llama, reference: Llama, tokenizer, cfg: Config, run_seed: int) -> dict:
    """DPO on (review instruction, positive review, negative review) pairs of SST training sentences."""
    if cfg.dpo_steps == 0:
        return {"loss": []}
    positive, negative = _reviews(cfg.sft_examples // 4 + cfg.dpo_pairs, run_seed)
    prompt = tokenizer.encode(REVIEW)
    pairs = [
        (prompt, tokenizer.encode(" " + good) + [EOS], tokenizer.encode(" " + bad) + [EOS])
        for good, bad in zip(positive[-cfg.dpo_pairs :], negative[-cfg.dpo_pairs :], strict=True)
    ]
    dpo = DPOConfig(
        beta=cfg.dpo_beta,
        lr=0.0 if cfg.ablation == "lr0" else cfg.dpo_lr,
        batch_size=cfg.dpo_batch_size,
        epochs=max(1, round(cfg.dpo_steps * cfg.dpo_batch_size / len(pairs))),
        warmup_steps=3,
        max_grad_norm=1.0,
    )
    return train_dpo(policy, reference, pairs, dpo, generator=torch.Generator().manual_seed(run_seed))


def align_ppo(policy: Llama, reference: Llama, tokenizer, lexicon, cfg: Config, run_seed: int) -> list[dict]:
    """PPO against the sentiment rule on sampled reviews, KL-penalised to the instruction-tuned model."""

    def reward_fn(sequences: Tensor, attention: Tensor) -> Tensor:
        scores = []
        for row, mask in zip(sequences.tolist(), attention.tolist(), strict=True):
            text = tokenizer.decode([t for t, m in zip(row, mask, strict=True) if m and t != EOS])
            response = text.partition("\nResponse:")[2]
            scores.append(sentiment_reward(_first_line(response), lexicon))
        # The rule's spread across samples is small (about 0.05): scaled, as InstructGPT normalises its
        # reward model, so that the score, not the per-token KL noise, drives the advantages.
        return cfg.ppo_reward_scale * (torch.tensor(scores) - 0.5)

    value = ValueModel.from_reward_model(RewardModel(reference))
    rl = RLHFConfig(
        beta=cfg.ppo_beta,
        lr=cfg.ppo_lr if cfg.ablation == "none" else 1e-12,  # RLHFConfig refuses 0: a negligible step
        minibatch_size=cfg.ppo_prompts // 2 or 1,
        max_new_tokens=cfg.max_new_tokens,
        value_coef=0.1,
        ptx_coef=cfg.ppo_ptx,
        ptx_seq_len=min(128, cfg.ppl_seq_len),
    )
    # PPO-ptx (InstructGPT Eq. 2; the survey's Section 5.2.3 "alignment tax"): pre-training-style text
    # keeps the capabilities the reward does not ask for.
    ptx = None
    if cfg.ppo_ptx > 0:
        corpus = arithmetic_corpus(ArithmeticLMConfig(**{**cfg.testbed, "problems": 1000, "seed": run_seed}))
        ptx = torch.tensor(tokenizer.encode(corpus), dtype=torch.long)
    trainer = RLHFTrainer(
        policy, reference, value, reward_fn, rl, eos_token_id=EOS, seed=run_seed, ptx_data=ptx
    )
    curve = []
    for step in range(cfg.ppo_iterations):
        ids, mask = left_pad([tokenizer.encode(REVIEW)] * cfg.ppo_prompts)
        curve.append(trainer.step(ids, mask))
    return curve


# -- the run ----------------------------------------------------------------------------------------


def _figures(table: dict[str, dict[str, float]]) -> dict[str, Figure]:
    figures = {}
    labels = {
        "perplexity": "held-out perplexity (log scale)",
        "instruction": "instructions followed (%)",
        "reward": "preference reward x 100",
        "arithmetic": "arithmetic accuracy (%)",
    }
    for metric in METRICS:
        figure = Figure(figsize=(5, 3.2), layout="constrained")
        axis = figure.subplots()
        axis.bar(list(table), [table[s][metric] for s in table], color="tab:blue")
        if metric == "perplexity":
            axis.set_yscale("log")
        axis.set(ylabel=labels[metric], title=f"{metric} by lifecycle stage")
        figures[f"stage_{metric}"] = figure
    return figures


def summarise(table: dict[str, dict[str, float]], cfg: Config) -> dict[str, float]:
    """The claims' metrics from the stage table: target gains and the worst collateral change."""
    worst_ppl, worst_drop = 0.0, 0.0
    for stage in ("sft", "dpo", "ppo"):
        before, after = table[PREVIOUS[stage]], table[stage]
        worst_ppl = max(worst_ppl, 100.0 * (after["perplexity"] / before["perplexity"] - 1.0))
        for metric in ("instruction", "reward", "arithmetic"):
            if metric != TARGET[stage]:
                worst_drop = max(worst_drop, before[metric] - after[metric])
    return {
        "pretrain_ppl_ratio": table["pretrained"]["perplexity"] / table["init"]["perplexity"],
        "sft_instruction_gain": table["sft"]["instruction"] - table["pretrained"]["instruction"],
        "dpo_reward_gain": table["dpo"]["reward"] - table["sft"]["reward"],
        "ppo_reward_gain": table["ppo"]["reward"] - table["sft"]["reward"],
        "worst_ppl_increase": worst_ppl,
        "worst_score_drop": worst_drop,
    }


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    base, tokenizer = pretrain_arithmetic_lm(ArithmeticLMConfig(**cfg.testbed), cache_folder(cfg.cache))
    train, test = _instructions(cfg, cfg.seed)
    data = {
        "test": test,
        "problems": arithmetic_problems(
            cfg.eval_items,
            split="test",
            seed=1000 + cfg.seed,
            min_steps=cfg.arithmetic_steps,
            max_steps=cfg.arithmetic_steps,
        ),
        "held_out_ids": torch.tensor(tokenizer.encode(_held_out_text(cfg, cfg.seed)), dtype=torch.long),
        "lexicon": sentiment_lexicon(),
    }
    models: dict[str, nn.Module] = {}
    torch.manual_seed(cfg.seed)
    models["init"] = Llama(base.config)  # the architecture before pre-training
    models["pretrained"] = copy.deepcopy(base)  # the cached weights are never touched

    folder = checkpoint_folder("llm-survey", cfg.to_dict()) if cfg.checkpoint else None

    def stage(name: str, start: nn.Module, train_stage: Callable[[nn.Module], Any]) -> Any:
        """Train a copy of ``start`` as stage ``name`` (or load the stage a killed run finished);
        its training record. The RNG states after the stage are kept with it, so the stages after a
        loaded one run as in an uninterrupted seed."""
        clock = time.perf_counter()
        models[name] = copy.deepcopy(start)

        def compute() -> dict:
            record = train_stage(models[name])
            return {"model": models[name].state_dict(), "record": record, "rng": rng_state()}

        done = load_or_compute(folder and folder / name, compute, config={**cfg.to_dict(), "stage": name})
        models[name].load_state_dict(done["model"])
        set_rng_state(done["rng"])
        timings[name] = time.perf_counter() - clock
        return done["record"]

    sft_history = stage("sft", base, lambda model: instruction_tune(model, tokenizer, train, cfg, cfg.seed))
    dpo_history = stage(
        "dpo",
        models["sft"],
        lambda model: align_dpo(model, copy.deepcopy(models["sft"]), tokenizer, cfg, cfg.seed),
    )
    ppo_curve = stage(
        "ppo",
        models["sft"],
        lambda model: align_ppo(
            model, copy.deepcopy(models["sft"]), tokenizer, data["lexicon"], cfg, cfg.seed
        ),
    )
    if folder is not None:  # every stage trained: nothing left to resume
        shutil.rmtree(folder, ignore_errors=True)

    clock = time.perf_counter()
    table = {stage: evaluate(models[stage], tokenizer, data, cfg) for stage in STAGES}
    timings["evaluation"] = time.perf_counter() - clock

    metrics = summarise(table, cfg)
    metrics.update({f"{stage}_{m}": table[stage][m] for stage in STAGES for m in METRICS})
    return Result(
        metrics=metrics,
        figures=_figures(table),
        details={
            "table": table,
            "targets": TARGET,
            "previous": PREVIOUS,
            "sft_loss": sft_history.get("loss", []),
            "dpo_loss": dpo_history.get("loss", []),
            "ppo_curve": ppo_curve,
            "seconds_per_stage": timings,
            "seconds": time.perf_counter() - started,
            "parameters": sum(p.numel() for p in base.parameters()),
        },
        notes=[
            "Pre-training is the cached arithmetic testbed model (0.1M-parameter Llama); 'init' is the same "
            "architecture untrained. DPO and PPO both start from the instruction-tuned model.",
            "The preference reward is a fixed rule (words right and in place), standing for a labeler; "
            "the survey's subjects are 10B+ models: the claims are about the lifecycle's shape, no paper "
            "number applies.",
            f"Tolerances: perplexity +{cfg.ppl_tolerance:g} %, scores -{cfg.score_tolerance:g} points.",
        ],
    )
