"""DPO (Rafailov et al. 2023): controlled sentiment generation (Section 6.1, Figure 2), small.

The paper's point: on a task whose ground-truth reward is known, DPO trained on preference pairs raises
the reward of the policy's generations while staying close (in KL) to the reference, and its reward-KL
frontier is better than PPO's. Here, top to bottom:

1. the reference policy (and DPO's starting point) is the small character-level base model pre-trained
   on SST training sentences (:func:`aicanon.testbeds.char_lm.pretrain_char_lm`, cached under
   ``<results>/_cache/char_lm``): it plays the paper's GPT-2-large fine-tuned (SFT) on IMDb reviews;
2. the ground-truth reward ``r(x, y)`` is a sentiment classifier trained on SST-2's labels
   (:func:`aicanon.testbeds.sentiment.train_sentiment_scorer`, the log-odds of "positive" of the prompt
   and its continuation), the paper's SiEBERT;
3. prompts are the first 2-4 words of SST training sentences (the paper: IMDb prefixes of 2-8 tokens);
   the reference samples ``samples_per_prompt`` continuations of each, and every pair of them with
   different rewards is a preference pair, the higher reward chosen (the classifier is the labeller);
4. DPO (Eq. 7, :func:`aicanon.align.dpo.train_dpo`) fine-tunes a copy of the reference for each beta
   of ``betas``;
5. on held-out prompts (SST dev prefixes) each policy is evaluated: the mean ground-truth reward of its
   greedy and of its sampled continuations, and the sequence-level ``KL[pi || pi_ref]`` estimated from
   its own samples (mean of ``log pi(y|x) - log pi_ref(y|x)``, the x-axis of Figure 2); the reference
   itself is evaluated the same way (its KL is 0).

The claims, on the beta that carries them (``claim_beta``, the paper's default 0.1): DPO's reward
minus the reference's, for greedy and for sampled continuations, above a threshold set after measuring
(the no-training control, ``train=False``, fails it), with the KL below a stated bound; and the beta
sweep behaves as Eq. 3 says, the smallest beta straying at least twice as far (in KL) as the largest.
Reward against KL for every beta is reported and drawn (:func:`plot_frontier`, which also takes other
methods' points: PPO's belongs to the RL-from-feedback experiment and can be drawn on the same axes).

What the metrics show: the gain of sampled continuations carries the main claim (the KL is estimated
from the same samples, so reward and KL describe one policy); the greedy gain has the lower threshold
because greedy decoding of a character model falls into a few shared loops, which makes it the noisier
of the two; the KL bound checks that the gain is not bought by straying arbitrarily far from the
reference. Over the beta sweep the KL should fall, and the reward with it, as beta grows: the frontier
of Figure 2, reward bought with KL as beta falls. The no-training control has gains of exactly 0 and
fails. What DPO learns is what the ground truth rewards: a bag-of-words classifier pays for words such
as "fun" and "funny" and for longer texts holding more of them, and DPO's continuations use those words
and run to the length limit (reward hacking of a weak reward model, visible in the ``greedy_examples``
details). The numbers, per seed and per beta, are in the run's record (``results/dpo/``) and in
RESULTS.md.

Departures from the paper, and why:

* Scale: a 2-layer, width-64 character model pre-trained for 1000 steps, not GPT-2-large; a linear
  bag-of-words classifier, not SiEBERT; SST sentences, not IMDb reviews. Rewards are the classifier's
  log-odds, so the absolute numbers are not comparable with Figure 2; the claims are about the gain over
  the reference and the KL it costs. The base differs from the LoRA experiment's (200 steps): that one
  hardly spells the words the classifier knows, and DPO then has little to prefer.
* No SFT stage: the base is pre-trained on SST sentences, so it already writes (character-level)
  review-like text; that is the role the paper's SFT on IMDb plays.
* Four samples per prompt, all six pairs of them with different rewards (the paper's count of samples
  per prefix is not in the text we could check); the pairs of one prompt share a batch, so each
  distinct completion is scored once per step.
* Optimiser: AdamW with learning rate 3e-4, batch 32 pairs, 10 warm-up steps, 4 epochs, against the
  paper's RMSprop 1e-6, batch 64, 150 warm-up steps (Appendix B): a tiny model and about 1,500 pairs
  (quick) need larger steps. Larger rates (1e-3) drove the KL of every beta towards the bound and hid
  the beta trade-off.
* PPO is not run here (see above); the frontier is DPO's over three betas.
* Each completion is followed by the end-of-line token when the sampler stopped there (the analogue of
  trl's appended EOS), so DPO also learns when to stop.
* The KL is estimated from ``eval_prompts x eval_samples`` samples (quick: 128 held-out prompts x 4),
  the rewards from the same samples and from ``eval_prompts`` greedy continuations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from aicanon.align.dpo import DPOConfig, collate_preferences, log_ratios, train_dpo
from aicanon.core import Result, seed, select_device, track
from aicanon.core.experiment import Claim, ExperimentConfig
from aicanon.testbeds.char_lm import CharLMConfig, cache_folder, pretrain_char_lm
from aicanon.testbeds.sentiment import (
    preference_pairs,
    sample_completions,
    sentiment_prompts,
    train_sentiment_scorer,
)

STOP = "\n"


@dataclass
class Config(ExperimentConfig):
    base_steps: int = 1000
    """Pre-training steps of the base model (200, the LoRA experiment's base, cannot yet spell the
    sentiment words the reward knows, and DPO has little to prefer)."""
    base_hidden: int = 64
    """Width of the base model."""
    base_layers: int = 2
    """Blocks of the base model."""
    base_seq_len: int = 64
    """Pre-training window (characters)."""
    base_batch: int = 32
    """Pre-training windows per step."""
    cache: str | None = None
    """Folder of the cached base model (None: ``_cache/char_lm`` under the results folder, which
    ``aicanon reproduce --out`` sets; '' = retrain every run)."""
    train_prompts: int = 256
    """Prompts (SST training prefixes) the reference samples preference data for."""
    samples_per_prompt: int = 4
    """Reference samples per prompt; every pair of them with different rewards is a preference pair."""
    prompt_words: tuple[int, int] = (2, 4)
    """Words per prompt, min and max (the paper: 2-8 tokens of an IMDb review)."""
    max_new_tokens: int = 48
    """Characters sampled after each prompt (generation also stops at the end of the line)."""
    temperature: float = 1.0
    """Sampling temperature of the preference data and of the sampled evaluation."""
    betas: tuple[float, ...] = (0.05, 0.1, 0.5)
    """The beta of each DPO run (one frontier point each)."""
    claim_beta: float = 0.1
    """The beta whose metrics carry the claims (Appendix B's default)."""
    lr: float = 3e-4
    """AdamW learning rate of DPO (the paper: RMSprop 1e-6; see the docstring)."""
    batch_size: int = 32
    """Preference pairs per DPO step, whole prompts at a time (the paper: 64)."""
    epochs: int = 4
    """Passes over the preference pairs."""
    warmup_steps: int = 10
    """Linear learning-rate warm-up steps (the paper: 150)."""
    eval_prompts: int = 128
    """Held-out prompts (SST dev prefixes) for the evaluation."""
    eval_samples: int = 4
    """Sampled continuations per held-out prompt (for the sampled reward and the KL estimate)."""
    train: bool = True
    """False = the no-training control: every 'DPO' policy is the reference itself."""
    examples: int = 4
    """Held-out prompts whose greedy continuations are kept in the details, per policy."""

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
            train_prompts=4096,
            samples_per_prompt=4,
            prompt_words=(2, 8),
            max_new_tokens=64,
            betas=(0.05, 0.1, 0.2, 0.5, 1.0),
            lr=1e-4,
            batch_size=64,
            epochs=2,
            warmup_steps=150,
            eval_prompts=512,
            eval_samples=8,
        )


CLAIMS = [
    Claim(
        metric="reward_gain_sampled",
        description=(
            "DPO (beta = 0.1) raises the mean ground-truth reward (sentiment log-odds) of sampled "
            "continuations of held-out prompts over the reference policy's"
        ),
        paper=None,
        source="Section 6.1, Figure 2 (left): DPO's reward rises well above the SFT reference's (figure only)",
        quick=0.4,
        full=0.4,
    ),
    Claim(
        metric="reward_gain_greedy",
        description="the same gain for greedy continuations",
        paper=None,
        source="Section 6.1 (figure only)",
        quick=0.2,
        full=0.2,
    ),
    Claim(
        metric="kl_sampled",
        description=(
            "sequence-level KL[pi || pi_ref] of DPO (beta = 0.1), estimated from its samples on "
            "held-out prompts, stays below a stated bound (the x-axis of Figure 2)"
        ),
        paper=None,
        source="Section 6.1, Figure 2 (left): KL[pi || pi_ref] on the x-axis (our bound; the figure's range unverified)",
        quick=25.0,
        full=25.0,
        higher_is_better=False,
        unit="nats",
    ),
    Claim(
        metric="kl_ratio_smallest_to_largest_beta",
        description="the smallest beta strays furthest: KL at beta = 0.05 over KL at beta = 0.5",
        paper=None,
        source="Eq. 3 (beta weighs the KL penalty) and the beta sweep of Figure 2",
        quick=2.0,
        full=2.0,
    ),
    Claim(
        metric="reward_reference_sampled",
        description="the reference policy's mean reward of sampled continuations (the baseline)",
        paper=None,
        source="Section 6.1 (the SFT model's reward)",
    ),
    Claim(
        metric="reward_dpo_sampled",
        description="DPO (beta = 0.1): mean reward of sampled continuations",
        paper=None,
        source="Section 6.1, Figure 2 (left)",
    ),
    Claim(
        metric="positive_rate_gain_sampled",
        description="the gain in the classifier's mean probability of 'positive' (sampled continuations)",
        paper=None,
        source="Section 6.1, Figure 2 (left) plots the expected reward (which scale: unverified)",
    ),
]


# ----- the frontier plot (shared with the PPO experiment) --------------------------------------------


def plot_frontier(
    points: dict[str, list[tuple[float, float]]],
    reference: tuple[float, float] | None = None,
    labels: dict[str, list[str]] | None = None,
    title: str = "reward vs KL (Figure 2, left)",
) -> Figure:
    """Reward against ``KL[pi || pi_ref]`` for one or more methods: ``points[method] = [(kl, reward), ...]``
    (DPO's over betas, PPO's over KL targets ...), each drawn as its frontier (sorted by KL);
    ``reference`` marks the reference policy; ``labels[method]`` annotates each point (e.g. its beta)."""
    if not isinstance(points, dict) or not points:
        raise ValueError(
            f"points must be a non-empty dict of method -> [(kl, reward), ...], got {points!r:.80}"
        )
    figure = Figure(figsize=(5.5, 4))
    axis = figure.add_subplot()
    for method, values in points.items():
        if not values or any(len(v) != 2 for v in values):
            raise ValueError(
                f"points[{method!r}] must be a non-empty list of (kl, reward) pairs, got {values!r:.80}"
            )
        order = np.argsort([v[0] for v in values])
        kl = [values[i][0] for i in order]
        reward = [values[i][1] for i in order]
        axis.plot(kl, reward, "o-", label=method)
        for i in order if labels and method in labels else []:
            axis.annotate(labels[method][i], values[i], textcoords="offset points", xytext=(4, 4), fontsize=8)
    if reference is not None:
        axis.plot([reference[0]], [reference[1]], "k*", markersize=10, label="reference")
    axis.set_xlabel("KL[pi || pi_ref] (nats per sequence)")
    axis.set_ylabel("mean ground-truth reward")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    return figure


# ----- the experiment --------------------------------------------------------------------------------


def _response_ids(tokenizer, completion: str, max_new_tokens: int) -> list[int]:
    """The completion's ids, followed by the end-of-line token when the sampler stopped there."""
    stopped = len(completion) < max_new_tokens
    return tokenizer.encode(completion + (STOP if stopped else "")).tolist()


def evaluate(
    policy: nn.Module,
    reference: nn.Module,
    tokenizer,
    scorer,
    prompts: list[str],
    cfg: Config,
    generator: torch.Generator,
) -> dict:
    """Mean reward of greedy and of sampled continuations, and the KL estimated from the samples."""
    greedy = [
        c[0]
        for c in sample_completions(
            policy, tokenizer, prompts, 1, max_new_tokens=cfg.max_new_tokens, temperature=0.0
        )
    ]
    sampled = sample_completions(
        policy,
        tokenizer,
        prompts,
        cfg.eval_samples,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        generator=generator,
    )
    flat_prompts = [p for p in prompts for _ in range(cfg.eval_samples)]
    flat = [c for row in sampled for c in row]
    reward_greedy = scorer([p + c for p, c in zip(prompts, greedy, strict=True)])
    reward_sampled = scorer([p + c for p, c in zip(flat_prompts, flat, strict=True)])
    # KL[pi || pi_ref] at the sequence level: E_{y ~ pi} log pi(y|x) - log pi_ref(y|x) (Eq. 3's penalty).
    responses = [_response_ids(tokenizer, c, cfg.max_new_tokens) for c in flat]
    prompt_ids = [tokenizer.encode(p).tolist() for p in flat_prompts]
    device = next(policy.parameters()).device
    ratios = []
    for start in range(0, len(flat), 128):
        part = slice(start, start + 128)
        batch = collate_preferences(prompt_ids[part], responses[part], responses[part]).to(device)
        n = batch.num_pairs
        ratios.append(
            log_ratios(
                policy, reference, batch.input_ids[:n], batch.attention_mask[:n], batch.loss_mask[:n]
            ).cpu()
        )
    return {
        "reward_greedy": float(reward_greedy.mean()),
        "reward_sampled": float(reward_sampled.mean()),
        "positive_rate_sampled": float(torch.sigmoid(reward_sampled).mean()),
        "kl_sampled": float(torch.cat(ratios).mean()),
        "length_sampled": float(np.mean([len(c) for c in flat])),
        "greedy_examples": [p + c for p, c in zip(prompts[: cfg.examples], greedy, strict=False)],
    }


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    device = select_device(cfg.device)
    if cfg.claim_beta not in cfg.betas:
        raise ValueError(f"claim_beta must be one of betas {cfg.betas}, got {cfg.claim_beta}")
    base_cfg = CharLMConfig(
        hidden_size=cfg.base_hidden,
        num_layers=cfg.base_layers,
        num_heads=max(1, cfg.base_hidden // 16),
        intermediate_size=int(cfg.base_hidden * 8 / 3 + 3) // 4 * 4,
        steps=cfg.base_steps,
        batch_size=cfg.base_batch,
        seq_len=cfg.base_seq_len,
        warmup_steps=max(1, cfg.base_steps // 10),
    )
    reference, tokenizer = pretrain_char_lm(base_cfg, cache_folder(cfg.cache), device=device)
    reference = reference.to(device).eval()
    scorer = train_sentiment_scorer(seed=0)  # the ground truth is the same for every seed

    # Preference data: samples_per_prompt reference samples per prompt, every pair of them with
    # different rewards a preference pair, labelled by the ground-truth reward.
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    low, high = cfg.prompt_words
    prompts = sentiment_prompts(cfg.train_prompts, "train", low, high, seed=cfg.seed)
    completions = sample_completions(
        reference,
        tokenizer,
        prompts,
        cfg.samples_per_prompt,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        generator=generator,
    )
    rewards = [scorer([p + c for c in row]).tolist() for p, row in zip(prompts, completions, strict=True)]
    pairs = preference_pairs(prompts, completions, rewards)
    triples = [
        (
            tokenizer.encode(pair.prompt).tolist(),
            _response_ids(tokenizer, pair.chosen, cfg.max_new_tokens),
            _response_ids(tokenizer, pair.rejected, cfg.max_new_tokens),
        )
        for pair in pairs
    ]

    # DPO for each beta, then the held-out evaluation of every policy (the reference included).
    eval_prompts = sentiment_prompts(cfg.eval_prompts, "dev", low, high, seed=cfg.seed)
    eval_generator = torch.Generator(device=device)
    eval_generator.manual_seed(cfg.seed + 1)
    results = {
        "reference": evaluate(reference, reference, tokenizer, scorer, eval_prompts, cfg, eval_generator)
    }
    logs = {}
    for beta in track(cfg.betas, "DPO over betas", total=len(cfg.betas)):
        policy = copy.deepcopy(reference)
        if cfg.train:
            dpo_cfg = DPOConfig(
                beta=beta,
                lr=cfg.lr,
                batch_size=cfg.batch_size,
                epochs=cfg.epochs,
                warmup_steps=cfg.warmup_steps,
                precompute_reference=True,
                group_by_prompt=True,
            )
            logs[beta] = train_dpo(
                policy,
                reference,
                triples,
                dpo_cfg,
                pad_token_id=tokenizer.encode(STOP).item(),
                generator=torch.Generator().manual_seed(cfg.seed),
                device=device,
            )
        policy.eval()
        if not cfg.train:  # the control's policies are the reference: its evaluation stands for them
            results[beta] = results["reference"]
            continue
        eval_generator.manual_seed(cfg.seed + 1)  # every policy sees the same sampling noise
        results[beta] = evaluate(policy, reference, tokenizer, scorer, eval_prompts, cfg, eval_generator)

    ref, dpo = results["reference"], results[cfg.claim_beta]
    metrics = {
        "reward_gain_sampled": dpo["reward_sampled"] - ref["reward_sampled"],
        "reward_gain_greedy": dpo["reward_greedy"] - ref["reward_greedy"],
        "kl_sampled": dpo["kl_sampled"],
        "reward_reference_sampled": ref["reward_sampled"],
        "reward_reference_greedy": ref["reward_greedy"],
        "length_reference_sampled": ref["length_sampled"],
        "reward_dpo_sampled": dpo["reward_sampled"],
        "reward_dpo_greedy": dpo["reward_greedy"],
        "positive_rate_gain_sampled": dpo["positive_rate_sampled"] - ref["positive_rate_sampled"],
        # Eq. 3: beta sets how far the policy may stray; the smallest beta should stray furthest.
        "kl_ratio_smallest_to_largest_beta": (
            results[min(cfg.betas)]["kl_sampled"] / results[max(cfg.betas)]["kl_sampled"]
            if results[max(cfg.betas)]["kl_sampled"] > 0
            else float("nan")
        ),
        "preference_pairs": float(len(triples)),
        "preference_reward_gap": float(np.mean([p.reward_chosen - p.reward_rejected for p in pairs])),
    }
    for beta in cfg.betas:
        metrics[f"reward_sampled_beta_{beta:g}"] = results[beta]["reward_sampled"]
        metrics[f"reward_greedy_beta_{beta:g}"] = results[beta]["reward_greedy"]
        metrics[f"kl_sampled_beta_{beta:g}"] = results[beta]["kl_sampled"]
        metrics[f"length_sampled_beta_{beta:g}"] = results[beta]["length_sampled"]
        if beta in logs:
            metrics[f"final_reward_accuracy_beta_{beta:g}"] = logs[beta]["accuracy"][-1]

    figure = plot_frontier(
        {"DPO (sampled)": [(results[b]["kl_sampled"], results[b]["reward_sampled"]) for b in cfg.betas]},
        reference=(0.0, ref["reward_sampled"]),
        labels={"DPO (sampled)": [f"beta={b:g}" for b in cfg.betas]},
    )
    details = {
        "frontier": {
            f"{b:g}": {
                "kl": results[b]["kl_sampled"],
                "reward_sampled": results[b]["reward_sampled"],
                "reward_greedy": results[b]["reward_greedy"],
            }
            for b in cfg.betas
        },
        "greedy_examples": {str(k): v["greedy_examples"] for k, v in results.items()},
        "training_log": {f"{b:g}": {k: v for k, v in log.items() if k != "lr"} for b, log in logs.items()},
        "example_pairs": [
            {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs[: cfg.examples]
        ],
    }
    notes = [
        (
            f"Reference/base: {cfg.base_layers} layers, width {cfg.base_hidden}, characters, pre-trained on SST "
            "sentences (the paper: GPT-2-large after SFT on IMDb); ground truth: a bag-of-words SST-2 "
            "classifier's log-odds (the paper: SiEBERT). Absolute rewards are not comparable with Figure 2."
        ),
        (
            f"DPO with AdamW lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.warmup_steps} warm-up steps, "
            f"{cfg.epochs} epochs over {len(triples)} pairs (the paper: RMSprop 1e-6, batch 64, 150 warm-up steps)."
        ),
        "PPO's frontier belongs to the RL-from-feedback experiment; plot_frontier draws both on one plot.",
    ]
    if not cfg.train:
        notes.append("No-training control: every policy is the reference (train=False).")
    return Result(metrics=metrics, figures={"reward_kl_frontier": figure}, details=details, notes=notes)


__all__ = ["CLAIMS", "Config", "evaluate", "plot_frontier", "run"]
