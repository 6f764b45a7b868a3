"""Testbed: preference data for the align experiments: a ground-truth sentiment reward, prompts, sampled
completions and the preference pairs they make.

DPO's controlled sentiment generation (Rafailov et al. 2023, Section 6.1) has a policy continue the
prefix of a movie review, and a sentiment classifier is the ground-truth reward ``r(x, y)``; the
pairs DPO trains on are two samples of the reference policy, the one the classifier prefers being
``y_w``. InstructGPT's reward model (Ouyang et al. 2022, Section 3.5) learns from ``K`` ranked
completions of a prompt, all ``K choose 2`` comparisons of it. Here the classifier plays the human
labeler in both, so that what the reward model or DPO learn can be checked against the truth.

* :class:`SentimentScorer` / :func:`train_sentiment_scorer`: logistic regression on word unigram and
  bigram presence, trained on the SST-2 training sentences (about 0.8 dev accuracy). Its log-odds of
  "positive" is the reward. Departure: the DPO paper's reward is a large pre-trained sentiment model
  (SiEBERT); nothing can be downloaded here, and a linear model is deterministic and fast.
* :func:`sentiment_prompts`: the first few words of SST sentences (the paper: prefixes of IMDb
  reviews of length 2-8 tokens).
* :func:`sample_completions`: ``k`` sampled continuations per prompt from a causal LM with a
  character tokenizer (the base model of :mod:`aicanon.testbeds.char_lm`), cut at the end of the line.
* :func:`preference_pairs`: the ``K choose 2`` pairs of each prompt's completions, ordered by reward.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.datasets.sst import load_sst, load_sst_binary
from aicanon.language.generation import left_pad

__all__ = [
    "PreferencePair",
    "SentimentScorer",
    "preference_pairs",
    "sample_completions",
    "sentiment_prompts",
    "train_sentiment_scorer",
]


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: ``chosen`` (``y_w``) has the higher ground-truth reward than ``rejected``."""

    prompt: str
    chosen: str
    rejected: str
    reward_chosen: float
    reward_rejected: float


def _features(text: str) -> list[str]:
    """Word unigrams and bigrams of lower-cased, whitespace-tokenised text (SST's tokenisation)."""
    words = text.lower().split()
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


class SentimentScorer(nn.Module):
    """``r(text) = w . phi(text) + b``: logistic regression on the presence of known features.

    Call it on a list of texts for the rewards (log-odds of positive sentiment, a float tensor);
    :meth:`prob` gives ``sigmoid(r)``. Unknown words are ignored, so any text can be scored.
    """

    def __init__(self, vocabulary: Sequence[str]) -> None:
        super().__init__()
        if not vocabulary:
            raise ValueError("vocabulary must be a non-empty sequence of features")
        self.vocabulary = list(vocabulary)
        self._index = {f: i for i, f in enumerate(self.vocabulary)}
        self.weight = nn.EmbeddingBag(len(self.vocabulary), 1, mode="sum")
        nn.init.zeros_(self.weight.weight)
        self.bias = nn.Parameter(torch.zeros(()))

    def encode(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """EmbeddingBag inputs: the indices of each text's distinct known features, and offsets."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
        indices: list[int] = []
        offsets: list[int] = []
        for text in texts:
            offsets.append(len(indices))
            known = {self._index[f] for f in _features(text) if f in self._index}
            indices.extend(sorted(known))  # presence, not counts: repeating a word does not pay
        return torch.tensor(indices, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    def logits(self, indices: Tensor, offsets: Tensor) -> Tensor:
        return self.weight(indices, offsets).squeeze(-1) + self.bias

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> Tensor:
        return self.logits(*self.encode(texts))

    def prob(self, texts: Sequence[str]) -> Tensor:
        return torch.sigmoid(self(texts))


def train_sentiment_scorer(
    seed: int = 0, min_count: int = 2, steps: int = 200, weight_decay: float = 1e-4
) -> SentimentScorer:
    """Fit :class:`SentimentScorer` on SST-2's training sentences (full-batch Adam, L2 penalty)."""
    check_int("seed", seed, minimum=0)
    check_int("min_count", min_count, minimum=1)
    check_int("steps", steps, minimum=1)
    texts, labels = load_sst_binary("train")
    counts = Counter(f for t in texts for f in set(_features(t)))
    vocabulary = sorted(f for f, c in counts.items() if c >= min_count)
    generator = torch.Generator().manual_seed(seed)
    scorer = SentimentScorer(vocabulary)
    with torch.no_grad():
        scorer.weight.weight.normal_(0.0, 0.01, generator=generator)
    indices, offsets = scorer.encode(texts)
    target = torch.as_tensor(labels, dtype=torch.float32)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(scorer.logits(indices, offsets), target)
        loss = loss + weight_decay * scorer.weight.weight.pow(2).sum()
        loss.backward()
        optimizer.step()
    return scorer.eval()


def sentiment_prompts(
    n: int, split: str = "train", min_words: int = 2, max_words: int = 4, seed: int = 0
) -> list[str]:
    """``n`` distinct prompts: the first ``min_words..max_words`` words of SST sentences (lower-cased,
    with a trailing space), from sentences at least two words longer than the prompt."""
    check_int("n", n, minimum=1)
    check_int("min_words", min_words, minimum=1)
    check_int("max_words", max_words, minimum=min_words)
    sentences = [s.lower().split() for s in load_sst(split)[0]]
    rng = random.Random(seed)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    prompts: list[str] = []
    seen: set[str] = set()
    for i in order:
        words = sentences[i]
        m = rng.randint(min_words, max_words)
        if len(words) < m + 2:
            continue
        prompt = " ".join(words[:m]) + " "
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(prompt)
            if len(prompts) == n:
                return prompts
    raise ValueError(f"n={n} is more than the {len(prompts)} distinct prompts the {split} split gives")


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    k: int,
    *,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_k: int | None = None,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    stop: str = "\n",
) -> list[list[str]]:
    """``k`` continuations of each prompt (the text after it, cut before ``stop``).

    ``tokenizer`` encodes text to ids and decodes ids (a :class:`~aicanon.datasets.text.CharTokenizer`);
    ``stop`` must be one token of it: generation of a row ends there. ``temperature=0`` is greedy (then
    the ``k`` completions are equal). Rows are left-padded in batches of ``batch_size``.
    """
    if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty str")
    check_int("k", k, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    stop_ids = tokenizer.encode(stop).tolist()
    if len(stop_ids) != 1:
        raise ValueError(
            f"stop must be a single token of the tokenizer, got {stop!r} ({len(stop_ids)} tokens)"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = [tokenizer.encode(p).tolist() for p in prompts for _ in range(k)]
    texts: list[str] = []
    for start in range(0, len(rows), batch_size):
        ids, mask = left_pad(rows[start : start + batch_size], pad_token_id=stop_ids[0])
        out = model.generate(
            ids.to(device),
            mask.to(device),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            eos_token_id=stop_ids[0],
            pad_token_id=stop_ids[0],
            generator=generator,
        )
        for row in out[:, ids.shape[1] :].cpu():
            texts.append(tokenizer.decode(row).split(stop, 1)[0])
    model.train(was_training)
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def preference_pairs(
    prompts: Sequence[str], completions: Sequence[Sequence[str]], rewards: Sequence[Sequence[float]]
) -> list[PreferencePair]:
    """All ``K choose 2`` comparisons of each prompt's completions, the higher reward chosen.

    Ties (equal rewards, e.g. identical completions) carry no preference and are dropped.
    """
    if not (len(prompts) == len(completions) == len(rewards)):
        raise ValueError(
            f"prompts, completions and rewards must have equal lengths, got "
            f"{len(prompts)}, {len(completions)} and {len(rewards)}"
        )
    pairs: list[PreferencePair] = []
    for i, (prompt, texts, scores) in enumerate(zip(prompts, completions, rewards, strict=True)):
        if len(texts) != len(scores):
            raise ValueError(
                f"completions[{i}] and rewards[{i}] must have equal lengths, got {len(texts)} and {len(scores)}"
            )
        for a, b in itertools.combinations(range(len(texts)), 2):
            ra, rb = float(scores[a]), float(scores[b])
            if ra == rb:
                continue
            w, l = (a, b) if ra > rb else (b, a)
            pairs.append(PreferencePair(prompt, texts[w], texts[l], float(scores[w]), float(scores[l])))
    return pairs
