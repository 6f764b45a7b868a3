"""InstructGPT (Ouyang et al. 2022), all three stages in one run: supervised fine-tuning on
demonstrations, a reward model trained on all ``C(K, 2)`` comparisons of ``K`` ranked completions per
prompt (Section 3.5, Eq. 1), with Llama 2's preference-strength margin (Touvron et al. 2023, Section
3.2.2, Eq. 2) as an ablation, and stage 3: PPO and PPO-ptx against the reward model (Eq. 2,
:mod:`aicanon.align.rlhf`), with DPO (:mod:`aicanon.align.dpo`) on the same comparisons for the
reward-KL frontier of the DPO paper's Figure 2.

The experiment, top to bottom:

1. pre-train the small character-level base model (:func:`aicanon.testbeds.char_lm.pretrain_char_lm`, the
   same configuration as the LoRA experiment's, cached under ``<results>/_cache/char_lm``);
2. stage 1, SFT (:func:`aicanon.align.sft.train_sft`): the labelers' demonstrations of the behaviour
   we want are positive SST training sentences, split into a prompt (their first 2-4 words) and a
   response (the rest); the loss is on response tokens only;
3. stage 2, comparison data: prompts are the first words of SST sentences
   (:func:`aicanon.testbeds.sentiment.sentiment_prompts`; training prompts from the train split,
   held-out prompts from the dev split), ``K`` completions each are sampled from the SFT model
   (:func:`~aicanon.testbeds.sentiment.sample_completions`), and the "labeler" is the SST-2 sentiment
   classifier (:func:`~aicanon.testbeds.sentiment.train_sentiment_scorer`): its log-odds of "positive"
   for ``prompt + completion`` ranks the ``K`` completions, which gives every prompt's ``C(K, 2)``
   comparisons (ties dropped). Llama 2's four strength ratings are the quartiles of the training
   comparisons' score gaps (the top quartile is "significantly better": the clearly separated pairs);
4. stage 2, reward models (:mod:`aicanon.align.reward_model`), initialised from the SFT model with the
   LM head replaced by a scalar head, trained on the training prompts' comparisons, all comparisons of
   a prompt in one batch element (Eq. 1): once without a margin (InstructGPT) and once with Llama 2's
   margin (Eq. 2), same seed, same data, same order; each is then normalised so that the
   demonstrations score a mean of 0 (Section 3.5);
5. report held-out pairwise accuracy, overall and per strength level (Llama 2 Table 8's breakdown),
   for both; the margin's gain on the clearly separated pairs is Llama 2's Table 28 pattern.
6. stage 3 (:func:`reinforcement_learning`): from the SFT model, PPO against the Eq. 1 reward model
   (per-token KL penalty beta to the SFT model, GAE with no discount, clipped policy and value losses,
   whitened advantages; the value model initialised from the reward model, as the paper does), once
   with gamma = 0 (PPO) and once with gamma = ``ptx_coef`` (PPO-ptx: the next-token loss on the base's
   pre-training text, SST training sentences, mixed into every update); DPO on the comparisons of the
   first ``dpo_prompts`` training prompts for each beta of ``dpo_betas``. Every policy, and the SFT
   model, is evaluated on held-out prompts: the labeler's ground-truth reward of ``eval_samples``
   sampled continuations each, their sequence KL to the SFT model, and the LM loss on held-out
   pre-training text (SST dev sentences), whose increase is the alignment tax (Section 4.2).

Why the task is built from samples (and not SST-2 sentence pairs): the issue asks for InstructGPT's
setting, comparisons between completions the policy itself writes; the ground-truth labeler lets us
measure the reward model against the truth. The price is noise: the small character model writes
half-words, the labeler only sees known words, so many comparisons differ by one or two words, and
a quarter of them by very little (the "negligibly better" bin). A reward model fine-tuned on SST-2
sentence pairs would face the same limit the LoRA experiment shows (this base's SST-2 dev accuracy
is far below 90 %; see its row in RESULTS.md), so it would not make a high target reachable either.

What limits the reward model at quick scale is the number of prompts, not its training or its trunk:
it underfits at 4 epochs (training pairs ordered about as well as held-out ones) and overfits by 12
(held-out accuracy falls); with four times the training prompts (1,500), everything else equal, a
probe of seed 0 gained about 0.07 on all held-out pairs and 0.1 on those above the median gap,
while a wider, longer pre-trained trunk (width 128, 1,500 steps) did not help. The full scale has
6,000 prompts.

Departures from the paper, and why:

* Scale: a 2-layer, width-64 character Llama and a few hundred prompts instead of GPT-3 6B and 33k
  prompts; absolute accuracies are not comparable. InstructGPT's 6B RMs predict the preferences of
  the labelers they were trained on with 72.4 +- 0.4 % accuracy and those of held-out labelers with
  69.6 +- 0.9 % (Section 4.1 and Appendix E.2, five-fold cross-validation over labeler groups);
  the issue's target is 85 % on the held-out pairs whose true reward gap is above the median (all
  pairs reported too), which the quick scale does not reach: the quick claims state what it does
  reach, and the full scale is claimed at the issue's 85 %.
* Labeler: a linear sentiment classifier ranks completions instead of people; the preference strength
  comes from its score gap, binned into quartiles, instead of the labelers' own rating.
* Demonstrations: positive SST sentences, not labeler-written answers to instructions.
* Epochs: the reward model trains for several epochs (InstructGPT: one; more overfit there), because a
  few hundred prompts are far too few for one pass.
* The margin scale is Llama 2 Table 27's "large" (3, 2, 1, 0) by default, as the stronger of its two.
* Stage 3 at toy scale: ``ppo_iterations`` x ``ppo_batch`` episodes (quick: 24 x 64) instead of 256k,
  two PPO epochs per rollout (the paper: one) and a learning rate of 2e-4 (the paper: about 1e-5), so
  that a few iterations move a tiny model; no EMA of the policy. beta = 0.02 is the paper's; PPO-ptx's
  gamma is 2 instead of 27.8, because our pre-training term is a per-character mean cross-entropy whose
  scale against the per-token PPO loss is not the paper's (gamma 27.8 here would freeze the policy).
  The paper's beta = 0.02 and gamma = 27.8 are from its Appendix C.4 as quoted by a secondary source
  (the paper's text was not fetched): unverified.
* The ground truth for stage 3 is the labeler (the SST-2 scorer), not human evaluation; the alignment
  tax is the LM loss on held-out pre-training text, not the public NLP benchmarks of Figure 29.
* DPO trains on a subset of the stage-2 comparisons (``dpo_prompts`` prompts, one epoch, AdamW 3e-4),
  to keep the quick run short.

What the metrics show (quick: 375 training prompts, 125 held-out, K = 8, so up to C(8, 2) = 28
comparisons per prompt, ties dropped): held-out pairwise accuracy says whether the reward model learned
the labeler's ordering at all; the per-strength breakdown says whether it learned it the way Llama 2's
Table 8 reports, its accuracy rising from the "negligibly better" quartile (near chance) to the clearly
separated pairs, which carry the second claim. The margin arm (Eq. 2) is Llama 2's Table 28 ablation:
its expected sign is a gain on the separated pairs, but at quick scale that gain is within the seed
spread (and Table 27's "small" scale shows no effect either), so it is reported, not claimed. The
broken variant (reward models untrained) sits at chance and fails both claims. The numbers are in the
run's record (``results/instructgpt/``) and in RESULTS.md.

The full thresholds (0.85 above the median gap, 0.90 on the separated pairs) are targets, not
measured numbers.

Stage 3, what the metrics show (quick, seed 0; seeds 1 / 2 in brackets where they differ): the SFT
model's samples score 0.07
(labeler log-odds); PPO raises the learned reward of its rollouts from -0.13 to 3.1 and the ground-truth
reward of held-out samples by 0.70 (0.61 / 0.35), at a KL of 24.5 (27.4 / 22.8) nats per sequence to the
SFT model, and raises the held-out pre-training LM loss by 1.11 (0.99 / 1.17) nats per character (the alignment tax: the policy drifts to
what the reward model pays for). PPO-ptx (gamma = 2) keeps the LM loss at the SFT model's (-0.06) but
also keeps its policy close (KL 2.1; 1.6 / 1.5) and gains only 0.08 (0.06 / 0.04) in reward: the pre-training term dominates at
this gamma, so "at similar reward" (Figure 29's comparison) is NOT shown at quick scale; that is a gap,
and a gamma sweep (0.1-1) is what it would take. DPO (beta 0.1 / 0.5, 885 comparisons) gains 0.12 at KL
3.9 / 1.9 nats, on the same frontier figure. A KL coefficient of 5 (the ablation) pins PPO to the SFT
model and fails the reward claim; gamma = 0 makes PPO-ptx identical to PPO and fails the tax claim.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from aicanon.align.dpo import DPOConfig, train_dpo
from aicanon.align.reward_model import (
    MARGINS,
    STRENGTHS,
    Comparisons,
    RewardModel,
    RewardTrainConfig,
    accuracy_by_strength,
    normalise_reward_model,
    pairwise_accuracy,
    ranked_comparisons,
    score_sequences,
    strength_edges,
    strength_levels,
    train_reward_model,
)
from aicanon.align.rlhf import RLHFConfig, RLHFTrainer, ValueModel, lm_loss, response_mask, token_logprobs
from aicanon.align.sft import SFTConfig, tokenize_example, train_sft
from aicanon.core import Result, seed, select_device, track
from aicanon.core.checks import check_float, check_int
from aicanon.core.experiment import Claim, ExperimentConfig
from aicanon.datasets.sst import load_sst, load_sst_binary
from aicanon.datasets.text import CharTokenizer
from aicanon.language.generation import left_pad
from aicanon.testbeds.char_lm import CharLMConfig, cache_folder, char_lm_corpus, pretrain_char_lm
from aicanon.testbeds.sentiment import (
    SentimentScorer,
    sample_completions,
    sentiment_prompts,
    train_sentiment_scorer,
)


@dataclass
class Config(ExperimentConfig):
    base_steps: int = 200
    """Pre-training steps of the base model (the LoRA experiment's base, so the cache is shared)."""
    base_hidden: int = 64
    """Width of the base model."""
    base_layers: int = 2
    """Blocks of the base model."""
    base_seq_len: int = 64
    """Pre-training window (characters)."""
    base_batch: int = 32
    """Pre-training windows per step."""
    demonstrations: int = 400
    """Stage 1: positive SST training sentences used as (prompt, response) demonstrations."""
    sft_epochs: int = 1
    """Stage 1: passes over the demonstrations (InstructGPT: 16)."""
    sft_lr: float = 1e-3
    """Stage 1: peak learning rate (cosine to 10 %)."""
    sft_batch: int = 16
    """Stage 1: demonstrations per step."""
    train_prompts: int = 375
    """Stage 2: prompts (SST train split) whose comparisons train the reward model."""
    heldout_prompts: int = 125
    """Stage 2: held-out prompts (SST dev split) whose comparisons measure it."""
    k: int = 8
    """Completions ranked per prompt (InstructGPT: K = 4 to 9), giving C(K, 2) comparisons."""
    max_new_tokens: int = 32
    """Characters sampled per completion (cut at the end of the line)."""
    temperature: float = 0.7
    """Sampling temperature of the completions."""
    sample_batch: int = 64
    """Rows decoded together when sampling (larger on a GPU)."""
    rm_epochs: int = 4
    """Stage 2: passes over the training prompts (InstructGPT: 1; see the docstring)."""
    rm_lr: float = 3e-3
    """Stage 2: peak AdamW learning rate (cosine to 10 %)."""
    prompts_per_batch: int = 8
    """Stage 2: prompts per step, each with all its completions and comparisons."""
    margin_scale: str = "large"
    """Llama 2 Table 27's margin scale of the margin arm: "small" (1, 2/3, 1/3, 0) or "large" (3, 2, 1, 0)."""
    train_rm: bool = True
    """False = the broken variant: the reward models keep their initial (random) head."""
    ppo_iterations: int = 24
    """Stage 3: PPO iterations (rollout + update) per arm (InstructGPT: 256k episodes / 512 = 500)."""
    ppo_batch: int = 64
    """Stage 3: prompts (episodes) per rollout (InstructGPT: 512)."""
    ppo_minibatch: int = 32
    """Stage 3: episodes per PPO update (InstructGPT: 64)."""
    ppo_epochs: int = 2
    """Stage 3: PPO passes over each rollout (InstructGPT: 1; two make the most of few iterations)."""
    ppo_lr: float = 2e-4
    """Stage 3: Adam learning rate of policy and value model (InstructGPT: about 1e-5 at 1.3B-175B)."""
    ppo_new_tokens: int = 32
    """Stage 3: characters generated per rollout response."""
    kl_beta: float = 0.02
    """Stage 3: per-token KL coefficient beta (InstructGPT Appendix C.4: 0.02)."""
    ptx_coef: float = 2.0
    """Stage 3: PPO-ptx's gamma (InstructGPT: 27.8 on its own loss scale; see the docstring)."""
    ptx_batch: int = 16
    """Stage 3: pre-training windows per PPO-ptx mini-batch."""
    dpo_prompts: int = 32
    """Stage 3: training prompts whose stage-2 comparisons DPO trains on (the frontier's other method)."""
    dpo_betas: tuple[float, ...] = (0.1, 0.5)
    """Stage 3: DPO's beta of each frontier point."""
    eval_samples: int = 2
    """Stage 3: sampled continuations per held-out prompt for the ground-truth reward and the KL."""
    lm_eval_windows: int = 64
    """Stage 3: windows of held-out pre-training text (SST dev sentences) for the alignment tax."""
    cache: str | None = None
    """Folder of the cached base model (None: ``_cache/char_lm`` under the results folder, which
    ``aicanon reproduce --out`` sets; '' = retrain every run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=1)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=3,
            base_steps=3000,
            base_hidden=256,
            base_layers=4,
            base_seq_len=256,
            demonstrations=3000,
            sft_epochs=4,
            sft_lr=3e-4,
            train_prompts=6000,
            heldout_prompts=800,
            k=8,
            max_new_tokens=48,
            rm_epochs=2,
            rm_lr=3e-4,
            prompts_per_batch=16,
            sample_batch=1024,
            ppo_iterations=500,
            ppo_batch=512,
            ppo_minibatch=64,
            ppo_epochs=1,
            ppo_lr=1e-5,
            ppo_new_tokens=48,
            ptx_batch=64,
            dpo_prompts=2000,
            dpo_betas=(0.05, 0.1, 0.5),
            eval_samples=4,
            lm_eval_windows=512,
        )


# Stage 3's thresholds, set from the quick runs of seeds 0-2: reward gain 0.70 / 0.61 / 0.35 at KL
# 24.5 / 27.4 / 22.8 nats, tax reduction 1.17 / 1.05 / 1.23 nats per character; beta = 5 keeps PPO at
# the SFT model and gamma = 0 makes PPO-ptx equal PPO, and both fail.
QUICK_REWARD_GAIN = 0.2
KL_BUDGET = 40.0
QUICK_TAX_REDUCTION = 0.3

CLAIMS = [
    Claim(
        metric="accuracy_heldout",
        description=(
            "reward model (Eq. 1, all C(K,2) comparisons of a prompt in one batch element) orders held-out "
            "prompts' comparisons as the labeler did, all pairs (a quarter of them differ by almost nothing)"
        ),
        paper=None,
        source="Section 3.5, Eq. 1 (the paper's RMs: 72.4 +- 0.4 % on training labelers, 69.6 +- 0.9 % on held-out ones, Section 4.1 / Appendix E.2)",
        quick=0.60,
    ),
    Claim(
        metric="accuracy_above_median",
        description=(
            "the same reward model on the held-out pairs whose true reward gap is above the median: the "
            "issue's target is >= 0.85, claimed at full scale; quick reaches less (375 prompts are the "
            "limit, see the docstring)"
        ),
        paper=None,
        source="Section 3.5, Eq. 1; Llama 2 Table 8 (accuracy rises with the preference strength); target of issue 13",
        full=0.85,
    ),
    Claim(
        metric="accuracy_separated",
        description="the same reward model on the clearly separated held-out pairs (top quartile of the labeler's gap)",
        paper=None,
        source="Llama 2 Section 3.2.2, Table 8 (accuracy rises with the preference strength)",
        quick=0.70,
        full=0.90,
    ),
    Claim(
        metric="margin_gain_separated",
        description=(
            "accuracy on the clearly separated pairs with Llama 2's margin minus without (same seed and "
            "data): reported only, the effect is within seed noise at quick scale"
        ),
        paper=None,
        source="Llama 2 Section 3.2.2, Eq. 2, Tables 27-28 (large margin 3/2/1/0: 'significantly better' 79.1 -> 80.7, average 62.5 -> 62.9)",
    ),
    Claim(
        metric="accuracy_heldout_margin",
        description="held-out accuracy of the reward model trained with Llama 2's margin (Eq. 2)",
        paper=None,
        source="Llama 2 Table 28 (margin ablation)",
    ),
    Claim(
        metric="accuracy_separated_margin",
        description="the margin reward model on the clearly separated held-out pairs",
        paper=None,
        source="Llama 2 Table 28 (margin ablation)",
    ),
    Claim(
        metric="stages_completed",
        description="the three stages (SFT -> reward model -> PPO) run end to end in one command",
        paper=None,
        source="Section 3.1, Figure 2 (the three steps)",
        quick=3.0,
        full=3.0,
    ),
    Claim(
        metric="reward_gain_ppo",
        description=(
            "PPO against the learned reward model raises the ground-truth reward (the labeler's sentiment "
            "log-odds, not the RM) of sampled continuations of held-out prompts over the SFT model's"
        ),
        paper=None,
        source="Section 4.1 (PPO models preferred over SFT; our ground truth is the labeler, figure-level claim)",
        quick=QUICK_REWARD_GAIN,
        full=QUICK_REWARD_GAIN,
    ),
    Claim(
        metric="kl_ppo",
        description="... while the policy's sequence KL to the SFT model (held-out samples) stays under a budget",
        paper=None,
        source="Section 3.5, Eq. 2 (beta = 0.02 per-token KL penalty; our budget)",
        quick=KL_BUDGET,
        full=KL_BUDGET,
        higher_is_better=False,
        unit="nats",
    ),
    Claim(
        metric="alignment_tax_reduction",
        description=(
            "PPO-ptx regresses the held-out pre-training LM loss less than PPO: (loss_PPO - loss_SFT) - "
            "(loss_PPO-ptx - loss_SFT), in nats per character"
        ),
        paper=None,
        source="Section 4.2 and Figure 29 (PPO-ptx mitigates the regressions on public NLP datasets)",
        quick=QUICK_TAX_REDUCTION,
        full=QUICK_TAX_REDUCTION,
    ),
    Claim(
        metric="reward_gain_ppo_ptx",
        description="PPO-ptx's ground-truth reward gain over SFT (the 'similar reward' of the alignment-tax claim)",
        paper=None,
        source="Section 4.2, Figure 29",
    ),
    Claim(
        metric="lm_loss_regression_ppo",
        description="PPO's increase of the held-out pre-training LM loss over the SFT model's (the alignment tax)",
        paper=None,
        source="Section 4.2",
    ),
    Claim(
        metric="reward_gain_dpo_0.1",
        description="DPO (beta = 0.1) on the same stage-2 comparisons: ground-truth reward gain (frontier point)",
        paper=None,
        source="DPO paper, Section 6.1, Figure 2 (left)",
    ),
    Claim(
        metric="accuracy_weakest",
        description="the Eq. 1 reward model on the 'negligibly better' held-out pairs (bottom quartile): near chance",
        paper=None,
        source="Llama 2 Table 8 (lowest accuracy on 'negligibly better / unsure')",
    ),
]


def base_config(cfg: Config) -> CharLMConfig:
    """The base model's configuration (the LoRA experiment's formula, so both share one cache entry)."""
    return CharLMConfig(
        hidden_size=cfg.base_hidden,
        num_layers=cfg.base_layers,
        num_heads=max(1, cfg.base_hidden // 16),
        intermediate_size=int(cfg.base_hidden * 8 / 3 + 3) // 4 * 4,
        steps=cfg.base_steps,
        batch_size=cfg.base_batch,
        seq_len=cfg.base_seq_len,
        warmup_steps=max(1, cfg.base_steps // 10),
    )


def demonstrations(cfg: Config, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Stage 1's (prompt, response) pairs: positive SST training sentences cut after 2-4 words."""
    texts, labels = load_sst_binary("train")
    positive = [t for t, y in zip(texts, labels, strict=True) if y == 1 and len(t.split()) >= 6]
    pairs = []
    for i in rng.permutation(len(positive))[: cfg.demonstrations]:
        words = positive[i].split()
        cut = int(rng.integers(2, 5))
        prompt = " ".join(words[:cut]) + " "
        pairs.append((prompt, " ".join(words[cut:])[: cfg.max_new_tokens]))
    return pairs


def encode_texts(texts: list[str], tokenizer: CharTokenizer, max_chars: int) -> tuple[Tensor, Tensor]:
    """Left-padded ids and mask of the texts, each cut to its last ``max_chars`` characters."""
    return left_pad([tokenizer.encode(t[-max_chars:]).tolist() for t in texts], pad_token_id=0)


@functools.cache
def _labeler() -> SentimentScorer:
    """The ground-truth labeler, trained once per process: it is deterministic (seed 0) and the same
    for every seed and arm, so later runs (seeds, the broken variant) reuse it instead of refitting."""
    return train_sentiment_scorer(seed=0)


def check_config(cfg: Config) -> None:
    """Reject a config that cannot run, naming the field (make_config sets fields after __init__)."""
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be an instructgpt.Config, got {type(cfg).__name__}")
    for name in (
        "demonstrations",
        "sft_epochs",
        "sft_batch",
        "train_prompts",
        "heldout_prompts",
        "max_new_tokens",
        "rm_epochs",
        "prompts_per_batch",
        "sample_batch",
        "ppo_iterations",
        "ppo_batch",
        "ppo_minibatch",
        "ppo_epochs",
        "ppo_new_tokens",
        "ptx_batch",
        "dpo_prompts",
        "eval_samples",
        "lm_eval_windows",
    ):
        check_int(f"Config.{name}", getattr(cfg, name))
    check_float("Config.kl_beta", cfg.kl_beta, 0, finite=True, note="the per-token KL coefficient")
    check_float("Config.ptx_coef", cfg.ptx_coef, 0, finite=True, note="PPO-ptx's gamma")
    check_float("Config.ppo_lr", cfg.ppo_lr, 0, min_inclusive=False, finite=True)
    if not cfg.dpo_betas or any(not isinstance(b, (int, float)) or b <= 0 for b in cfg.dpo_betas):
        raise ValueError(
            f"Config.dpo_betas must be a non-empty tuple of positive floats, got {cfg.dpo_betas!r}"
        )
    check_int("Config.k", cfg.k, 2, note="completions to compare per prompt")
    if cfg.margin_scale not in MARGINS:
        raise ValueError(f"Config.margin_scale must be one of {tuple(MARGINS)}, got {cfg.margin_scale!r}")
    check_float("Config.temperature", cfg.temperature, 0, min_inclusive=False, note="completions are sampled")


# ----- stage 3: PPO(-ptx) against the reward model, DPO on the same comparisons -----------------


def _sample(policy, prompt_ids, prompt_mask, cfg: Config, generator, eos: int):
    """One sampled response per row (KV-cache generation) and the response mask."""
    out = policy.generate(
        prompt_ids,
        prompt_mask,
        max_new_tokens=cfg.ppo_new_tokens,
        temperature=1.0,
        eos_token_id=eos,
        pad_token_id=eos,
        generator=generator,
    )
    return out, response_mask(out[:, prompt_ids.shape[1] :], eos)


@torch.no_grad()
def evaluate_policy(policy, sft, tokenizer, labeler, prompt_ids, prompt_mask, lm_windows, cfg, device, eos):
    """Ground-truth reward of sampled continuations of the held-out prompts, their sequence KL to the
    SFT model (mean over samples of sum_t log pi - log pi_SFT), and the held-out pre-training LM loss."""
    generator = torch.Generator(device=device).manual_seed(cfg.seed + 7)  # the same noise for every policy
    ids = prompt_ids.repeat_interleave(cfg.eval_samples, 0).to(device)
    mask = prompt_mask.repeat_interleave(cfg.eval_samples, 0).to(device)
    rewards, kls, lengths = [], [], []
    for begin in range(0, ids.shape[0], cfg.sample_batch):
        p_ids, p_mask = ids[begin : begin + cfg.sample_batch], mask[begin : begin + cfg.sample_batch]
        out, r_mask = _sample(policy, p_ids, p_mask, cfg, generator, eos)
        start = p_ids.shape[1]
        attention = torch.cat([p_mask, r_mask], 1)
        log_ratio = token_logprobs(policy, out, attention, start) - token_logprobs(sft, out, attention, start)
        kls.append((log_ratio * r_mask).sum(1).cpu())
        texts = []
        for row, row_mask in zip(out.cpu(), attention.cpu(), strict=True):
            texts.append(tokenizer.decode(row[row_mask.bool()]).split("\n", 1)[0])
        rewards.append(labeler(texts))
        lengths.append(r_mask.sum(1).float().cpu())
    lm = float(lm_loss(policy, lm_windows.to(device)))
    return {
        "reward": float(torch.cat(rewards).mean()),
        "kl": float(torch.cat(kls).mean()),
        "length": float(torch.cat(lengths).mean()),
        "lm_loss": lm,
        "example": texts[0],
    }


def reinforcement_learning(cfg: Config, sft, reward_model, tokenizer, labeler, prompts, data, device) -> dict:
    """Stage 3 (Section 3.5, Eq. 2): PPO (gamma = 0) and PPO-ptx (gamma = ``ptx_coef``) from the SFT
    model against ``reward_model``, and DPO (on the stage-2 comparisons of ``dpo_prompts`` prompts)
    for the frontier; every policy evaluated by :func:`evaluate_policy`."""
    eos = int(tokenizer.encode("\n").item())
    sft = sft.to(device).eval()
    reward_model = reward_model.to(device).eval()

    def reward_fn(sequences: Tensor, attention: Tensor) -> Tensor:
        # The reward model was trained on prompt + completion without the end-of-line token.
        with torch.no_grad():
            return reward_model(sequences, attention * (sequences != eos).long())

    train_ids, train_mask = left_pad(
        [tokenizer.encode(p).tolist() for p in prompts["train"]], pad_token_id=eos
    )
    held_ids, held_mask = left_pad(
        [tokenizer.encode(p).tolist() for p in prompts["heldout"]], pad_token_id=eos
    )
    pretrain_text, _ = char_lm_corpus()
    ptx_data = tokenizer.encode(pretrain_text)
    dev_text = "\n".join(load_sst("dev")[0]).lower()
    dev_ids = tokenizer.encode(dev_text)
    width = cfg.base_seq_len
    count = min(cfg.lm_eval_windows, dev_ids.numel() // width)
    lm_windows = dev_ids[: count * width].view(count, width)

    def evaluate(policy) -> dict:
        return evaluate_policy(
            policy, sft, tokenizer, labeler, held_ids, held_mask, lm_windows, cfg, device, eos
        )

    evaluations = {"sft": evaluate(sft)}
    curves = {}
    arms = {"ppo": 0.0, "ppo_ptx": cfg.ptx_coef}
    for arm, ptx in arms.items():
        torch.manual_seed(cfg.seed + 2)
        policy = copy.deepcopy(sft)
        trainer = RLHFTrainer(
            policy,
            sft,
            ValueModel.from_reward_model(reward_model),
            reward_fn,
            RLHFConfig(
                beta=cfg.kl_beta,
                ptx_coef=ptx,
                epochs=cfg.ppo_epochs,
                minibatch_size=cfg.ppo_minibatch,
                lr=cfg.ppo_lr,
                max_new_tokens=cfg.ppo_new_tokens,
                ptx_batch_size=cfg.ptx_batch,
                ptx_seq_len=cfg.base_seq_len,
            ),
            eos_token_id=eos,
            pad_token_id=eos,
            ptx_data=ptx_data if ptx > 0 else None,
            seed=cfg.seed,
        )
        order = torch.Generator().manual_seed(cfg.seed)
        curve = {"score": [], "kl": []}
        for _ in track(range(cfg.ppo_iterations), f"stage 3: {arm}", total=cfg.ppo_iterations):
            index = torch.randperm(train_ids.shape[0], generator=order)[: cfg.ppo_batch]
            stats = trainer.step(train_ids[index], train_mask[index])
            curve["score"].append(stats["score"])
            curve["kl"].append(stats["kl"])
        curves[arm] = curve
        evaluations[arm] = evaluate(policy)

    # DPO (Rafailov et al. 2023) on the comparisons of the first dpo_prompts training prompts.
    train = data["train"]
    pairs = train["pairs"]
    keep = pairs.group < cfg.dpo_prompts
    prompt_tokens = [tokenizer.encode(p).tolist() for p in prompts["train"]]

    def response(i: int) -> list[int]:
        text = train["completions"][i]
        return tokenizer.encode(text + ("\n" if len(text) < cfg.max_new_tokens else "")).tolist()

    triples = [
        (prompt_tokens[int(g)], response(int(c)), response(int(r)))
        for c, r, g in zip(pairs.chosen[keep], pairs.rejected[keep], pairs.group[keep], strict=True)
        if train["completions"][int(c)] != train["completions"][int(r)]
    ]
    for beta in cfg.dpo_betas:
        policy = copy.deepcopy(sft)
        train_dpo(
            policy,
            sft,
            triples,
            DPOConfig(
                beta=beta,
                lr=3e-4,
                batch_size=32,
                epochs=1,
                warmup_steps=10,
                precompute_reference=True,
                group_by_prompt=True,
            ),
            pad_token_id=eos,
            generator=torch.Generator().manual_seed(cfg.seed),
            device=device,
        )
        evaluations[f"dpo_{beta:g}"] = evaluate(policy.eval())

    sft_eval, ppo, ptx = evaluations["sft"], evaluations["ppo"], evaluations["ppo_ptx"]
    metrics = {
        "stages_completed": 3.0,
        "reward_gain_ppo": ppo["reward"] - sft_eval["reward"],
        "kl_ppo": ppo["kl"],
        "reward_gain_ppo_ptx": ptx["reward"] - sft_eval["reward"],
        "kl_ppo_ptx": ptx["kl"],
        "lm_loss_regression_ppo": ppo["lm_loss"] - sft_eval["lm_loss"],
        "lm_loss_regression_ppo_ptx": ptx["lm_loss"] - sft_eval["lm_loss"],
        "alignment_tax_reduction": (ppo["lm_loss"] - sft_eval["lm_loss"])
        - (ptx["lm_loss"] - sft_eval["lm_loss"]),
        "reward_sft": sft_eval["reward"],
        "lm_loss_sft": sft_eval["lm_loss"],
        "rm_score_first_ppo": float(np.mean(curves["ppo"]["score"][:3])),
        "rm_score_last_ppo": float(np.mean(curves["ppo"]["score"][-3:])),
        "dpo_pairs": float(len(triples)),
    }
    for beta in cfg.dpo_betas:
        metrics[f"reward_gain_dpo_{beta:g}"] = evaluations[f"dpo_{beta:g}"]["reward"] - sft_eval["reward"]
        metrics[f"kl_dpo_{beta:g}"] = evaluations[f"dpo_{beta:g}"]["kl"]

    # The reward-KL frontier (DPO paper Figure 2): ground-truth reward against KL to the SFT model.
    frontier = Figure(figsize=(5.5, 4))
    axis = frontier.add_subplot()
    axis.plot([0.0], [sft_eval["reward"]], "k*", markersize=10, label="SFT (reference)")
    for arm, label in (("ppo", "PPO"), ("ppo_ptx", f"PPO-ptx (gamma={cfg.ptx_coef:g})")):
        axis.plot([evaluations[arm]["kl"]], [evaluations[arm]["reward"]], "o", label=label)
    dpo_points = sorted(
        (evaluations[f"dpo_{b:g}"]["kl"], evaluations[f"dpo_{b:g}"]["reward"], b) for b in cfg.dpo_betas
    )
    axis.plot([p[0] for p in dpo_points], [p[1] for p in dpo_points], "s-", label="DPO")
    for kl, reward, beta in dpo_points:
        axis.annotate(f"beta={beta:g}", (kl, reward), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axis.set_xlabel("KL[pi || pi_SFT] (nats per sequence, held-out prompts)")
    axis.set_ylabel("mean ground-truth reward (labeler log-odds)")
    axis.set_title("reward vs KL (cf. DPO Figure 2, left)", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    frontier.tight_layout()

    training = Figure(figsize=(6, 3.4))
    left, right = training.subplots(1, 2)
    for arm, curve in curves.items():
        left.plot(curve["score"], label=arm)
        right.plot(curve["kl"], label=arm)
    left.set_xlabel("PPO iteration")
    left.set_ylabel("reward-model score of rollouts")
    right.set_xlabel("PPO iteration")
    right.set_ylabel("KL to SFT (rollouts)")
    left.legend(fontsize=8)
    training.tight_layout()
    return {
        "metrics": metrics,
        "figures": {"reward_kl_frontier": frontier, "ppo_training": training},
        "details": {"stage3_evaluations": evaluations, "ppo_curves": curves},
    }


def run(cfg: Config) -> Result:
    check_config(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    rng = np.random.default_rng(cfg.seed)
    base, tokenizer = pretrain_char_lm(base_config(cfg), cache_folder(cfg.cache))
    max_chars = base.config.max_seq_len

    # Stage 1: supervised fine-tuning on the demonstrations (loss on the responses only).
    demos = demonstrations(cfg, rng)
    examples = [tokenize_example(p, r, tokenizer.encode, "\n") for p, r in demos]
    torch.manual_seed(cfg.seed)
    sft = copy.deepcopy(base).to(device)
    sft_log = train_sft(
        sft,
        examples,
        SFTConfig(epochs=cfg.sft_epochs, batch_size=cfg.sft_batch, lr=cfg.sft_lr),
        generator=torch.Generator().manual_seed(cfg.seed),
        description="stage 1: SFT",
    )
    sft.eval()

    # Stage 2, data: K sampled completions per prompt, ranked by the labeler.
    labeler = _labeler()  # the fixed ground truth, the same for every seed
    prompts = {
        "train": sentiment_prompts(cfg.train_prompts, split="train", seed=cfg.seed),
        "heldout": sentiment_prompts(cfg.heldout_prompts, split="dev", seed=cfg.seed),
    }
    sampler = torch.Generator(device=device).manual_seed(cfg.seed)
    data = {}
    for split, split_prompts in prompts.items():
        completions = sample_completions(
            sft,
            tokenizer,
            split_prompts,
            cfg.k,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            batch_size=cfg.sample_batch,
            generator=sampler,
        )
        texts = [p + c for p, row in zip(split_prompts, completions, strict=True) for c in row]
        scores = labeler(texts).view(len(split_prompts), cfg.k)
        ids, mask = encode_texts(texts, tokenizer, max_chars)
        data[split] = {"ids": ids, "mask": mask, "pairs": ranked_comparisons(scores.tolist()), "texts": texts}
        data[split]["completions"] = [c for row in completions for c in row]
        data[split]["scores"] = scores
    train_pairs: Comparisons = data["train"]["pairs"]
    heldout_pairs: Comparisons = data["heldout"]["pairs"]
    edges = strength_edges(train_pairs.gap)  # quartiles of the training gaps: Llama 2's four ratings
    train_levels = strength_levels(train_pairs.gap, edges)
    heldout_levels = strength_levels(heldout_pairs.gap, edges)
    demo_ids, demo_mask = encode_texts([p + r for p, r in demos], tokenizer, max_chars)

    # Stage 2, reward models: Eq. 1 (no margin) and Eq. 2 (Llama 2's margin), same seed, data and order.
    arms = {"none": None, "margin": cfg.margin_scale}
    results = {}
    reward_models = {}
    for name, scale in arms.items():
        torch.manual_seed(cfg.seed + 1)  # the same head initialisation in both arms
        model = RewardModel(sft).to(device)
        log = {"loss": [], "accuracy": []}
        if cfg.train_rm:
            log = train_reward_model(
                model,
                data["train"]["ids"],
                data["train"]["mask"],
                train_pairs,
                RewardTrainConfig(
                    epochs=cfg.rm_epochs,
                    prompts_per_batch=cfg.prompts_per_batch,
                    lr=cfg.rm_lr,
                    margin_scale=scale,
                ),
                levels=train_levels,
                generator=torch.Generator().manual_seed(cfg.seed),
                progress=track,
            )
        # Section 3.5: a bias so that the demonstrations score 0 on average (orderings unchanged).
        shift, _ = normalise_reward_model(model, demo_ids, demo_mask)
        reward_models[name] = model.eval()
        r = score_sequences(model, data["heldout"]["ids"], data["heldout"]["mask"])
        r_c, r_r = r[heldout_pairs.chosen], r[heldout_pairs.rejected]
        results[name] = {
            "accuracy_heldout": pairwise_accuracy(r_c, r_r),
            # the last training steps' batch accuracy (scoring the whole training set again costs seconds)
            "accuracy_train": float(np.mean(log["accuracy"][-max(1, len(log["accuracy"]) // 8) :]))
            if log["accuracy"]
            else float("nan"),
            "by_level": accuracy_by_strength(r_c, r_r, heldout_levels),
            # The issue's measure: pairs whose true gap is above the training gaps' median (the top two
            # quartile levels; the edges are the quartiles, so the median is the middle edge).
            "above_median": pairwise_accuracy(r_c[heldout_levels >= 2], r_r[heldout_levels >= 2])
            if bool((heldout_levels >= 2).any())
            else float("nan"),
            "loss": log["loss"],
            "shift": shift,
            "demo_mean": float(score_sequences(model, demo_ids, demo_mask).mean()),
            "heldout_mean": float(r.mean()),
            "reward_labeler_correlation": float(
                np.corrcoef(r.numpy(), data["heldout"]["scores"].flatten().numpy())[0, 1]
            ),
        }
    plain, margin = results["none"], results["margin"]

    metrics = {
        "accuracy_heldout": plain["accuracy_heldout"],
        "accuracy_separated": plain["by_level"][3],
        "accuracy_above_median": plain["above_median"],
        "accuracy_above_median_margin": margin["above_median"],
        "accuracy_weakest": plain["by_level"][0],
        "accuracy_train": plain["accuracy_train"],
        "accuracy_heldout_margin": margin["accuracy_heldout"],
        "accuracy_separated_margin": margin["by_level"][3],
        "margin_gain_separated": margin["by_level"][3] - plain["by_level"][3],
        "margin_gain_heldout": margin["accuracy_heldout"] - plain["accuracy_heldout"],
        "reward_labeler_correlation": plain["reward_labeler_correlation"],
        "demonstration_mean_reward": plain["demo_mean"],
        "heldout_mean_reward": plain["heldout_mean"],
        "pairs_train": float(len(train_pairs)),
        "pairs_heldout": float(len(heldout_pairs)),
        "sft_loss_first": sft_log["loss"][0],
        "sft_loss_last": sft_log["loss"][-1],
        "labeler_mean_train": float(data["train"]["scores"].mean()),
    }
    for level in range(len(STRENGTHS)):
        metrics[f"accuracy_level{level}"] = plain["by_level"][level]
        metrics[f"accuracy_level{level}_margin"] = margin["by_level"][level]

    # Stage 3: PPO and PPO-ptx against the Eq. 1 reward model, DPO on the same comparisons, all
    # evaluated with the ground-truth labeler on held-out prompts (docstring).
    stage3 = reinforcement_learning(
        cfg, sft, reward_models["none"], tokenizer, labeler, prompts, data, device
    )
    metrics.update(stage3["metrics"])

    figure = Figure(figsize=(6, 3.4))
    axis = figure.add_subplot()
    x = np.arange(len(STRENGTHS))
    axis.bar(x - 0.2, plain["by_level"], 0.4, label="Eq. 1 (no margin)")
    axis.bar(x + 0.2, margin["by_level"], 0.4, label=f"Eq. 2 (margin {cfg.margin_scale})")
    axis.axhline(0.5, color="grey", lw=0.8, ls="--")
    axis.set_xticks(
        x, [s.replace(" / ", "/\n").replace(" better", "\nbetter") for s in STRENGTHS], fontsize=8
    )
    axis.set_ylim(0, 1)
    axis.set_ylabel("held-out pairwise accuracy")
    axis.set_title("Reward-model accuracy by preference strength (cf. Llama 2 Tables 8, 28)", fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figures = {"accuracy_by_strength": figure, **stage3["figures"]}

    examples_shown = []
    for i in range(min(3, cfg.heldout_prompts)):
        row = data["heldout"]["scores"][i]
        best, worst = int(row.argmax()), int(row.argmin())
        examples_shown.append(
            {
                "best": data["heldout"]["texts"][i * cfg.k + best],
                "best_score": float(row[best]),
                "worst": data["heldout"]["texts"][i * cfg.k + worst],
                "worst_score": float(row[worst]),
            }
        )
    details = {
        "strength_edges": edges.tolist(),
        "strengths": list(STRENGTHS),
        "accuracy_by_level": {"none": plain["by_level"], "margin": margin["by_level"]},
        "loss_none": plain["loss"],
        "loss_margin": margin["loss"],
        "normalisation_shift": {"none": plain["shift"], "margin": margin["shift"]},
        "heldout_examples": examples_shown,
        **stage3["details"],
    }
    notes = [
        (
            "Stage 3: PPO and PPO-ptx against the Eq. 1 reward model (value model initialised from it), "
            "evaluated by the labeler's ground-truth reward on held-out prompts; DPO on the same comparisons "
            "for the reward-KL frontier."
        ),
        (
            f"Base model: {cfg.base_layers} layers, width {cfg.base_hidden}, characters; the labeler is the "
            "SST-2 logistic-regression sentiment scorer, not people; strength levels are quartiles of its score gap."
        ),
        (
            "The issue's 85 % on the pairs above the median gap is the full-scale threshold; quick reaches "
            "less (see the docstring: 375 training prompts are the limit, and samples of a tiny character "
            "model differ by a word or two)."
        ),
    ]
    if not cfg.train_rm:
        notes.append("Broken variant: the reward models were not trained (train_rm=False).")
    if math.isnan(metrics["accuracy_separated"]):
        notes.append("No held-out comparison fell in the top strength level.")
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)


__all__ = ["CLAIMS", "Config", "base_config", "check_config", "demonstrations", "run"]
