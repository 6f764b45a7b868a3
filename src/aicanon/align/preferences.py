"""Reward learning from preferences over trajectory segments (Christiano et al. 2017, "Deep
reinforcement learning from human preferences", Section 2.2).

A *segment* σ = ((o_0, a_0), …, (o_{k−1}, a_{k−1})) is a piece of the agent's trajectory. A reward
predictor r̂ scores each step; a segment is preferred with the Bradley-Terry probability of the
summed predicted reward (Section 2.2.3)::

    P̂[σ¹ ≻ σ²] = exp Σ_t r̂(o¹_t, a¹_t) / (exp Σ_t r̂(o¹_t, a¹_t) + exp Σ_t r̂(o²_t, a²_t))

and r̂ minimises the cross-entropy to the labels μ (a distribution over {1, 2}; μ = (½, ½) when
the segments are judged equal)::

    loss(r̂) = − Σ_{(σ¹, σ², μ) ∈ D} μ(1) log P̂[σ¹ ≻ σ²] + μ(2) log P̂[σ² ≻ σ¹]        (Eq. 1)

with the paper's assumption that the labeller answers uniformly at random 10 % of the time
(``error_rate``): P̂ ← (1 − ε) P̂ + ε/2 (2.2.3).

What this module provides:

* :class:`Segments`: ``[B, k]`` segments (observations, encoded actions, true rewards, and a mask of
  the steps inside the episode) and :func:`sample_segments` that cuts them from finished episodes.
* :func:`oracle_preferences`: the synthetic labeller of Section 3.3: prefers the segment with the
  larger true return, ½ on ties, optionally answering at random with probability ``error_rate``.
* :func:`preference_probability` and :func:`preference_loss` (Eq. 1 with the 10 % error model).
* :class:`RewardEnsemble`: ``members`` independent MLP predictors r̂(o, a) (dropout), each fitted on
  a bootstrap resample of D; its out-of-bag pairs (a fraction → 1/e of D) are that member's
  validation set, and its L2 coefficient is adapted so that the validation loss stays between 1.1
  and 1.5 times the training loss (2.2.3). The reward given to the agent is the members' mean,
  normalised to zero mean and a fixed standard deviation over recently visited steps (2.2.1).
* :func:`preference_disagreement` and :func:`select_queries`: queries by ensemble disagreement,
  the variance over members of P̂[σ¹ ≻ σ²] among many sampled candidate pairs (2.2.4), or at random.
* :func:`label_schedule`: labels per round, a first batch then a rate decaying like 1/T (Section
  3 and Appendix A: the rate ∝ 1/(T + T₀)).
* :class:`PredictedRewardWrapper`: a Gymnasium vector-environment wrapper (same-step autoreset, as
  :func:`aicanon.rl.envs.make_vector_env` builds) that replaces the environment's reward by the
  ensemble's normalised prediction and records finished episodes (with their *true* rewards, for the
  oracle only) from which segments are cut. Any on-policy agent of :mod:`aicanon.rl` trains on it.

Termination. Steps after an episode's termination inside a segment count as zero reward, for the
oracle and for the predictor alike (``Segments.mask``): on CartPole (+1 per step) this is what makes
segments that contain the fall worth less; time-limit truncations are not terminations, so segments
are cut wholly inside truncated episodes.

Departures from the paper:

* The predictor is an MLP on the low-dimensional observation and the action (the paper's MuJoCo
  predictor was an MLP too; Atari's a convolutional net on frames, not implemented).
* The policy and the predictor alternate (label a batch, refit, train the policy) instead of
  running asynchronously (the issue allows either).
* Each refit runs a fixed number of Adam steps per member on mini-batches of its bootstrap sample,
  continuing from the previous weights; the L2 coefficient moves by a factor ``l2_factor`` after each
  refit towards the 1.1-1.5 band (the paper states the band, not the update rule).
* The normalisation statistics are recomputed after every refit on the wrapper's recent steps (the
  paper normalises without saying over which data: unverified).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_probability, check_tensor

__all__ = [
    "PredictedRewardWrapper",
    "RewardEnsemble",
    "Segments",
    "encode_actions",
    "label_schedule",
    "oracle_preferences",
    "preference_disagreement",
    "preference_loss",
    "preference_probability",
    "sample_segments",
    "select_queries",
]

PAPER_ERROR_RATE = 0.1
"""The labeller's chance of answering uniformly at random assumed by the model (2.2.3)."""


# --------------------------------------------------------------------------- segments and the oracle


@dataclass
class Segments:
    """``B`` segments of ``k`` steps: ``observations [B, k, d_o]``, ``actions [B, k, d_a]`` (encoded:
    one-hot for discrete spaces), ``true_rewards [B, k]`` (zero after a termination), ``mask [B, k]``
    (1 for steps inside the episode, 0 after its termination)."""

    observations: Tensor
    actions: Tensor
    true_rewards: Tensor
    mask: Tensor

    def __post_init__(self) -> None:
        check_tensor("observations", self.observations, dim=3, floating=True)
        batch, length = self.observations.shape[:2]
        check_tensor("actions", self.actions, shape=(batch, length, None), floating=True)
        check_tensor("true_rewards", self.true_rewards, shape=(batch, length), floating=True)
        check_tensor("mask", self.mask, shape=(batch, length), floating=True)

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    def __getitem__(self, index: Tensor | slice) -> Segments:
        return Segments(
            self.observations[index], self.actions[index], self.true_rewards[index], self.mask[index]
        )

    @property
    def true_returns(self) -> Tensor:
        """Σ_t r_t over the steps inside the episode, ``[B]``."""
        return (self.true_rewards * self.mask).sum(-1)

    @staticmethod
    def cat(parts: Sequence[Segments]) -> Segments:
        if not parts:
            raise ValueError("parts must hold at least one Segments, got none")
        return Segments(
            *(
                torch.cat([getattr(p, n) for p in parts])
                for n in ("observations", "actions", "true_rewards", "mask")
            )
        )


def encode_actions(actions: Any, action_space: gym.Space) -> np.ndarray:
    """Actions as float vectors ``[..., d_a]``: one-hot for ``Discrete``, flattened for ``Box``."""
    array = np.asarray(actions)
    if isinstance(action_space, gym.spaces.Discrete):
        return np.eye(int(action_space.n), dtype=np.float32)[array.astype(np.int64) - int(action_space.start)]
    if isinstance(action_space, gym.spaces.Box):
        size = int(np.prod(action_space.shape))
        return array.reshape(*array.shape[: array.ndim - len(action_space.shape)], size).astype(np.float32)
    raise TypeError(f"action_space must be Discrete or Box, got {action_space!r}")


@dataclass
class Episode:
    """One finished episode: ``observations [L, d_o]``, ``actions [L, d_a]`` (encoded), ``rewards
    [L]`` (true), and whether it ended by termination (not a time limit)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool


def sample_segments(
    episodes: Sequence[Episode], count: int, length: int, generator: torch.Generator | None = None
) -> Segments:
    """``count`` segments of ``length`` steps, each from an episode drawn uniformly. In a terminated
    episode the start is uniform over all its steps and the steps past its end are masked (zero
    reward: the fall is in the segment); in a truncated one the segment lies wholly inside (episodes
    shorter than ``length`` are masked past their end too)."""
    if not episodes:
        raise ValueError("episodes must hold at least one finished episode, got none")
    check_int("count", count)
    check_int("length", length)
    first = episodes[0]
    obs_dim, act_dim = first.observations.shape[1], first.actions.shape[1]
    observations = np.zeros((count, length, obs_dim), dtype=np.float32)
    actions = np.zeros((count, length, act_dim), dtype=np.float32)
    rewards = np.zeros((count, length), dtype=np.float32)
    mask = np.zeros((count, length), dtype=np.float32)
    picks = torch.randint(len(episodes), (count,), generator=generator).tolist()
    draws = torch.rand(count, generator=generator).tolist()
    for i, (pick, draw) in enumerate(zip(picks, draws)):
        episode = episodes[pick]
        size = len(episode.rewards)
        last_start = size - 1 if episode.terminated else max(size - length, 0)
        start = min(int(draw * (last_start + 1)), last_start)
        stop = min(start + length, size)
        n = stop - start
        observations[i, :n] = episode.observations[start:stop]
        actions[i, :n] = episode.actions[start:stop]
        rewards[i, :n] = episode.rewards[start:stop]
        mask[i, :n] = 1.0
        if n < length:  # past the end: the episode's last observation, masked out
            observations[i, n:] = episode.observations[stop - 1]
    return Segments(*(torch.from_numpy(a) for a in (observations, actions, rewards, mask)))


def oracle_preferences(
    first: Segments, second: Segments, error_rate: float = 0.0, generator: torch.Generator | None = None
) -> Tensor:
    """The synthetic labeller (Section 3.3): μ(1) = 1 where the first segment's true return is larger,
    0 where smaller, ½ on ties; with probability ``error_rate`` an answer is replaced by a fair coin
    (the noise the model assumes, 2.2.3; used to test robustness). Returns μ(1), ``[B]``."""
    if not isinstance(first, Segments) or not isinstance(second, Segments):
        raise TypeError(
            f"first and second must be Segments, got {type(first).__name__}, {type(second).__name__}"
        )
    if len(first) != len(second):
        raise ValueError(f"first and second must hold as many segments, got {len(first)} and {len(second)}")
    check_probability("error_rate", error_rate)
    difference = first.true_returns - second.true_returns
    labels = torch.full_like(difference, 0.5)
    labels[difference > 0] = 1.0
    labels[difference < 0] = 0.0
    if error_rate > 0:
        random = torch.rand(labels.shape, generator=generator) < error_rate
        coins = (torch.rand(labels.shape, generator=generator) < 0.5).to(labels.dtype)
        labels = torch.where(random, coins, labels)
    return labels


# --------------------------------------------------------------------------- Eq. 1


def preference_probability(
    returns_1: Tensor, returns_2: Tensor, error_rate: float = PAPER_ERROR_RATE
) -> Tensor:
    """P̂[σ¹ ≻ σ²] = (1 − ε) σ(R̂¹ − R̂²) + ε/2 from predicted segment returns (module docstring)."""
    check_tensor("returns_1", returns_1, floating=True)
    check_tensor("returns_2", returns_2, shape=tuple(returns_1.shape))
    check_probability("error_rate", error_rate)
    return (1.0 - error_rate) * torch.sigmoid(returns_1 - returns_2) + error_rate / 2


def preference_loss(
    returns_1: Tensor, returns_2: Tensor, labels: Tensor, error_rate: float = PAPER_ERROR_RATE
) -> Tensor:
    """Eq. 1 averaged over the batch: −[μ(1) log P̂[σ¹ ≻ σ²] + μ(2) log P̂[σ² ≻ σ¹]], μ(2) = 1 − μ(1).
    Computed in log space (log-sigmoid) so that saturated predictions stay finite."""
    check_tensor("returns_1", returns_1, floating=True)
    check_tensor("returns_2", returns_2, shape=tuple(returns_1.shape), floating=True)
    check_tensor("labels", labels, shape=tuple(returns_1.shape), floating=True)
    if ((labels < 0) | (labels > 1)).any() or not torch.isfinite(labels).all():
        raise ValueError("labels must be probabilities μ(1) in [0, 1]")
    check_probability("error_rate", error_rate)
    difference = returns_1 - returns_2
    if error_rate == 0:
        log_p1, log_p2 = nn.functional.logsigmoid(difference), nn.functional.logsigmoid(-difference)
    else:
        # log((1 − ε) σ(x) + ε/2), stably: logaddexp of the two terms.
        a, b = math.log1p(-error_rate) if error_rate < 1 else -math.inf, math.log(error_rate / 2)
        log_p1 = torch.logaddexp(a + nn.functional.logsigmoid(difference), torch.full_like(difference, b))
        log_p2 = torch.logaddexp(a + nn.functional.logsigmoid(-difference), torch.full_like(difference, b))
    return -(labels * log_p1 + (1.0 - labels) * log_p2).mean()


# --------------------------------------------------------------------------- the ensemble


class RewardEnsemble(nn.Module):
    """``members`` reward predictors r̂_m(o, a): MLPs (``hidden``, ReLU, ``dropout``) of the
    concatenated observation and encoded action (module docstring). ``forward`` gives every member's
    raw per-step reward ``[M, ...]``; :meth:`reward` the normalised mean the agent receives."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        members: int = 3,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.1,
        reward_std: float = 1.0,
        error_rate: float = PAPER_ERROR_RATE,
        l2: float = 1e-4,
    ) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("action_dim", action_dim, 0)
        check_int("members", members)
        check_probability("dropout", dropout)
        check_float("reward_std", reward_std, 0.0, min_inclusive=False, finite=True)
        check_probability("error_rate", error_rate)
        check_float("l2", l2, 0.0, finite=True)
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.error_rate, self.reward_std = float(error_rate), float(reward_std)
        sizes = [observation_dim + action_dim, *[check_int("hidden", h) for h in hidden], 1]

        def member() -> nn.Sequential:
            layers: list[nn.Module] = []
            for i in range(len(sizes) - 1):
                layers.append(nn.Linear(sizes[i], sizes[i + 1]))
                if i < len(sizes) - 2:
                    layers += [nn.ReLU(), nn.Dropout(dropout)]
            return nn.Sequential(*layers)

        self.members = nn.ModuleList(member() for _ in range(members))
        self.register_buffer("l2", torch.full((members,), float(l2)))
        self.register_buffer("shift", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))
        self.optimizers: list[torch.optim.Optimizer] | None = None
        self.history: list[dict[str, float]] = []

    @classmethod
    def for_spaces(
        cls, observation_space: gym.Space, action_space: gym.Space, **kwargs: Any
    ) -> RewardEnsemble:
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise TypeError(f"observation_space must be a flat Box, got {observation_space!r}")
        action_dim = encode_actions(action_space.sample(), action_space).shape[-1]
        return cls(int(observation_space.shape[0]), int(action_dim), **kwargs)

    def _inputs(self, observations: Tensor, actions: Tensor) -> Tensor:
        check_tensor("observations", observations, floating=True)
        check_tensor("actions", actions, floating=True)
        if observations.shape[-1] != self.observation_dim or actions.shape[-1] != self.action_dim:
            raise ValueError(
                f"observations and actions must end in {self.observation_dim} and {self.action_dim} "
                f"features, got {tuple(observations.shape)} and {tuple(actions.shape)}"
            )
        if observations.shape[:-1] != actions.shape[:-1]:
            raise ValueError(
                f"observations and actions must agree on their leading shape, got "
                f"{tuple(observations.shape)} and {tuple(actions.shape)}"
            )
        return torch.cat([observations, actions], -1)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Every member's raw reward, ``[M, ...]`` for inputs ``[..., d]``."""
        inputs = self._inputs(observations, actions)
        return torch.stack([member(inputs).squeeze(-1) for member in self.members])

    def segment_returns(self, segments: Segments) -> Tensor:
        """Σ_t r̂_m over the unmasked steps of each segment, ``[M, B]``."""
        return (self(segments.observations, segments.actions) * segments.mask).sum(-1)

    @torch.no_grad()
    def reward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """The reward the agent trains on: the members' mean (dropout off), normalised:
        ``reward_std · (r̄ − shift) / scale``."""
        training = self.training
        self.eval()
        mean = self(observations, actions).mean(0)
        self.train(training)
        return self.reward_std * (mean - self.shift) / self.scale

    @torch.no_grad()
    def normalize(self, observations: Tensor, actions: Tensor) -> None:
        """Set ``shift`` and ``scale`` to the mean and standard deviation of the members' mean reward
        on these steps (2.2.1: zero mean, fixed standard deviation)."""
        training = self.training
        self.eval()
        mean = self(observations, actions).mean(0).flatten()
        self.train(training)
        self.shift.copy_(mean.mean())
        self.scale.copy_(mean.std().clamp_min(1e-6) if mean.numel() > 1 else torch.ones(()))

    def probabilities(self, first: Segments, second: Segments) -> Tensor:
        """P̂_m[σ¹ ≻ σ²] of every member, ``[M, B]``."""
        return preference_probability(
            self.segment_returns(first), self.segment_returns(second), self.error_rate
        )

    def fit(
        self,
        first: Segments,
        second: Segments,
        labels: Tensor,
        steps: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        generator: torch.Generator | None = None,
        l2_band: tuple[float, float] = (1.1, 1.5),
        l2_factor: float = 1.5,
    ) -> dict[str, float]:
        """Fit every member on its own bootstrap resample of the ``B`` labelled pairs for ``steps``
        Adam steps (Eq. 1 plus ``l2[m] · Σ‖W‖²``), validate on its out-of-bag pairs, and move its L2
        coefficient by ``l2_factor`` towards validation/training loss in ``l2_band`` (2.2.3). The
        optimisers persist between calls (training continues). Returns mean losses."""
        if not isinstance(first, Segments) or not isinstance(second, Segments):
            raise TypeError("first and second must be Segments")
        count = len(first)
        if len(second) != count:
            raise ValueError(f"first and second must hold as many segments, got {count} and {len(second)}")
        check_tensor("labels", labels, shape=(count,), floating=True)
        check_int("steps", steps)
        check_int("batch_size", batch_size)
        check_float("lr", lr, 0.0, min_inclusive=False, finite=True)
        check_float("l2_factor", l2_factor, 1.0, finite=True)
        if not (0 < l2_band[0] <= l2_band[1]):
            raise ValueError(f"l2_band must be (low, high) with 0 < low <= high, got {l2_band}")
        if self.optimizers is None:
            self.optimizers = [torch.optim.Adam(member.parameters(), lr=lr) for member in self.members]
        self.train()
        summary = {"train_loss": 0.0, "validation_loss": 0.0, "l2": 0.0}
        for m, (member, optimizer) in enumerate(zip(self.members, self.optimizers)):
            sample = torch.randint(count, (count,), generator=generator)
            out_of_bag = torch.ones(count, dtype=torch.bool)
            out_of_bag[sample] = False
            weights = [p for name, p in member.named_parameters() if name.endswith("weight")]
            for _ in range(steps):
                batch = sample[torch.randint(count, (min(batch_size, count),), generator=generator)]
                loss = self._member_loss(member, first[batch], second[batch], labels[batch])
                penalty = self.l2[m] * sum(w.square().sum() for w in weights)
                optimizer.zero_grad(set_to_none=True)
                (loss + penalty).backward()
                optimizer.step()
            with torch.no_grad():
                member.eval()
                train_loss = float(self._member_loss(member, first[sample], second[sample], labels[sample]))
                held = out_of_bag.nonzero().squeeze(-1)
                if len(held):
                    validation = float(self._member_loss(member, first[held], second[held], labels[held]))
                    ratio = validation / max(train_loss, 1e-8)
                    if ratio > l2_band[1]:
                        self.l2[m] *= l2_factor
                    elif ratio < l2_band[0]:
                        self.l2[m] /= l2_factor
                else:
                    validation = float("nan")
                member.train()
            summary["train_loss"] += train_loss / len(self.members)
            summary["validation_loss"] += validation / len(self.members)
            summary["l2"] += float(self.l2[m]) / len(self.members)
        self.eval()
        self.history.append(summary)
        return summary

    def fit_state(self) -> dict[str, Any]:
        """What :meth:`fit` carries between calls beyond ``state_dict()`` (weights, L2 coefficients,
        normalisation): the members' Adam states (copies) and the fit history, for checkpoints."""
        optimizers = (
            [] if self.optimizers is None else [copy.deepcopy(o.state_dict()) for o in self.optimizers]
        )
        return {"optimizers": optimizers, "history": [dict(h) for h in self.history]}

    def load_fit_state(self, state: Any, lr: float) -> None:
        """Restore :meth:`fit_state` (the optimisers are rebuilt with ``lr``, then loaded)."""
        if not isinstance(state, dict) or set(state) != {"optimizers", "history"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state must be RewardEnsemble.fit_state()'s dict, got {got}")
        saved = list(state["optimizers"])
        if saved and len(saved) != len(self.members):
            raise ValueError(
                f"state holds {len(saved)} optimisers, this ensemble has {len(self.members)} members"
            )
        self.optimizers = None
        if saved:
            self.optimizers = [torch.optim.Adam(member.parameters(), lr=lr) for member in self.members]
            for optimizer, saved_state in zip(self.optimizers, saved, strict=True):
                optimizer.load_state_dict(saved_state)
        self.history = [dict(h) for h in state["history"]]

    def _member_loss(self, member: nn.Module, first: Segments, second: Segments, labels: Tensor) -> Tensor:
        def returns(segments: Segments) -> Tensor:
            inputs = self._inputs(segments.observations, segments.actions)
            return (member(inputs).squeeze(-1) * segments.mask).sum(-1)

        return preference_loss(returns(first), returns(second), labels, self.error_rate)


# --------------------------------------------------------------------------- queries and schedule


@torch.no_grad()
def preference_disagreement(ensemble: RewardEnsemble, first: Segments, second: Segments) -> Tensor:
    """Var_m P̂_m[σ¹ ≻ σ²] over the ensemble's members (dropout off), ``[B]`` (2.2.4)."""
    if not isinstance(ensemble, RewardEnsemble):
        raise TypeError(f"ensemble must be a RewardEnsemble, got {type(ensemble).__name__}")
    training = ensemble.training
    ensemble.eval()
    probabilities = ensemble.probabilities(first, second)
    ensemble.train(training)
    return probabilities.var(0, unbiased=False)


def select_queries(
    ensemble: RewardEnsemble,
    first: Segments,
    second: Segments,
    count: int,
    method: str = "disagreement",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Indices of the ``count`` candidate pairs to label: the largest ensemble disagreement
    (``"disagreement"``, 2.2.4) or uniformly at random without replacement (``"random"``)."""
    check_choice("method", method, ("disagreement", "random"))
    check_int("count", count)
    if count > len(first):
        raise ValueError(f"count must be <= the number of candidate pairs {len(first)}, got {count}")
    if method == "random":
        return torch.randperm(len(first), generator=generator)[:count]
    return preference_disagreement(ensemble, first, second).topk(count).indices


def label_schedule(total: int, rounds: int, initial_fraction: float = 0.25, offset: float = 1.0) -> list[int]:
    """Labels per round: ``round(total · initial_fraction)`` before the policy trains (round 0), the
    rest over rounds 1..``rounds`` with weights 1/(t + ``offset``), the paper's rate decaying like
    1/T. Whole numbers (largest remainders) summing to ``total``; ``rounds + 1`` entries."""
    check_int("total", total)
    check_int("rounds", rounds)
    check_float("initial_fraction", initial_fraction, 0.0, 1.0)
    check_float("offset", offset, 0.0, min_inclusive=False, finite=True)
    initial = round(total * initial_fraction)
    rest = total - initial
    weights = np.array([1.0 / (t + offset) for t in range(1, rounds + 1)])
    shares = rest * weights / weights.sum()
    counts = np.floor(shares).astype(int)
    for i in np.argsort(-(shares - counts), kind="stable")[: rest - counts.sum()]:
        counts[i] += 1
    return [initial, *counts.tolist()]


# --------------------------------------------------------------------------- the environment wrapper


class PredictedRewardWrapper(gym.vector.VectorWrapper):
    """A vector environment (same-step autoreset) whose reward is ``ensemble.reward(o_t, a_t)`` in
    place of the environment's (module docstring). It keeps the last ``keep_episodes`` finished
    episodes with their true rewards (:attr:`episodes`, for :func:`sample_segments` and the oracle
    only; the agent never sees them) and the true return and length of every finished episode
    (:attr:`true_episodes`)."""

    def __init__(self, env: gym.vector.VectorEnv, ensemble: RewardEnsemble, keep_episodes: int = 200) -> None:
        if not isinstance(env, gym.vector.VectorEnv):
            raise TypeError(f"env must be a gymnasium.vector.VectorEnv, got {type(env).__name__}")
        if env.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError("env must use same-step autoreset (aicanon.rl.envs.make_vector_env)")
        if not isinstance(ensemble, RewardEnsemble):
            raise TypeError(f"ensemble must be a RewardEnsemble, got {type(ensemble).__name__}")
        check_int("keep_episodes", keep_episodes)
        super().__init__(env)
        self.ensemble = ensemble
        self.episodes: deque[Episode] = deque(maxlen=keep_episodes)
        self.true_episodes: list[tuple[float, int]] = []
        self._observation: np.ndarray | None = None
        self._current: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(env.num_envs)]

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        observation, info = self.env.reset(seed=seed, options=options)
        self._observation = np.asarray(observation, dtype=np.float32)
        self._current = [[] for _ in range(self.num_envs)]
        return observation, info

    def recent_steps(self, limit: int = 5000) -> tuple[Tensor, Tensor]:
        """Observations and encoded actions of the stored episodes' steps (at most ``limit``, the
        newest), for the reward normalisation."""
        if not self.episodes:
            raise ValueError("no finished episode is stored yet")
        observations = np.concatenate([e.observations for e in self.episodes])[-limit:]
        actions = np.concatenate([e.actions for e in self.episodes])[-limit:]
        return torch.from_numpy(observations), torch.from_numpy(actions)

    def step(self, actions):
        if self._observation is None:
            raise RuntimeError("reset the environment before stepping it")
        encoded = encode_actions(actions, self.env.single_action_space)
        predicted = self.ensemble.reward(torch.from_numpy(self._observation), torch.from_numpy(encoded))
        predicted = predicted.double().numpy()
        if predicted.shape != (self.num_envs,) or not np.isfinite(predicted).all():
            raise ValueError(
                f"the reward predictor must return {self.num_envs} finite rewards, got {predicted.tolist()}"
            )
        observation, true_reward, terminated, truncated, info = self.env.step(actions)
        for i in range(self.num_envs):
            self._current[i].append((self._observation[i], encoded[i], float(true_reward[i])))
            if terminated[i] or truncated[i]:
                steps = self._current[i]
                self.episodes.append(
                    Episode(
                        np.stack([s[0] for s in steps]),
                        np.stack([s[1] for s in steps]),
                        np.array([s[2] for s in steps], dtype=np.float32),
                        bool(terminated[i]),
                    )
                )
                self.true_episodes.append((float(sum(s[2] for s in steps)), len(steps)))
                self._current[i] = []
        self._observation = np.asarray(observation, dtype=np.float32)
        return observation, predicted, terminated, truncated, info

    # ---------------------------------------------------------------------------- checkpoints
    def snapshot(self) -> dict[str, Any]:
        """The stored episodes, the true returns, every environment's unfinished episode and the last
        observation (tensors, for :func:`aicanon.core.checkpoint.save_checkpoint`). The environments
        underneath are the agent's to checkpoint (:meth:`aicanon.rl.on_policy.OnPolicyAgent.state_dict`)."""
        if self._observation is None:
            raise RuntimeError("reset the environment before taking a snapshot")

        def episode(e: Episode) -> dict[str, Any]:
            return {
                "observations": torch.from_numpy(e.observations.copy()),
                "actions": torch.from_numpy(e.actions.copy()),
                "rewards": torch.from_numpy(e.rewards.copy()),
                "terminated": e.terminated,
            }

        current = []
        for steps in self._current:
            current.append(
                {
                    "observations": torch.from_numpy(np.array([s[0] for s in steps], np.float32)),
                    "actions": torch.from_numpy(np.array([s[1] for s in steps], np.float32)),
                    "rewards": [s[2] for s in steps],
                }
            )
        return {
            "episodes": [episode(e) for e in self.episodes],
            "true_episodes": [list(e) for e in self.true_episodes],
            "current": current,
            "observation": torch.from_numpy(self._observation.copy()),
        }

    def restore(self, state: Any) -> None:
        """Put back :meth:`snapshot`'s state (after the agent restored the environments underneath)."""
        keys = {"episodes", "true_episodes", "current", "observation"}
        if not isinstance(state, dict) or set(state) != keys:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state must be PredictedRewardWrapper.snapshot()'s dict, got {got}")
        if len(state["current"]) != self.num_envs:
            raise ValueError(
                f"state holds {len(state['current'])} environments, this wrapper has {self.num_envs}"
            )
        observation = state["observation"].numpy()
        if observation.shape[0] != self.num_envs:
            raise ValueError(
                f"state's observation has shape {observation.shape}, expected {self.num_envs} rows"
            )
        self.episodes.clear()
        for e in state["episodes"]:
            self.episodes.append(
                Episode(
                    e["observations"].numpy(),
                    e["actions"].numpy(),
                    e["rewards"].numpy(),
                    bool(e["terminated"]),
                )
            )
        self.true_episodes = [(float(r), int(n)) for r, n in state["true_episodes"]]
        self._current = [
            [
                (o, a, float(r))
                for o, a, r in zip(c["observations"].numpy(), c["actions"].numpy(), c["rewards"], strict=True)
            ]
            for c in state["current"]
        ]
        self._observation = observation.astype(np.float32).copy()
